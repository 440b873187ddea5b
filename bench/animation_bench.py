"""Frames of a long animation chosen far apart, against the same number of frames from its start.

A GIF or WebP frame is drawn over the frames before it, so delivering frame n decodes the frames before
it too (transform/frames.py). The reference, measured in the same run, is the cheapest read of as many
frames: the first ones (``pg_1-K`` for K frames delivered). Each case renders a 300-frame 400x400 GIF and
WebP through ``transform.render`` (best of ``--rounds``) and prints its time and the ratio to the
reference; peak memory is each case's own fresh process (ru_maxrss), beside the reference's.

    .venv/bin/python bench/animation_bench.py [--rounds 3] [--frames 300]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grammar import parse_transformation  # noqa: E402
from transform import Limits, compile_plan, negotiate_format, render  # noqa: E402

#: (case, frames it delivers): far-apart selections, and one scaled.
CASES = [("vs_10", 10), ("pg_1;50;100;150", 4), ("pg_1;300", 2), ("c_scale,w_100/vs_10", 10)]


def animation(path: Path, frames: int, fmt: str) -> None:
    """A photo-like animation: smooth noise that drifts frame by frame (the writers store changes)."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, size=(100, 100, 3), dtype=np.uint8)
    still = pyvips.Image.new_from_array(base).copy(interpretation="srgb").resize(4, kernel="linear")
    planes = [still.wrap(x=index * 3, y=index) for index in range(frames)]
    strip = pyvips.Image.arrayjoin(planes, across=1)
    strip.set_type(pyvips.GValue.gint_type, "page-height", still.height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [40] * frames)
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    if fmt == "gif":
        strip.gifsave(str(path))
    else:
        strip.webpsave(str(path), Q=80)


def once(transformation: str, path: Path) -> float:
    plan = compile_plan(parse_transformation(transformation))
    choice = negotiate_format(plan, extension=path.suffix.lstrip("."), accept=None)
    start = time.perf_counter()
    render(plan, str(path), source_key=str(path), choice=choice, limits=Limits())
    return time.perf_counter() - start


def best(transformation: str, path: Path, rounds: int) -> float:
    return min(once(transformation, path) for _ in range(rounds))


def high_water() -> float:
    """This process's peak RSS in MiB since its exec (VmHWM: ru_maxrss carries the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak(transformation: str, path: Path) -> float:
    """Peak RSS in MiB of a fresh process rendering it once."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[3]); import animation_bench as b; "
        "from pathlib import Path; b.once(sys.argv[1], Path(sys.argv[2])); "
        "print(b.high_water())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, transformation, str(path), str(Path(__file__).parent)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300)
    options = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("gif", "webp"):
            path = Path(folder) / f"long.{fmt}"
            animation(path, options.frames, fmt)
            for case, count in CASES:
                scaled = case.split("/")[0] + "/" if "/" in case else ""
                reference = f"{scaled}pg_1-{count}"
                took, ref = best(case, path, options.rounds), best(reference, path, options.rounds)
                memory, ref_memory = peak(case, path), peak(reference, path)
                results.append({"format": fmt, "case": case, "s": took, "reference": reference,
                                "reference_s": ref, "ratio": took / ref, "MiB": memory,
                                "reference_MiB": ref_memory})  # fmt: skip
                print(f"{fmt:<5} {case:<22} {took:6.3f} s {memory:5.0f} MiB   {reference:<18} "
                      f"{ref:6.3f} s {ref_memory:5.0f} MiB   ratio {took / ref:5.2f}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
