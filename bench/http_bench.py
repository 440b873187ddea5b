"""HTTP throughput of the origin, with the reference measured in the same run (loopback only).

1. A cached hit at 64 connections (wrk): nginx serving the same bytes as a static file with the same
   response headers cutout sends (reference), the origin alone (target >= 0.3x), and the origin behind
   nginx/cutout.conf (target >= 0.9x). nginx's plain static file (its default headers only) is
   measured too, and the CPU time nginx's workers spend per request on each path.
2. Uncached ``c_scale,w_400`` renders of a 12-MP JPEG, each request a different public id so nothing
   is cached: cutout vs thumbor (in its own venv: THUMBOR_PYTHON, default /tmp/thumbor-venv/bin/python)
   with the same concurrency and the same request count (target >= 1.5x against thumbor as it starts
   by default, one process); thumbor with as many processes as cutout has workers is measured too.

Cases are interleaved, the reference first in every round.

    .venv/bin/python bench/http_bench.py [--seconds 10] [--rounds 3] [--renders 96] [--append-results]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app.server_process import ServerProcess, free_port  # noqa: E402
from tests.nginx.test_nginx import main_config, render_config  # noqa: E402

HIT = "/demo/image/upload/c_scale,w_400/docs/road"
# What cutout adds to this (unversioned) hit, so that the static reference answers with comparable
# headers: nginx's static module adds Last-Modified and Accept-Ranges, the proxy adds X-Cache-Status.
SAME_HEADERS = ('add_header Cache-Control "public, max-age=3600"; '
                'add_header Access-Control-Allow-Origin "*"; '
                'add_header Access-Control-Expose-Headers "X-Cld-Error,Content-Length";')
# nginx/cutout.conf's own setting, for a static server measured like for like.
OPEN_FILE_CACHE = re.findall(r"^\s*(open_file_cache .*;)", (ROOT / "nginx/cutout.conf").read_text(), re.M)[0]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def wrk(url: str, seconds: int, connections: int, pids: list[int]) -> tuple[float, float]:
    """Requests/s, and CPU microseconds per request spent by ``pids`` (the server's processes)."""
    before = cpu_seconds(pids)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url],
                         capture_output=True, text=True, check=True).stdout
    spent = cpu_seconds(pids) - before
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    rate = float(match.group(1))
    return rate, spent / (rate * seconds) * 1e6


def big_originals(root: Path, count: int) -> None:
    """``count`` copies of one 12-MP JPEG under distinct ids, so every request is a real render."""
    source = pyvips.Image.new_from_file(str(ROOT / "cutout/samples/docs/rmv_bgd/router_orig.jpg"))
    big = source.resize(4242 / source.width, kernel="lanczos3")  # 4242 x 2828 = 12.0 MP
    (root / "big").mkdir(parents=True)
    first = root / "big" / "img0.jpg"
    big.jpegsave(str(first), Q=90)
    for i in range(1, count):
        os.link(first, root / "big" / f"img{i}.jpg")


def render_load(urls: list[str], concurrency: int) -> float:
    with httpx.Client(timeout=120) as client:
        def one(url: str) -> None:
            response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, urls))
        return len(urls) / (time.perf_counter() - started)


def start_thumbor(
    python: str, originals: Path, tmp: Path, *, processes: int = 1
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = tmp / f"thumbor-{port}.conf"
    conf.write_text(
        "LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = '{originals}'\n"
        "STORAGE = 'thumbor.storages.no_storage'\n"
        "RESULT_STORAGE = None\n"
        "ALLOW_UNSAFE_URL = True\n"
        "QUALITY = 80\n"
    )
    thumbor = Path(python).parent / "thumbor"
    process = subprocess.Popen([str(thumbor), "-p", str(port), "-c", str(conf), "-l", "warning",
                                f"--processes={processes}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/healthcheck", timeout=2)
            return process, url
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("thumbor did not start") from None
            time.sleep(0.3)


def start_nginx(
    tmp: Path, body: bytes, upstream: int, workers: int
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """One nginx: the proxy (nginx/cutout.conf) and two static servers of the same bytes."""
    static = tmp / "static"
    static.mkdir()
    (static / "hit.jpg").write_bytes(body)
    prefix = tmp / "nginx"
    prefix.mkdir()
    ports = {name: free_port() for name in ("proxied", "static", "static_plain", "static_fd")}
    (prefix / "cutout.conf").write_text(
        render_config(ports["proxied"], f"127.0.0.1:{upstream}", prefix / "cache")
        + f"server {{ listen 127.0.0.1:{ports['static']}; root {static}; location / {{ {SAME_HEADERS} }} }}\n"
        + f"server {{ listen 127.0.0.1:{ports['static_plain']}; root {static}; }}\n"
        # Like for like: cutout.conf keeps hot files' descriptors open; a static server can do it too.
        + f"server {{ listen 127.0.0.1:{ports['static_fd']}; root {static}; {OPEN_FILE_CACHE} "
        f"location / {{ {SAME_HEADERS} }} }}\n"
    )
    config = main_config(prefix).replace("worker_processes 1;", f"worker_processes {workers};")
    (prefix / "nginx.conf").write_text(config)
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen([nginx_bin, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(1)
    paths = {"proxied": HIT, "static": "/hit.jpg", "static_plain": "/hit.jpg", "static_fd": "/hit.jpg"}
    urls = {name: f"http://127.0.0.1:{port}{paths[name]}" for name, port in ports.items()}
    for url in urls.values():  # fills nginx's cache, checks every server answers
        httpx.get(url).raise_for_status()
    return process, urls


Results = dict[str, list[float]]


def hits(args: argparse.Namespace, server: ServerProcess, nginx: subprocess.Popen[bytes],
         urls: dict[str, str], out: Results) -> None:
    nginx_workers = children(nginx.pid)
    cutout_pids = children(server.process.pid)
    cases: dict[str, tuple[str, list[int]]] = {
        "static": (urls["static"], nginx_workers),
        "origin": (server.url + HIT, cutout_pids),
        "proxied": (urls["proxied"], nginx_workers),
        "static_plain": (urls["static_plain"], nginx_workers),
        "static_fd": (urls["static_fd"], nginx_workers),
    }
    for url, pids in cases.values():  # warm-up, not recorded: every cutout worker memoises the hit
        wrk(url, 2, args.connections, pids)
    for _ in range(args.rounds):
        for name, (url, pids) in cases.items():
            rate, cpu = wrk(url, args.seconds, args.connections, pids)
            out.setdefault(name, []).append(rate)
            out.setdefault(name + "_cpu", []).append(cpu)


def renders(args: argparse.Namespace, server: ServerProcess, thumbors: dict[str, str], out: Results) -> None:
    taken = 0

    def urls(count: int, make: Callable[[int], str]) -> list[str]:
        nonlocal taken
        taken += count
        return [make(i) for i in range(taken - count, taken)]

    def thumbor(base: str) -> Callable[[int], str]:
        return lambda i: f"{base}/unsafe/400x0/big/img{i}.jpg"

    makers = {name: thumbor(base) for name, base in thumbors.items()}
    makers["cutout_renders"] = lambda i: f"{server.url}/demo/image/upload/c_scale,w_400/big/img{i}"
    for make in makers.values():  # warm-up: enough requests to reach every worker process
        render_load(urls(args.concurrency * 2, make), args.concurrency)
    for _ in range(args.rounds):
        for name, make in makers.items():
            out.setdefault(name, []).append(render_load(urls(args.renders, make), args.concurrency))


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--renders", type=int, default=96)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    thumbor_python = os.environ.get("THUMBOR_PYTHON", "/tmp/thumbor-venv/bin/python")
    parser.add_argument("--thumbor-python", default=thumbor_python)
    parser.add_argument("--skip-hits", action="store_true")
    parser.add_argument("--skip-renders", action="store_true")
    parser.add_argument("--append-results", action="store_true", help="append a section to bench/RESULTS.md")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cutout-http-bench-"))
    originals = tmp / "originals"
    shutil.copytree(ROOT / "cutout/samples", originals)
    big_originals(originals, (args.renders * args.rounds + args.concurrency * 2) * 3)
    env = {"CUTOUT_BACKGROUND_REMOVAL": "0", "CUTOUT_RENDER_THREADS": "2"}
    server = ServerProcess(originals, tmp / "cache", workers=args.workers, env=env)
    processes: list[subprocess.Popen[bytes]] = []
    results: Results = {"load": [os.getloadavg()[0]]}
    try:
        server.wait_ready()
        if not args.skip_hits:
            nginx, urls = start_nginx(tmp, httpx.get(server.url + HIT).content, server.port, args.workers)
            processes.append(nginx)
            hits(args, server, nginx, urls, results)
        if not args.skip_renders:
            thumbors = {}
            if Path(args.thumbor_python).exists():
                for name, count in (("thumbor_renders", 1), ("thumbor_n_renders", args.workers)):
                    process, thumbors[name] = start_thumbor(args.thumbor_python, originals, tmp,
                                                            processes=count)
                    processes.append(process)
            renders(args, server, thumbors, results)
        results["load"].append(os.getloadavg()[0])
    finally:
        for process in processes:
            # The whole session: thumbor --processes=N forks children that outlive their parent.
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            process.wait(timeout=20)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report = format_report(results, args)
    print(report)
    if args.append_results:
        with open(ROOT / "bench" / "RESULTS.md", "a") as f:
            f.write("\n" + report)
    return 0


def machine() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s+(.+)", out)
    cpus = re.search(r"^CPU\(s\):\s+(\d+)", out, re.M)
    return f"{model.group(1).strip() if model else 'unknown CPU'}, {cpus.group(1) if cpus else '?'} CPUs"


def row(r: Results, name: str, reference: str, label: str, target: str, digits: int = 0) -> str:
    runs = " / ".join(f"{x:.{digits}f}" for x in r[name])
    ratios = [x / y for x, y in zip(r[name], r[reference], strict=True)]
    cpu = f" | {statistics.median(r[name + '_cpu']):.1f}" if name + "_cpu" in r else ""
    ratio_text = ", ".join(f"{x:.2f}" for x in ratios)
    return f"| {label} | {runs} | {ratio_text} (median {statistics.median(ratios):.2f}) | {target}{cpu} |"


def format_report(r: Results, args: argparse.Namespace) -> str:
    lines = [
        f"## HTTP origin (bench/http_bench.py) — {date.today().isoformat()}, {machine()}",
        "",
        "Load average " + ", ".join(f"{x:.2f}" for x in r["load"]) + " (1 min, start and end).",
    ]
    if "static" in r:
        lines += [
            "",
            f"Cached hit of `{HIT}` (the 400 px JPEG), wrk -t2 -c{args.connections} -d{args.seconds}s, "
            f"{args.rounds} rounds after a 2 s warm-up of each. cutout has {args.workers} uvicorn workers, "
            f"nginx {args.workers} worker "
            "processes; wrk, nginx and cutout share the machine's cores. The reference is nginx serving the "
            "bytes as a static file with cutout's Cache-Control and CORS headers added, as Debian's "
            "nginx.conf serves files; nginx/cutout.conf also keeps hot cache files open "
            "(`open_file_cache`), so the same static file with an `open_file_cache` is measured too.",
            "",
            "| what | requests/s (rounds) | ratio to reference | target | server CPU us/request |",
            "|---|---:|---:|---|---:|",
            row(r, "static", "static", "nginx static file, same headers (reference)", ""),
            row(r, "origin", "static", "cutout origin alone", ">= 0.3"),
            row(r, "proxied", "static", "cutout behind nginx/cutout.conf (HIT)", ">= 0.9"),
            row(r, "static_plain", "static", "nginx static file, its own headers only", ""),
            row(r, "static_fd", "static", "nginx static file, same headers, open_file_cache", ""),
            row(r, "proxied", "static_fd", "HIT against the static file with open_file_cache", ""),
        ]
    if "cutout_renders" in r:
        lines += [
            "",
            f"Uncached `c_scale,w_400` of a 12-MP JPEG (4242x2828), {args.renders} requests for distinct "
            f"ids, {args.concurrency} concurrent, {args.rounds} rounds (after a warm-up of every side):",
            "",
            "| what | renders/s (rounds) | ratio to reference | target |",
            "|---|---:|---:|---|",
        ]
        if "thumbor_renders" in r:
            reference = "thumbor, 1 process (reference)"
            lines.append(row(r, "thumbor_renders", "thumbor_renders", reference, "", 2))
            lines.append(row(r, "cutout_renders", "thumbor_renders", "cutout", ">= 1.5", 2))
            lines.append(row(r, "thumbor_n_renders", "thumbor_renders",
                             f"thumbor, {args.workers} processes", "", 2))
            lines.append(row(r, "cutout_renders", "thumbor_n_renders",
                             f"cutout against thumbor with {args.workers} processes", "", 2))
        else:
            lines.append(f"| cutout | {' / '.join(f'{x:.2f}' for x in r['cutout_renders'])} | "
                         "n/a (thumbor not installed) | >= 1.5 |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
