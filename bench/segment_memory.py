"""Peak memory (RSS) of `cutout remove-bg` on a 6144x6144 photo, each case as a fresh process.

    flock /tmp/cutout-cpu.lock .venv/bin/python bench/segment_memory.py [--server]

6144x6144 is the largest image the segmenter works on (larger ones are scaled to fit first).
Target: <= 1.5 GB with and without --fine-edges.

--server: one long-lived process (as the HTTP origin's) segments a mix in turn: small ecssd photos,
the 6144x6144 one with and without fine edges, a 12 MP one, small ones again; resident memory after
each step and the peak, to show what stays held between requests (onnxruntime's arena included).
"""

from __future__ import annotations

import argparse
import json
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


SERVER = r"""
import json, resource, sys
import pyvips
from transform.segment import load_segmenter

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

segmenter = load_segmenter()
steps = [("session loaded", rss())]
for label, path, fine in json.loads(sys.argv[1]):
    image = pyvips.Image.new_from_file(path)
    mask = segmenter.segment(image, fine_edges=fine)
    mask.alpha.numpy()
    steps.append((label, rss()))
print(json.dumps({"steps": steps, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def photo(folder: Path, size: tuple[int, int]) -> Path:
    path = folder / f"photo{size[0]}x{size[1]}.jpg"
    image = pyvips.Image.new_from_file(str(SAMPLE)).thumbnail_image(size[0], height=size[1], size="force")
    (image + pyvips.Image.gaussnoise(*size, sigma=4)).cast("uchar").write_to_file(str(path), Q=90)
    return path


def server(folder: Path, big: Path) -> None:
    mid = photo(folder, (4000, 3000))
    small = sorted((ROOT.parent / "shared" / "eval" / "ecssd_subset64").rglob("*.jpg"))[:4]
    steps = [(f"small {p.name}", str(p), False) for p in small[:2]]
    steps += [("6144x6144", str(big), False), ("6144x6144 fine edges", str(big), True)]
    steps += [("12 MP", str(mid), False)]
    steps += [(f"small {p.name}", str(p), False) for p in small[2:]]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", SERVER, json.dumps(steps)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise SystemExit(f"server run failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print("one long-lived process, resident memory after each step:")
    for label, mb in result["steps"]:
        print(f"  {label:28s} {mb:7.0f} MB")
    print(f"  {'peak':28s} {result['peak']:7.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", action="store_true", help="the long-lived process instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cutout-mem-") as tmp:
        photo = Path(tmp) / "photo6144.jpg"
        image = pyvips.Image.new_from_file(str(SAMPLE)).thumbnail_image(6144, height=6144, size="force")
        (image + pyvips.Image.gaussnoise(6144, 6144, sigma=4)).cast("uchar").write_to_file(str(photo), Q=90)
        if args.server:
            server(Path(tmp), photo)
            return
        print("6144x6144 JPEG, whole process, peak RSS:")
        for name, extra in CASES.items():
            mb, seconds = peak_rss([CUTOUT, "remove-bg", str(photo), "-o", str(Path(tmp) / "out"), *extra])
            print(f"  {name:28s} {mb:7.0f} MB  ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
