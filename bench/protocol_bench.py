"""What the HTTP protocol costs a cached hit: uvicorn's stock httptools protocol (the reference, as
`cutout serve` ran before), cutout/serving.py's (httptools with a header size limit and a header timeout,
plus limit_concurrency, as `cutout serve` runs now) and h11 (which bounds headers itself, but is pure
Python). The origin alone, one uvicorn process each, wrk -t2 -c64; rounds interleaved, the reference
first in every round (bench/http_bench.py's method).

    .venv/bin/python bench/protocol_bench.py [--seconds 8] [--rounds 3] [--append-results]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_bench import HIT, machine, wrk  # noqa: E402
from tests.app.server_process import free_port  # noqa: E402

#: name -> (uvicorn's http=, limit_concurrency or None)
VARIANTS = {
    "httptools": ("httptools", None),
    "guarded": ("cutout.serving:GuardedHttpToolsProtocol", 1000),
    "h11": ("h11", 1000),
}
LAUNCH = (
    "import sys, uvicorn\n"
    "from cutout.app import create_app\n"
    "limit = None if sys.argv[3] == '-' else int(sys.argv[3])\n"
    "uvicorn.run(create_app(), host='127.0.0.1', port=int(sys.argv[1]), http=sys.argv[2],\n"
    "            limit_concurrency=limit, log_level='warning', access_log=False, proxy_headers=False,\n"
    "            server_header=False)\n"
)


def start(name: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    http, limit = VARIANTS[name]
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUTOUT_ORIGINALS": str(ROOT / "cutout/samples"),
           "CUTOUT_CACHE_DIR": str(tmp / name), "CUTOUT_BACKGROUND_REMOVAL": "0"}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-c", LAUNCH, str(port), http, str(limit or "-")],
                               env=env, cwd=ROOT)  # fmt: skip
    url = f"http://127.0.0.1:{port}{HIT}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as folder:
        servers = {name: start(name, Path(folder)) for name in VARIANTS}
        try:
            for process, url in servers.values():
                wrk(url, 2, args.connections, [process.pid])  # warm-up: memory hits from here on
            for _ in range(args.rounds):
                for name, (process, url) in servers.items():
                    rate, us = wrk(url, args.seconds, args.connections, [process.pid])
                    results[name].append(rate)
                    cpu[name].append(us)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=30)
    load.append(os.getloadavg()[0])
    report = format_report(results, cpu, load, args)
    print(report)
    if args.append_results:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as out:
            out.write("\n" + report)
    return 0


def format_report(
    results: dict[str, list[float]], cpu: dict[str, list[float]], load: list[float], args: argparse.Namespace
) -> str:
    labels = {"httptools": "stock httptools protocol, as `cutout serve` ran before (reference)",
              "guarded": "cutout/serving.py: httptools + header limit and timeout + limit_concurrency",
              "h11": "h11 (bounds headers itself) + limit_concurrency"}  # fmt: skip
    lines = [
        f"## HTTP protocol of `cutout serve` (bench/protocol_bench.py) — {date.today().isoformat()}, "
        f"{machine()}",
        "",
        f"Cached hit of `{HIT}`, the origin alone (1 uvicorn process each, no nginx), wrk -t2 "
        f"-c{args.connections} -d{args.seconds}s, {args.rounds} rounds after a 2 s warm-up, the reference "
        "first in every round; wrk and the servers share the machine's cores. 1-min load average "
        + ", ".join(f"{x:.2f}" for x in load) + " (start, end).",
        "",
        "| protocol | requests/s (rounds) | ratio to reference | server CPU us/request |",
        "|---|---:|---:|---:|",
    ]
    for name, label in labels.items():
        ratios = [x / y for x, y in zip(results[name], results["httptools"], strict=True)]
        lines.append(
            f"| {label} | {' / '.join(f'{x:.0f}' for x in results[name])} | "
            f"{', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f}) | "
            f"{statistics.median(cpu[name]):.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
