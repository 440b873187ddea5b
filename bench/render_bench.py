"""Rendering speed and memory against bare libvips, measured in the same run.

1. ``c_scale,w_400`` of a 12-megapixel JPEG to JPEG through ``transform.render``, against the bare
   ``pyvips.Image.thumbnail`` + ``jpegsave_buffer`` of the same file (target: ratio <= 1.2).
2. Peak memory (ru_maxrss of a fresh subprocess) of a 50-megapixel JPEG to ``w_800`` (target <= 300 MB),
   beside the bare thumbnail's in the same way.

The originals are a real photograph from ../shared/eval upscaled (not a flat image, so the JPEG decoder
does real work), written to a temporary folder.

    .venv/bin/python bench/render_bench.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "eval" / "ecssd_subset64" / "image" / "0048.jpg"

_CHILD = """
import sys, resource
import pyvips
path, how, width = sys.argv[1], sys.argv[2], int(sys.argv[3])
if how != "bare":
    from grammar import parse_transformation
    from transform import FormatChoice, compile_plan, render
    first = "a_0/" if how == "general" else ""  # a no-op first step: no shrink-on-load
    plan = compile_plan(parse_transformation(f"{first}w_{width}"))
    data = render(plan, path, source_key="bench", choice=FormatChoice("jpg")).data
else:
    data = pyvips.Image.thumbnail(path, width).jpegsave_buffer(Q=80, optimize_coding=True, keep="none")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, len(data))
"""


def make_original(folder: Path, width: int, height: int) -> Path:
    path = folder / f"photo_{width}x{height}.jpg"
    source = pyvips.Image.new_from_file(str(PHOTO))
    big = source.resize(width / source.width, vscale=height / source.height, kernel="lanczos3")
    big.write_to_file(str(path), Q=90)
    return path


def engine(path: Path) -> bytes:
    from grammar import parse_transformation
    from transform import FormatChoice, compile_plan, render

    plan = compile_plan(parse_transformation("c_scale,w_400"))
    return render(plan, str(path), source_key="bench", choice=FormatChoice("jpg")).data


def bare(path: Path) -> bytes:
    return bytes(
        pyvips.Image.thumbnail(str(path), 400).jpegsave_buffer(Q=80, optimize_coding=True, keep="none")
    )


def timed(fn: object, path: Path) -> float:
    start = time.perf_counter()
    fn(path)  # type: ignore[operator]
    return time.perf_counter() - start


def peak_mb(path: Path, how: str, width: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), how, str(width)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[0]) / 1024  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    pyvips.cache_set_max(0)  # no operation cache: every round decodes the file again
    with tempfile.TemporaryDirectory() as tmp:
        twelve = make_original(Path(tmp), 4000, 3000)
        fifty = make_original(Path(tmp), 8000, 6250)
        engine(twelve), bare(twelve)  # warm-up: libraries loaded, file in the page cache
        rows: dict[str, list[float]] = {"bare": [], "engine": []}
        for _ in range(args.rounds):  # interleaved, so load from other jobs hits both alike
            rows["bare"].append(timed(bare, twelve))
            rows["engine"].append(timed(engine, twelve))
        bare_s, engine_s = (statistics.median(rows[k]) for k in ("bare", "engine"))
        print(f"12 MP JPEG -> c_scale,w_400 JPEG, median of {args.rounds}:")
        print(f"  bare thumbnail + save  {bare_s * 1000:8.1f} ms   1.00")
        print(f"  transform.render       {engine_s * 1000:8.1f} ms   {engine_s / bare_s:.2f}")
        print("50 MP JPEG -> w_800 JPEG, peak RSS of a fresh process:")
        print(f"  bare thumbnail + save  {peak_mb(fifty, 'bare', 800):8.1f} MB")
        print(f"  transform.render       {peak_mb(fifty, 'engine', 800):8.1f} MB")
        print(f"  same, no shrink-on-load (a_0/w_800, full decode) {peak_mb(fifty, 'general', 800):8.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
