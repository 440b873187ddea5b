"""Inference alone, for model copies and onnxruntime settings: speed, start-up and mask quality.

    .venv/bin/python bench/segment_ort.py [--runs 7] [--ecssd 10] [--only NAME,NAME]

Every case holds its own session, all built up front; then one 1024x1024 inference per case per round,
cases interleaved, so a slow phase of the shared machine hits all of them alike. The input is the
sample photo prepared exactly as the segmenter does. Quality: the largest difference of the model
output from the reference case's on that input, and the full mask pipeline (no fine edges) on the
first N ecssd images: IoU against the ground truth and the largest alpha difference from the reference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.metrics import load_mask, pairs, scores  # noqa: E402
from transform.segment import IsNetSegmenter, default_model_path  # noqa: E402
from transform.segment.convert import write_float32  # noqa: E402
from transform.segment.model import Model, config_from_env  # noqa: E402
from transform.segment.paths import MEDIUM  # noqa: E402
from transform.segment.segmenter import prepare, to_batch  # noqa: E402
from transform.segment.session_options import ort_options  # noqa: E402

SAMPLE = ROOT / "cutout" / "samples" / "docs" / "rmv_bgd" / "woman_orig.jpg"
LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # a key of the files dict
    level: str = "all"
    threads: int = 2
    spinning: bool = True


CASES = [
    Case("reference: original fp16 file, all, 2 threads, spinning on (the old default)", "fp16"),
    Case("original, extended", "fp16", level="extended"),
    Case("original, 1 thread", "fp16", threads=1),
    Case("original, spinning off", "fp16", spinning=False),
    Case("ort-saved optimized (extended) of original", "fp16-ort-extended"),
    Case("fp32 copy, all 12 outputs", "fp32-all-outputs"),
    Case("fp32 copy, mask output only", "fp32"),
    Case("fp32 copy, mask only, extended", "fp32", level="extended"),
    Case("fp32 copy, mask only, 1 thread", "fp32", threads=1),
    Case("fp32 copy, mask only, spinning off", "fp32", spinning=False),
    Case("ort-saved optimized (extended) of fp32 copy", "fp32-ort-extended"),
    Case("ort-saved optimized (all) of fp32 copy, loaded with opts off", "fp32-ort-all"),
]


def make_files(folder: Path) -> dict[str, Path]:
    original = default_model_path()
    files = {"fp16": original}
    start = time.perf_counter()
    write_float32(original, folder / "fp32-all.onnx", keep_outputs=None)
    print(f"fp32 copy (all outputs) written in {time.perf_counter() - start:.1f} s")
    files["fp32-all-outputs"] = folder / "fp32-all.onnx"
    start = time.perf_counter()
    write_float32(original, folder / "fp32.onnx")
    print(f"fp32 copy (mask output only) written in {time.perf_counter() - start:.1f} s")
    files["fp32"] = folder / "fp32.onnx"
    for source, level in (("fp16", "extended"), ("fp32", "extended"), ("fp32", "all")):
        dest = folder / f"{source}-ort-{level}.onnx"
        options = session_options(2, level, True)
        options.optimized_model_filepath = str(dest)
        ort.InferenceSession(str(files[source]), options, providers=["CPUExecutionProvider"])
        files[f"{source}-ort-{level}"] = dest
    for name, path in files.items():
        print(f"  {name:20s} {path.stat().st_size / 1e6:7.1f} MB  {path}")
    return files


def session_options(threads: int, level: str, spinning: bool) -> ort.SessionOptions:
    options = ort_options(threads)
    options.graph_optimization_level = LEVELS[level]
    if spinning:  # ort_options turns it off
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return options


def build(case: Case, files: dict[str, Path]) -> tuple[ort.InferenceSession, float]:
    options = session_options(case.threads, case.level, case.spinning)
    if case.model == "fp32-ort-all":  # already optimised for this machine: skip the passes at load
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    start = time.perf_counter()
    session = ort.InferenceSession(str(files[case.model]), options, providers=["CPUExecutionProvider"])
    return session, time.perf_counter() - start


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--ecssd", type=int, default=10, metavar="N")
    parser.add_argument("--only", default="", help="comma list of case numbers (0 = reference, kept)")
    parser.add_argument("--alongside", action="store_true", help="only: spinning on/off next to pyvips work")
    args = parser.parse_args()
    if args.alongside:
        alongside(args.runs)
        return
    cases = CASES
    if args.only:
        wanted = {0, *(int(i) for i in args.only.split(","))}
        cases = [c for i, c in enumerate(CASES) if i in wanted]
    print(f"onnxruntime {ort.__version__}, load average {load()}")
    with tempfile.TemporaryDirectory(prefix="cutout-ort-") as tmp:
        files = make_files(Path(tmp))
        rgb = prepare(pyvips.Image.new_from_file(str(SAMPLE)))
        batch = to_batch(rgb.thumbnail_image(1024, height=1024, size="force").numpy(), config_from_env().norm)
        sessions, built, outputs = {}, {}, {}
        for case in cases:
            sessions[case], built[case] = build(case, files)
            outputs[case] = sessions[case].run(["output"], {"input": batch})[0]  # also the warm-up
        times: dict[Case, list[float]] = {case: [] for case in cases}
        for round_ in range(args.runs):
            print(f"round {round_ + 1}/{args.runs}, load average {load()}", flush=True)
            for case in cases:
                start = time.perf_counter()
                sessions[case].run(["output"], {"input": batch})
                times[case].append(time.perf_counter() - start)
        reference = statistics.median(times[cases[0]])
        print(f"\nmedian of {args.runs} interleaved inferences, load average now {load()}")
        print("| case | build | inference median (min) | ratio | max output diff |")
        print("|---|---:|---:|---:|---:|")
        for case in cases:
            med = statistics.median(times[case])
            diff = float(np.abs(outputs[case] - outputs[cases[0]]).max())
            print(
                f"| {case.name} | {built[case]:.2f} s | {med:.2f} s ({min(times[case]):.2f}) | "
                f"{med / reference:.3f} | {diff:.2e} |",
                flush=True,
            )
        if args.ecssd:
            print(f"\necssd_subset64, first {args.ecssd} images, mask pipeline without fine edges:")
            print("| case | mean IoU | max alpha diff from reference |")
            print("|---|---:|---:|")
            for case, (iou, alpha_diff) in ecssd_quality(cases, sessions, args.ecssd).items():
                print(f"| {case.name} | {iou:.4f} | {alpha_diff:.4f} |")


def alongside(runs: int) -> None:
    """Inference while another thread renders with pyvips (resize, sharpen, JPEG), as a request
    thread would: spinning on vs off, interleaved. Reports inference time and renders per second."""
    with tempfile.TemporaryDirectory(prefix="cutout-ort-") as tmp:
        path = Path(tmp) / "fp32.onnx"
        write_float32(default_model_path(), path)
        sessions = {}
        for spinning in (True, False):
            options = session_options(2, "all", spinning)
            sessions[spinning] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(0).random((1, 3, 1024, 1024), dtype=np.float32) - np.float32(0.5)
    for session in sessions.values():
        session.run(["output"], {"input": batch})
    pyvips.cache_set_max(0)
    big = pyvips.Image.new_from_file(str(SAMPLE)).resize(3).copy_memory()
    stop, done = threading.Event(), [0]

    def render() -> None:
        while not stop.is_set():
            big.resize(0.7).sharpen().jpegsave_buffer(Q=85)
            done[0] += 1

    results: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    for round_ in range(runs):
        print(f"round {round_ + 1}/{runs}, load average {load()}", flush=True)
        for spinning, session in sessions.items():
            stop.clear()
            thread = threading.Thread(target=render)
            thread.start()
            time.sleep(0.3)
            before, start = done[0], time.perf_counter()
            session.run(["output"], {"input": batch})
            seconds = time.perf_counter() - start
            renders = done[0] - before
            stop.set()
            thread.join()
            results[spinning][0].append(seconds)
            results[spinning][1].append(renders / seconds)
    for spinning, (timings, rates) in results.items():
        print(
            f"spinning {'on ' if spinning else 'off'}: inference median {statistics.median(timings):.2f} s"
            f" (min {min(timings):.2f}), renders alongside {statistics.median(rates):.2f}/s"
        )


def ecssd_quality(
    cases: list[Case], sessions: dict[Case, ort.InferenceSession], limit: int
) -> dict[Case, tuple[float, float]]:
    items = list(pairs(ROOT.parent / "shared" / "eval" / "ecssd_subset64", limit))
    config = config_from_env()
    ious: dict[Case, list[float]] = {case: [] for case in cases}
    diffs: dict[Case, float] = {case: 0.0 for case in cases}
    for pair in items:
        image = pyvips.Image.new_from_file(str(pair.image))
        truth = load_mask(pair.mask)
        alphas = {}
        for case in cases:
            segmenter = IsNetSegmenter(Model(config, sessions[case], MEDIUM.sha256))
            alpha = segmenter.segment(image, fine_edges=False).alpha.numpy()
            alphas[case] = np.asarray(alpha, np.float32) / 255
            ious[case].append(scores(alphas[case], truth).iou)
        for case in cases:
            diffs[case] = max(diffs[case], float(np.abs(alphas[case] - alphas[cases[0]]).max()))
    return {case: (float(np.mean(ious[case])), diffs[case]) for case in cases}


if __name__ == "__main__":
    main()
