"""Memory a real `cutout serve` still holds after renders stopped at the time budget (503), against the
same number of renders of the same original that finish (the reference, same run).

A stopped render's error held its render's frames in its traceback, and they the Watch holding the
error: a cycle that kept every image the render had made until the garbage collector's next full pass,
which an idle server may not run for hours (QA: 1.6 GB held after a stress test; 7 GB in this
benchmark before the fix). Each case gets a new server (memory a process has freed is not always given
back to the system, so one case would carry into the next), makes ``--requests`` different URLs of a
``--megapixels`` JPEG at once, and reads the server's resident memory (``/proc``) while they run and
``--settle`` seconds after the last answer:

- **finished**: ``l_big/fl_layer_apply/c_scale,w_N`` (one layer of the original: 200; no budget);
- **stopped**: ``--layers`` nested ``l_big`` (each a decoded copy of the original): 503 at the budget.

Printed: the growth over the idle server (after one warm-up render) held after each case, and stopped /
finished (about 1x when a stopped render lets go of what it made).

    .venv/bin/python bench/stopped_render_memory.py [--megapixels 27] [--requests 8] [--layers 30]
        [--budget 4] [--settle 15] [--rounds 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import pyvips  # noqa: E402

from tests.app.server_process import ServerProcess, rss_mib  # noqa: E402


def original(folder: Path, megapixels: float) -> None:
    """A 4:3 JPEG of noise (no shrink-on-load shortcut makes its decode cheap)."""
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    noise = pyvips.Image.gaussnoise(width, height, mean=128, sigma=40)
    noise.bandjoin([noise.flip("horizontal"), noise.flip("vertical")]).cast("uchar").write_to_file(
        str(folder / "big.jpg"), Q=85)


def url(case: str, n: int, layers: int) -> str:
    if case == "finished":
        return f"/image/upload/l_big/fl_layer_apply/c_scale,w_{1000 + n}/big.jpg"
    nested = "/".join(["l_big"] * layers)
    return f"/image/upload/{nested}/c_scale,w_{1000 + n}/{'/'.join(['fl_layer_apply'] * layers)}/big.jpg"


def measure(originals: Path, case: str, args: argparse.Namespace) -> tuple[float, float, list[int]]:
    """(peak growth, growth held ``settle`` seconds after the last answer) in MiB, and the statuses."""
    with tempfile.TemporaryDirectory() as work:
        cache = Path(work) / "cache"
        # The finished case has no budget: on a loaded machine one layer of the original can take longer.
        budget = str(args.budget) if case == "stopped" else "0"
        server = ServerProcess(originals, cache, env={"CUTOUT_RENDER_TIMEOUT": budget})
        try:
            server.wait_ready()
            warm = httpx.get(server.url + "/image/upload/c_scale,w_100/big.jpg", timeout=120)
            assert warm.status_code == 200, warm.text
            time.sleep(1)
            group = server.process.pid
            idle = peak = rss_mib(group)
            statuses: list[int] = []

            def fetch(n: int) -> None:
                statuses.append(httpx.get(server.url + url(case, n, args.layers), timeout=600).status_code)

            threads = [threading.Thread(target=fetch, args=(n,)) for n in range(args.requests)]
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                peak = max(peak, rss_mib(group))
                time.sleep(0.1)
            time.sleep(args.settle)
            return peak - idle, rss_mib(group) - idle, sorted(statuses)
        finally:
            server.stop()


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--megapixels", type=float, default=27)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--budget", type=float, default=4, help="CUTOUT_RENDER_TIMEOUT of both servers")
    parser.add_argument("--settle", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        originals = Path(work) / "originals"
        originals.mkdir()
        original(originals, args.megapixels)
        print(f"{args.requests} renders at once of a {args.megapixels:g} MP JPEG, a new server per case, "
              f"stopped at {args.budget:g} s; memory held {args.settle:g} s after the last answer")
        ratios = []
        for round_ in range(1, args.rounds + 1):
            held: dict[str, float] = {}
            for case in ("finished", "stopped"):
                peak, held[case], statuses = measure(originals, case, args)
                print(f"round {round_}: {case}: peak +{peak:.0f} MiB, held +{held[case]:.0f} MiB "
                      f"(answers {sorted(set(statuses))})")
            ratios.append(held["stopped"] / max(held["finished"], 1.0))
            print(f"round {round_}: held after stopped / finished {ratios[-1]:.2f}x")
        print(f"median stopped / finished: {sorted(ratios)[len(ratios) // 2]:.2f}x")


if __name__ == "__main__":
    main()
