"""Background-removal speed: our command vs a bare script vs rembg, each as a whole process.

    flock /tmp/cutout-cpu.lock .venv/bin/python bench/segment_speed.py [--runs 3] [--ecssd N]
        [--ecssd-rounds 2] [--skip-rembg] [--rembg-python PATH]

The reference is a bare script doing the least possible work (pyvips thumbnail to 1024x1024, one
onnxruntime inference with default settings, nothing written), run in the same session, alternating
with ours, so the ratio holds on a noisy shared machine. (cutout, the reference and rembg all run
the network at 1024x1024; ``CUTOUT_MODEL_ASPECT=keep`` would run cutout at the photo's aspect ratio.)
All three use the model file remove-bg uses
by default (the float32 copy when fetch-model has written it; printed at the start): rembg through a
symlink at $REMBG_HOME/models/isnet-general-use/isnet-general-use.onnx.

rembg runs in a scratch virtual environment of its own (default /tmp/rembg-venv, made on first use
with `pip install "rembg[cpu]"` and this environment's onnxruntime and numpy versions), never in the
project's. ecssd: each side is one process that loads its session once, then decodes and masks every
image (timed per image, session build excluded; masks written afterwards, untimed); the two
processes alternate, round after round, and the masks are scored here with the same metric code.
Inference settings and model copies are compared in bench/segment_ort.py, the onnxruntime arena in
bench/segment_arena.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.metrics import Scores, load_mask, mean, pairs, scores  # noqa: E402
from transform.segment.checks import preferred_model_path  # noqa: E402

PY = sys.executable
CUTOUT = str(Path(PY).parent / "cutout")
SAMPLE = ROOT / "cutout" / "samples" / "docs" / "rmv_bgd" / "woman_orig.jpg"

BARE = r"""
import sys
import numpy as np, onnxruntime as ort, pyvips
options = ort.SessionOptions()
options.enable_cpu_mem_arena = False
options.enable_mem_pattern = False
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
image = pyvips.Image.thumbnail(sys.argv[2], 1024, height=1024, size="force")
x = image.numpy().astype(np.float32)
x = x / x.max() - 0.5
session.run(["output"], {"input": np.ascontiguousarray(x.transpose(2, 0, 1)[None])})
"""

REMBG = r"""
import sys
from PIL import Image
from rembg import new_session, remove
remove(Image.open(sys.argv[1]), session=new_session("isnet-general-use"), only_mask=True).save(sys.argv[2])
"""


def photo_12mp(folder: Path) -> Path:
    """A 4000x3000 JPEG made from a sample photo (upscaled, with sensor-like noise so it decodes and
    compresses like a camera file rather than a smooth upscale)."""
    path = folder / "photo12mp.jpg"
    image = pyvips.Image.new_from_file(str(SAMPLE)).thumbnail_image(4000, height=3000, size="force")
    noise = pyvips.Image.gaussnoise(4000, 3000, sigma=4, mean=0)
    (image + noise).cast("uchar").write_to_file(str(path), Q=90)
    return path


def rembg_home(folder: Path) -> Path:
    target = folder / "rembg" / "models" / "isnet-general-use" / "isnet-general-use.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(preferred_model_path())
    return folder / "rembg"


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def whole_process(folder: Path, photo: Path, runs: int, rembg_python: str | None) -> dict[str, list[float]]:
    env = {**os.environ, "REMBG_HOME": str(folder / "rembg")}
    (folder / "bare.py").write_text(BARE)
    (folder / "run_rembg.py").write_text(REMBG)
    model = str(preferred_model_path())
    cases: dict[str, list[str]] = {
        "bare script (thumbnail + inference)": [PY, str(folder / "bare.py"), model, str(photo)],
        "cutout remove-bg --mask": [CUTOUT, "remove-bg", str(photo), "-o", str(folder / "o"), "--mask"],
        "cutout remove-bg (cut-out PNG)": [CUTOUT, "remove-bg", str(photo), "-o", str(folder / "o")],
        "cutout remove-bg (cut-out WebP)": [
            CUTOUT,
            "remove-bg",
            str(photo),
            "-o",
            str(folder / "o"),
            "--format",
            "webp",
        ],
    }
    if rembg_python:
        cases["rembg only_mask (PNG)"] = [
            rembg_python,
            str(folder / "run_rembg.py"),
            str(photo),
            str(folder / "r.png"),
        ]
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):  # alternate, so slow phases of the shared machine hit every case alike
        for name, command in cases.items():
            times[name].append(timed(command, env))
    return times


OURS_BATCH = r"""
import json, sys, time
import pyvips
from transform.segment import load_segmenter
segmenter = load_segmenter(spin=True)  # the settings `cutout remove-bg` uses
times = []
for src, dst in json.loads(sys.argv[1]):
    start = time.perf_counter()
    mask = segmenter.segment(pyvips.Image.new_from_file(src), fine_edges=False)
    pixels = mask.alpha.numpy()
    times.append(time.perf_counter() - start)
    pyvips.Image.new_from_array(pixels).write_to_file(dst)
print(json.dumps(times))
"""

REMBG_BATCH = r"""
import json, sys, time
from PIL import Image
from rembg import new_session, remove
session = new_session("isnet-general-use")
times = []
for src, dst in json.loads(sys.argv[1]):
    start = time.perf_counter()
    mask = remove(Image.open(src), session=session, only_mask=True)
    mask.load()
    times.append(time.perf_counter() - start)
    mask.save(dst)
print(json.dumps(times))
"""


def ensure_rembg(python: str) -> str:
    """The scratch environment's interpreter, made (once) when missing."""
    if Path(python).is_file():
        return python
    import numpy
    import onnxruntime

    venv = Path(python).parents[1]
    print(f"making {venv} for rembg (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pins = [f"onnxruntime=={onnxruntime.__version__}", f"numpy=={numpy.__version__}"]
    subprocess.run([python, "-m", "pip", "install", "-q", "rembg[cpu]", *pins], check=True)
    return python


def batch(
    script: Path, python: str, jobs: list[tuple[str, str]], env: dict[str, str]
) -> tuple[list[float], float]:
    """Per-image times the script reports, and the whole process's wall time (imports, session)."""
    start = time.perf_counter()
    proc = subprocess.run([python, str(script), json.dumps(jobs)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{script.name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    times: list[float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return times, wall


def ecssd(
    folder: Path, limit: int, rounds: int, rembg_python: str | None
) -> dict[str, tuple[list[float], list[float], Scores | None]]:
    """Per side: every round's per-image times (all rounds pooled), each round's whole-process wall
    time, and the last round's mean scores."""
    root = ROOT.parent / "shared" / "eval" / "ecssd_subset64"
    items = list(pairs(root, limit))
    env = {**os.environ, "REMBG_HOME": str(folder / "rembg"), "PYTHONPATH": str(ROOT)}
    sides: dict[str, tuple[Path, str]] = {"cutout": (folder / "ours_batch.py", PY)}
    (folder / "ours_batch.py").write_text(OURS_BATCH)
    if rembg_python:
        sides["rembg"] = (folder / "rembg_batch.py", rembg_python)
        (folder / "rembg_batch.py").write_text(REMBG_BATCH)
    names = [*sides, "remove-bg"]
    times: dict[str, list[float]] = {name: [] for name in names}
    walls: dict[str, list[float]] = {name: [] for name in names}
    for n in range(rounds):
        for name in names if n % 2 == 0 else list(reversed(names)):
            out = folder / f"masks-{name}"
            out.mkdir(exist_ok=True)
            if name == "remove-bg":
                # `cutout remove-bg --mask` over every file in one process: the command a user runs.
                command = [CUTOUT, "remove-bg", "--mask", *(str(p.image) for p in items), "-o", str(out)]
                walls[name].append(timed(command, env))
                continue
            jobs = [(str(p.image), str(out / f"{p.image.stem}.png")) for p in items]
            per_image, wall = batch(sides[name][0], sides[name][1], jobs, env)
            times[name] += per_image
            walls[name].append(wall)
    results: dict[str, tuple[list[float], list[float], Scores | None]] = {}
    for name in names:
        out = folder / f"masks-{name}"
        s = [scores(load_mask(out / f"{p.image.stem}.png"), load_mask(p.mask)) for p in items]
        results[name] = (times[name], walls[name], mean(s))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ecssd", type=int, default=64, metavar="N", help="ecssd_subset64 images (0: skip)")
    parser.add_argument(
        "--ecssd-rounds", type=int, default=2, metavar="N", help="alternating batch processes"
    )
    parser.add_argument("--skip-rembg", action="store_true")
    parser.add_argument("--rembg-python", default="/tmp/rembg-venv/bin/python", metavar="PATH")
    args = parser.parse_args()
    rembg_python = None if args.skip_rembg else ensure_rembg(args.rembg_python)
    with tempfile.TemporaryDirectory(prefix="cutout-bench-") as tmp:
        folder = Path(tmp)
        photo = photo_12mp(folder)
        rembg_home(folder)
        print(f"model file (remove-bg, bare script, rembg): {preferred_model_path()}")
        times = whole_process(folder, photo, args.runs, rembg_python) if args.runs else {}
        bare = statistics.median(times.get("bare script (thumbnail + inference)", [1.0]))
        if times:
            print(f"12 MP JPEG (4000x3000), whole process, median of {args.runs} (min):")
        for name, values in times.items():
            med = statistics.median(values)
            print(f"  {name:40s} {med:6.2f} s ({min(values):.2f})  ratio {med / bare:.2f}")
        if args.ecssd:
            print(
                f"ecssd_subset64 ({args.ecssd} images), one process per side and round, "
                f"{args.ecssd_rounds} rounds alternating, mask only, decode included:"
            )
            results = ecssd(folder, args.ecssd, args.ecssd_rounds, rembg_python)
            for name, (seconds, walls, s) in results.items():
                quality = f"IoU {s.iou:.4f}  MAE {s.mae:.4f}  SAD {s.sad:.2f}" if s else ""
                whole = ", ".join(f"{w / args.ecssd:.3f}" for w in walls)
                line = f"  {name:9s} whole process {whole} s/image"
                if seconds:
                    per_round = [
                        statistics.mean(seconds[i : i + args.ecssd])
                        for i in range(0, len(seconds), args.ecssd)
                    ]
                    rounds = ", ".join(f"{r:.3f}" for r in per_round)
                    line += f"; in-process mean {statistics.mean(seconds):.3f} s/image (rounds {rounds})"
                print(f"{line}  {quality}")
            if "rembg" in results:
                rembg = statistics.mean(results["rembg"][1])
                for name in ("cutout", "remove-bg"):
                    print(f"  {name} / rembg, whole process: {statistics.mean(results[name][1]) / rembg:.3f}")
                ratio = statistics.mean(results["cutout"][0]) / statistics.mean(results["rembg"][0])
                print(f"  cutout / rembg, in-process per image: {ratio:.3f}")


if __name__ == "__main__":
    main()
