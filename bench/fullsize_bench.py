"""What keeping a large photo's size costs: ``e_background_removal:fullsize_y`` (the HTTP API's and the
vendors' "full" for an original over 6144 px: the mask made at 6144, laid on the whole photo) against
``e_background_removal`` (Cloudinary's: the photo scaled to 6144 first), on a 49.5-megapixel photo with the
real model, each in its own process (wall time of the render, peak RSS of the process). Rounds alternate,
the reference first.

    flock /tmp/cutout-cpu.lock .venv/bin/python bench/fullsize_bench.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 9000, 5500
PHOTO = ROOT / "cutout" / "samples" / "docs" / "rmv_bgd" / "dog_couch_orig.jpg"

ONE = """
import json, resource, sys, time
from grammar import parse_transformation
from transform import FormatChoice, compile_plan, render
from transform.seam import DirectMasks
from transform.segment import load_segmenter
segmenter = load_segmenter()
plan = compile_plan(parse_transformation(sys.argv[2]))
start = time.perf_counter()
out = render(plan, sys.argv[1], source_key="bench", choice=FormatChoice("png"), masks=DirectMasks(segmenter))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak, "width": out.width, "height": out.height}))
"""


def run(path: Path, transformation: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", ONE, str(path), transformation], cwd=ROOT, check=True,
                          capture_output=True, text=True)  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.jpg"
        photo = pyvips.Image.new_from_file(str(PHOTO))
        photo.resize(WIDTH / photo.width, vscale=HEIGHT / photo.height).write_to_file(str(path), Q=90)
        rows: dict[str, list[dict[str, float]]] = {"e_background_removal": [],
                                                   "e_background_removal:fullsize_y": []}  # fmt: skip
        for _ in range(args.rounds):
            for transformation, results in rows.items():
                results.append(run(path, transformation))
    print(f"{platform.processor() or platform.machine()}, {WIDTH}x{HEIGHT} photo, {args.rounds} rounds")
    medians = {}
    for transformation, results in rows.items():
        seconds = statistics.median(r["seconds"] for r in results)
        peak = statistics.median(r["peak_mib"] for r in results)
        medians[transformation] = (seconds, peak)
        size = f"{int(results[0]['width'])}x{int(results[0]['height'])}"
        print(f"{transformation:<34} {size:>10}  {seconds:6.2f} s  peak {peak:6.0f} MiB")
    (base_s, base_m), (full_s, full_m) = medians.values()
    print(f"fullsize_y / capped: time {full_s / base_s:.2f}x, peak memory {full_m / base_m:.2f}x")


if __name__ == "__main__":
    main()
