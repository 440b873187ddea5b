"""Start-up cost of the command line: a whole ``cutout render c_scale,w_800`` process on a 50-megapixel
photo against a bare libvips process doing the same (``pyvips.Image.thumbnail(...).write_to_file(...)``).

Every CLI call, worker start and test process pays what ``cutout`` does before its first pixel (imports,
the grammar's parser); this ratio is that cost. Target: at most 1.3. Rows are interleaved, so load from
other jobs hits all of them alike; a third row adds to the process what it paid before the parser was
generated (``grammar/generate.py``): importing lark and building the LALR parser in strict mode.

    flock /tmp/cutout-cpu.lock .venv/bin/python bench/startup_bench.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyvips

WIDTH, HEIGHT = 8660, 5773  # 49.99 megapixels: just under the default CUTOUT_MAX_PIXELS
BUILD_FIRST = (
    "import sys, lark; from grammar import generate; "
    "lark.Lark(generate.GRAMMAR.read_text(), **generate.OPTIONS); "
    "from cutout.cli import main; sys.exit(main())"
)
BARE = (
    "import sys, pyvips; "
    "pyvips.Image.thumbnail(sys.argv[1], 800).write_to_file(sys.argv[2])"
)


def make_photo(path: Path) -> None:
    """A photo-like 50 MP JPEG: smooth gradients and waves plus sensor-like noise (so the JPEG has the
    entropy, hence the decode cost, of a real photo)."""
    xyz = pyvips.Image.xyz(WIDTH, HEIGHT)
    x, y = xyz[0], xyz[1]
    red = (x * 0.003).sin() * 60 + (y * 0.0021).cos() * 50 + 128
    noise = pyvips.Image.gaussnoise(WIDTH, HEIGHT, sigma=10)
    image = red.bandjoin([x * 255 / WIDTH, y * 255 / HEIGHT]) + noise
    image.cast("uchar").copy(interpretation="srgb").write_to_file(str(path), Q=90)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its threads). CPU time is what the process costs;
    wall time is what its caller waits, and on a shared machine it also counts waiting for a core."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{command[:3]} failed with status {status}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=15)
    args = options.parse_args()
    cutout = str(Path(sys.executable).with_name("cutout"))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        photo = work / "photo50.jpg"
        make_photo(photo)
        # Bytecode as an installed package has it: with PYTHONDONTWRITEBYTECODE (set on some machines)
        # every process would compile cutout's ~40 modules from source, ~45 ms that no install pays.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        out = work / "out.jpg"
        render = [cutout, "render", "c_scale,w_800", str(photo), "-o", str(out)]
        rows = [
            ("reference: bare pyvips thumbnail + write_to_file",
             [sys.executable, "-c", BARE, str(photo), str(out)], env),
            ("`cutout render c_scale,w_800`", render, env),
            ("the same, building the parser with lark first (as before)",
             [sys.executable, "-c", BUILD_FIRST, *render[1:]], env),
        ]  # fmt: skip
        for _, command, env in rows:  # warm-up: page cache, and the kept parser built once
            timed(command, env)
        times: list[list[tuple[float, float]]] = [[] for _ in rows]
        for _ in range(args.rounds):
            for index, (_, command, env) in enumerate(rows):
                times[index].append(timed(command, env))
    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, libvips {pyvips.version(0)}.{pyvips.version(1)}; "
        f"load average {os.getloadavg()[0]:.2f}; {args.rounds} interleaved rounds, 50 MP JPEG -> w_800\n"
    )
    print("| what | wall, median s | wall, best s | CPU, median s | wall vs reference | CPU vs reference |")
    print("|---|---:|---:|---:|---:|---:|")
    wall0 = statistics.median(w for w, _ in times[0])
    cpu0 = statistics.median(c for _, c in times[0])
    for (label, _, _), samples in zip(rows, times, strict=True):
        wall = statistics.median(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        best = min(w for w, _ in samples)
        print(f"| {label} | {wall:.3f} | {best:.3f} | {cpu:.3f} | {wall / wall0:.2f} | {cpu / cpu0:.2f} |")


if __name__ == "__main__":
    main()
