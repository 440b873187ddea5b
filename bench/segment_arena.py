"""onnxruntime's CPU memory arena: inference time and resident memory, each policy in a fresh process.

    .venv/bin/python bench/segment_arena.py [--rounds 2] [--images 8] [--only NAME,NAME]

Each case runs as its own child process (memory is per process): build the session with the segmenter's
options plus the case's changes, then one 1024x1024 inference per image (the first N ecssd images,
prepared as the segmenter does), reporting every inference's time, the resident memory after it and
the peak. Cases alternate round by round. Every child holds /tmp/cutout-cpu.lock while it runs (the
CPU lock shared with other benchmarks on this machine), so the figures are of the process alone.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOCK = Path("/tmp/cutout-cpu.lock")

CASES = {
    "off": "arena off, memory pattern off (the segmenter before)",
    "arena": "arena on (power-of-two growth), memory pattern off",
    "arena+pattern": "arena on, memory pattern on (onnxruntime's defaults, as rembg)",
    "arena+shrink": "arena on, shrunk at the end of every run (RunOptions)",
    "same": "shared arena, kSameAsRequested growth (env allocator)",
    "same+shrink": "shared arena, kSameAsRequested, shrunk at the end of every run",
    "segmenter": "transform.segment.model as it is now (whatever its policy)",
}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def worker(case: str, images: int) -> None:
    import numpy as np
    import onnxruntime as ort
    import pyvips

    from bench.metrics import pairs
    from transform.segment.checks import preferred_model_path
    from transform.segment.model import config_from_env, load_model
    from transform.segment.segmenter import prepare, to_batch
    from transform.segment.session_options import ort_options

    config = config_from_env()
    batches = []
    for pair in list(pairs(ROOT.parent / "shared" / "eval" / "ecssd_subset64", images)):
        small = prepare(pyvips.Image.new_from_file(str(pair.image))).thumbnail_image(
            1024, height=1024, size="force"
        )
        batches.append(to_batch(small.numpy(), config.norm))
    base_rss = rss_mb()
    start = time.perf_counter()
    run_options = None
    if case == "segmenter":
        model = load_model(config)
        infer = model.run
    else:
        options = ort_options(config.threads)
        options.enable_cpu_mem_arena = case != "off"
        options.enable_mem_pattern = case == "arena+pattern"
        if case.startswith("same"):
            info = ort.OrtMemoryInfo(
                "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
            )
            cfg = ort.OrtArenaCfg({"arena_extend_strategy": 1})  # kSameAsRequested
            ort.create_and_register_allocator(info, cfg)
            options.add_session_config_entry("session.use_env_allocators", "1")
        if case.endswith("+shrink"):
            run_options = ort.RunOptions()
            run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        session = ort.InferenceSession(
            str(preferred_model_path()), options, providers=["CPUExecutionProvider"]
        )

        def infer(batch: np.ndarray) -> np.ndarray:
            return session.run(["output"], {"input": batch}, run_options)[0]

    build = time.perf_counter() - start
    times, after = [], []
    for batch in batches:
        t = time.perf_counter()
        infer(batch)
        times.append(time.perf_counter() - t)
        after.append(rss_mb())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()[0]
    print(
        json.dumps(
            {"build": build, "times": times, "after": after, "peak": peak, "base": base_rss, "load": load}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--only", default="", help="comma list of case names")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.images)
        return
    names = [n for n in args.only.split(",") if n] or list(CASES)
    results: dict[str, list[dict[str, object]]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for name in names:
            with LOCK.open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                proc = subprocess.run(
                    [sys.executable, __file__, "--worker", name, "--images", str(args.images)],
                    capture_output=True,
                    text=True,
                )
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed:\n{proc.stderr[-2000:]}")
            results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{args.images} ecssd images per process, {args.rounds} rounds; times in s, memory in MB")
    print(
        f"{'case':14s} {'first':>6s} {'rest median':>11s} {'rest min':>8s} {'RSS after 1st':>13s} "
        f"{'RSS after last':>14s} {'peak':>6s}  (RSS before session)"
    )
    for name, runs in results.items():
        first = statistics.median(float(r["times"][0]) for r in runs)  # type: ignore[index]
        rest = [t for r in runs for t in r["times"][1:]]  # type: ignore[attr-defined]
        a1 = statistics.median(float(r["after"][0]) for r in runs)  # type: ignore[index]
        al = statistics.median(float(r["after"][-1]) for r in runs)  # type: ignore[index]
        peak = statistics.median(float(r["peak"]) for r in runs)  # type: ignore[arg-type]
        base = statistics.median(float(r["base"]) for r in runs)  # type: ignore[arg-type]
        per_round = " ".join(f"{statistics.median(r['times'][1:]):.3f}" for r in runs)  # type: ignore[index]
        loads = " ".join(f"{float(r['load']):.1f}" for r in runs)  # type: ignore[arg-type]
        print(f"  {name}: rest median per round {per_round}; load average at the end {loads}")
        print(
            f"{name:14s} {first:6.2f} {statistics.median(rest):11.3f} {min(rest):8.3f} {a1:13.0f} "
            f"{al:14.0f} {peak:6.0f}  ({base:.0f})  {CASES[name]}"
        )


if __name__ == "__main__":
    main()
