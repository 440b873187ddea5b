"""Rendering speed and memory against bare libvips, measured in the same run.

1. ``c_scale,w_400`` of a 12-megapixel JPEG to JPEG through ``transform.render``, against the bare
   ``pyvips.Image.thumbnail`` + ``jpegsave_buffer`` of the same file (target: ratio <= 1.2).
2. Peak memory (ru_maxrss of a fresh subprocess) of a 50-megapixel JPEG to ``w_800`` (target <= 300 MB),
   beside the bare thumbnail's in the same way.
3. The render time budget's cost on ordinary renders (``--budget``): each render with no watch (the
   reference), with the shipped budget (a ``transform.Watch`` armed on the ``cutout.deadline`` timer: a
   fresh copy of each image the work flows through, stopped from the timer thread), and with libvips'
   eval callback instead (weserv's way: progress signalled on those images, a Python callback per tile
   that checks the clock), for a small photo, the 12 MP ``c_scale,w_400`` and a 12 MP full decode.

The originals are a real photograph from ../shared/eval upscaled (not a flat image, so the JPEG decoder
does real work), written to a temporary folder.

    .venv/bin/python bench/render_bench.py [--rounds 7] [--budget [--budget-rounds 41]]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyvips

from transform import Watch

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


class EvalWatch(Watch):
    """The alternative to the shipped watch: each image the work flows through signals progress, and a
    Python callback on every tile ("eval") compares the clock with the deadline and kills the image."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.deadline = time.monotonic() + seconds

    def own(self, image: pyvips.Image, *, fresh: bool = False) -> pyvips.Image:
        image = super().own(image, fresh=fresh)
        image.set_progress(True)
        image.signal_connect("eval", self._check)
        return image

    def _check(self, image: pyvips.Image, progress: Any) -> None:
        if time.monotonic() > self.deadline:
            image.set_kill(True)


def budget_rows(cases: list[tuple[str, Path, str]], rounds: int) -> None:
    """Each case rendered with no watch, the shipped budget and the eval callback, interleaved."""
    from cutout.deadline import Deadlines
    from grammar import parse_transformation
    from transform import FormatChoice, compile_plan, render

    deadlines = Deadlines(10.0, lambda: RuntimeError("over budget"))

    def plain(plan: Any, path: Path) -> None:
        render(plan, str(path), source_key="bench", choice=FormatChoice("jpg"))

    def budgeted(plan: Any, path: Path) -> None:
        watch = Watch()
        with deadlines.limit(watch):
            render(plan, str(path), source_key="bench", choice=FormatChoice("jpg"), watch=watch)

    def evaluated(plan: Any, path: Path) -> None:
        render(plan, str(path), source_key="bench", choice=FormatChoice("jpg"), watch=EvalWatch(10.0))

    ways = {"no budget": plain, "budget (timer + kill)": budgeted, "eval callback": evaluated}
    print(f"Render time budget, per render, {rounds} rounds (the ways' order turns each round);")
    print("  median wall time, median and least CPU time of the process (libvips' threads included):")
    for label, path, text in cases:
        plan = compile_plan(parse_transformation(text))
        for way in ways.values():
            way(plan, path)  # warm-up
        wall: dict[str, list[float]] = {name: [] for name in ways}
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        names = list(ways)
        for round_ in range(rounds):
            for name in names[round_ % 3:] + names[:round_ % 3]:
                start, start_cpu = time.perf_counter(), time.process_time()
                ways[name](plan, path)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        ref = statistics.median(cpu["no budget"])
        print(f"  {label}: {text}")
        for name in ways:
            median, walled = statistics.median(cpu[name]), statistics.median(wall[name])
            print(f"    {name:22s} wall {walled * 1000:8.2f} ms   cpu {median * 1000:8.2f} ms"
                  f" (least {min(cpu[name]) * 1000:7.2f})   cpu ratio {median / ref:.3f}"
                  f"   {(median - ref) * 1e6:+7.0f} us")
    deadlines.close()


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
    parser.add_argument("--budget", action="store_true", help="only the time budget's cost (section 3)")
    parser.add_argument("--budget-rounds", type=int, default=41)
    args = parser.parse_args()
    pyvips.cache_set_max(0)  # no operation cache: every round decodes the file again
    with tempfile.TemporaryDirectory() as tmp:
        twelve = make_original(Path(tmp), 4000, 3000)
        if args.budget:
            small = make_original(Path(tmp), 640, 480)
            budget_rows([
                ("0.3 MP photo", small, "c_scale,w_200"),
                ("12 MP, shrink-on-load", twelve, "c_scale,w_400"),
                ("12 MP, full decode, 3 steps", twelve, "a_0/c_fill,w_800,h_600/e_sharpen"),
            ], args.budget_rounds)
            return 0
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
