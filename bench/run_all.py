"""Every benchmark in turn (``make bench``), each printing its ratios against the reference it measures.

A benchmark whose external part is missing (wrk or nginx for the HTTP one, the evaluation sets for
quality) is skipped with the reason. Takes about an hour on 2 cores; ``--only`` picks some.

    .venv/bin/python bench/run_all.py [--only NAME,...]

NAME: parse, startup, render, faces, http, api, upload, adapters, face_layers, scale, segment_speed,
segment_memory, regression, quality, stopped_memory, miss_storm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
EVAL = BENCH.parents[1] / "shared" / "eval"


def plan() -> dict[str, tuple[list[list[str]], str | None]]:
    """name -> (argument lists of its runs, the reason it cannot run here or None)."""
    search = os.environ.get("PATH", "") + ":/usr/sbin"  # nginx lives there, often outside a user's PATH
    missing = [tool for tool in ("wrk", "nginx") if not shutil.which(tool, path=search)]
    sets = [EVAL / name for name in ("ecssd_subset64", "alphamatting_train_lowres") if (EVAL / name).is_dir()]
    return {
        "parse": ([["parse_bench.py"]], None),
        "startup": ([["startup_bench.py"]], None),
        "render": ([["render_bench.py"]], None),
        "animation": ([["animation_bench.py"]], None),
        "faces": ([["faces_bench.py"]], None),
        "http": ([["http_bench.py"]], f"{' and '.join(missing)} not installed" if missing else None),
        "api": ([["api_bench.py"]], None),  # without wrk it skips its rps part itself
        "upload": ([["upload_bench.py"]], "nginx not installed" if "nginx" in missing else None),
        "upload_memory": ([["upload_memory_bench.py"]], None),
        "stopped_memory": ([["stopped_render_memory.py"]], None),
        "miss_storm": ([["miss_storm_bench.py"]], None),
        "adapters": ([["adapters_bench.py"]], None),
        "face_layers": ([["face_layers_bench.py"]], None),
        "scale": ([["scale_bench.py"]], None if shutil.which("redis-server", path=search)
                  else "redis-server not installed"),
        "segment_speed": ([["segment_speed.py"]], None),
        "segment_memory": ([["segment_memory.py"]], None),
        "regression": ([["regression.py"]], f"{' and '.join(missing)} not installed" if missing else None),
        "quality": (
            [["quality.py", str(s), "--fine-edges"] for s in sets],
            None if sets else f"no evaluation sets in {EVAL}",
        ),
    }


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--only", default="", help="comma-separated names; all when empty")
    args = parser.parse_args()
    benchmarks = plan()
    chosen = {name for name in args.only.split(",") if name}
    unknown = sorted(chosen - set(benchmarks))
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; known: {', '.join(benchmarks)}")
    failed = []
    for name, (runs, skip) in benchmarks.items():
        if chosen and name not in chosen:
            continue
        if skip:
            print(f"== {name}: skipped ({skip})", flush=True)
            continue
        for run in runs:
            print(f"== {name}: {' '.join(run)}", flush=True)
            if subprocess.run([sys.executable, str(BENCH / run[0]), *run[1:]]).returncode != 0:
                failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
