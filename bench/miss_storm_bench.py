"""A CDN's miss storm on a real `cutout serve`: ``--clients`` requests at once for the same new URL,
against one request alone for another new URL of the same size (the reference, same server, same run).

Printed per round: the alone request's time, the storm's first and last answers, the renders the server
made for the storm (``cutout_render_seconds_count``), whether every answer had the same bytes, and the
storm's last answer / alone (about 1x when the requests share one render; about ``--clients`` /
render threads when each renders its own).

    .venv/bin/python bench/miss_storm_bench.py [--clients 16] [--rounds 3] [--megapixels 12]
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

from tests.app.server_process import ServerProcess, metric  # noqa: E402


def original(folder: Path, megapixels: float) -> None:
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    noise = pyvips.Image.gaussnoise(width, width * 3 // 4, mean=128, sigma=40)
    noise.bandjoin([noise.flip("horizontal"), noise.flip("vertical")]).cast("uchar").write_to_file(
        str(folder / "photo.jpg"), Q=85)


def path(width: int) -> str:
    return f"/image/upload/c_scale,w_{width}/e_sharpen/photo.jpg"


def storm(base: str, url: str, clients: int) -> tuple[list[float], set[bytes], list[int]]:
    """Seconds to each answer, the distinct bodies, the statuses."""
    times: list[float] = []
    bodies: set[bytes] = set()
    statuses: list[int] = []
    go = threading.Barrier(clients)

    def fetch() -> None:
        with httpx.Client(timeout=120) as client:
            go.wait()
            started = time.perf_counter()
            response = client.get(base + url)
            times.append(time.perf_counter() - started)
            bodies.add(response.content)
            statuses.append(response.status_code)

    threads = [threading.Thread(target=fetch) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(times), bodies, statuses


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--megapixels", type=float, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        originals = Path(work) / "originals"
        originals.mkdir()
        original(originals, args.megapixels)
        server = ServerProcess(originals, Path(work) / "cache", env={"CUTOUT_BACKGROUND_REMOVAL": "0"})
        try:
            server.wait_ready()
            assert httpx.get(server.url + path(100), timeout=120).status_code == 200  # warm-up
            ratios = []
            for round_ in range(1, args.rounds + 1):
                alone, _, _ = storm(server.url, path(1000 + 2 * round_), 1)
                before = metric(server.url, "cutout_render_seconds_count")
                times, bodies, statuses = storm(server.url, path(1001 + 2 * round_), args.clients)
                renders = metric(server.url, "cutout_render_seconds_count") - before
                ratios.append(times[-1] / alone[0])
                print(f"round {round_}: alone {alone[0]:.3f} s; {args.clients} at once: "
                      f"first {times[0]:.3f} s, "
                      f"last {times[-1]:.3f} s, {renders:.0f} render(s), statuses {sorted(set(statuses))}, "
                      f"{len(bodies)} distinct bodies; last / alone {ratios[-1]:.2f}x")
            print(f"median last / alone: {sorted(ratios)[len(ratios) // 2]:.2f}x")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
