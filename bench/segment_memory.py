"""Peak memory (RSS) of `cutout remove-bg` on a 6144x6144 photo, each case as a fresh process.

    .venv/bin/python bench/segment_memory.py

6144x6144 is the largest image the segmenter works on (larger ones are scaled to fit first).
Target: <= 1.5 GB with and without --fine-edges.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parents[1]
CUTOUT = str(Path(sys.executable).parent / "cutout")
SAMPLE = ROOT / "cutout" / "samples" / "docs" / "rmv_bgd" / "dog_couch_orig.jpg"

CASES = {
    "mask only (--mask)": ["--mask"],
    "cut-out PNG": [],
    "cut-out PNG, --fine-edges": ["--fine-edges"],
}


def peak_rss(command: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}): {err[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start  # ru_maxrss is in KiB on Linux


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cutout-mem-") as tmp:
        photo = Path(tmp) / "photo6144.jpg"
        image = pyvips.Image.new_from_file(str(SAMPLE)).thumbnail_image(6144, height=6144, size="force")
        (image + pyvips.Image.gaussnoise(6144, 6144, sigma=4)).cast("uchar").write_to_file(str(photo), Q=90)
        print("6144x6144 JPEG, whole process, peak RSS:")
        for name, extra in CASES.items():
            mb, seconds = peak_rss([CUTOUT, "remove-bg", str(photo), "-o", str(Path(tmp) / "out"), *extra])
            print(f"  {name:28s} {mb:7.0f} MB  ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
