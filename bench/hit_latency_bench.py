"""Cached hits' latency while the same server process fingerprints new 50-megapixel originals.

One uvicorn worker. A client asks for one cached hit (``c_scale,w_400/docs/road``) over and over on
one keep-alive connection and records each latency: first with the server otherwise idle (the
reference), then while a second process keeps asking for originals the server has never seen (each a
new hard link of one 50-MP JPEG, so every request hashes it, from the page cache). Those requests ask
for ``e_background_removal`` with background removal off, so they end with a 501 right after the
original is resolved and fingerprinted: what is measured is the fingerprinting, not a render's CPU.
Target: loaded p99 <= 2x idle p99. Phases alternate, the idle one first in every round.

    flock /tmp/cutout-cpu.lock .venv/bin/python bench/hit_latency_bench.py [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_bench import machine  # noqa: E402
from tests.app.server_process import ServerProcess  # noqa: E402

HIT = "/demo/image/upload/c_scale,w_400/docs/road"
LINKS = 4000


def big_original(root: Path) -> int:
    """One 50-MP JPEG (8660x5774) and LINKS hard links to it under new ids; returns its size in bytes."""
    source = pyvips.Image.new_from_file(str(ROOT / "cutout/samples/docs/rmv_bgd/router_orig.jpg"))
    big = source.resize(8660 / source.width, kernel="lanczos3")
    # Grain, as a camera's: without it the upscaled photo compresses to a few MB, a camera's is ~20.
    big = (big + pyvips.Image.gaussnoise(big.width, big.height, sigma=6)).cast("uchar")
    (root / "big").mkdir()
    first = root / "big" / "new0.jpg"
    big.jpegsave(str(first), Q=92)
    for i in range(1, LINKS):
        os.link(first, root / "big" / f"new{i}.jpg")
    return first.stat().st_size


def fingerprint_load(base: str, start: int, stop: multiprocessing.synchronize.Event) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        i = start
        while not stop.is_set() and i < LINKS:
            status = client.get(f"/demo/image/upload/e_background_removal/big/new{i}").status_code
            assert status == 501, status
            i += 1


def latencies(client: httpx.Client, seconds: float) -> list[float]:
    out = []
    end = time.perf_counter() + seconds
    while True:
        started = time.perf_counter()
        if started > end:
            return out
        response = client.get(HIT)
        out.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] * 1000


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="", help="a word for the report (before/after)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the server (repeatable)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cutout-latency-bench-"))
    originals = tmp / "originals"
    shutil.copytree(ROOT / "cutout/samples", originals)
    size = big_original(originals)
    env = {"CUTOUT_BACKGROUND_REMOVAL": "0", **dict(item.split("=", 1) for item in args.env)}
    server = ServerProcess(originals, tmp / "cache", env=env)
    idle: list[float] = []
    loaded: list[float] = []
    counts: list[int] = []
    rounds: list[tuple[float, float]] = []
    taken = 0
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=60) as client:
            latencies(client, 2.0)  # warm-up: rendered once, then memory hits
            for _ in range(args.rounds):
                quiet = latencies(client, args.seconds)
                stop = multiprocessing.Event()
                load = multiprocessing.Process(target=fingerprint_load, args=(server.url, taken, stop))
                load.start()
                time.sleep(0.5)  # the load is running
                busy = latencies(client, args.seconds)
                stop.set()
                load.join()
                taken += LINKS // (args.rounds + 1)
                idle += quiet
                loaded += busy
                counts.append(len(busy))
                rounds.append((p99(quiet), p99(busy)))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = [b / a for a, b in rounds]
    label = f" ({args.label})" if args.label else ""
    print(f"## Cached hits while fingerprinting (bench/hit_latency_bench.py){label} — "
          f"{date.today().isoformat()}, {machine()}\n")
    print(f"50-MP JPEG of {size / 1e6:.1f} MB hashed per loading request; {args.rounds} rounds of "
          f"{args.seconds:.0f} s idle then {args.seconds:.0f} s loaded, one sequential keep-alive client.\n")
    print("| round | idle p99 ms | loaded p99 ms | ratio (target <= 2) |")
    print("|---|---:|---:|---:|")
    for i, (a, b) in enumerate(rounds, 1):
        print(f"| {i} | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    print(f"| all | {p99(idle):.2f} | {p99(loaded):.2f} | {p99(loaded) / p99(idle):.2f} "
          f"(median of rounds {statistics.median(ratios):.2f}) |")
    print(f"\nHits: {len(idle)} idle, {len(loaded)} loaded; median latency idle "
          f"{statistics.median(idle) * 1000:.2f} ms, loaded {statistics.median(loaded) * 1000:.2f} ms.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
