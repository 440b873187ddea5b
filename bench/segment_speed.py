"""Background-removal speed: our command vs a bare script vs rembg, each as a whole process.

    .venv/bin/python bench/segment_speed.py [--runs 3] [--ecssd N] [--skip-rembg]

The reference is a bare script doing the least possible work (pyvips thumbnail to 1024x1024, one
onnxruntime inference with default settings, nothing written), run in the same session, alternating
with ours, so the ratio holds on a noisy shared machine. All three use the model file remove-bg uses
by default (the float32 copy when fetch-model has written it; printed at the start): rembg (the
`bench` extra) through a symlink at $REMBG_HOME/models/isnet-general-use/isnet-general-use.onnx.
Inference settings and model copies are compared in bench/segment_ort.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.metrics import Scores, load_mask, mean, pairs, scores  # noqa: E402
from transform.segment import load_segmenter  # noqa: E402
from transform.segment.fetch import preferred_model_path  # noqa: E402

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


def whole_process(folder: Path, photo: Path, runs: int, with_rembg: bool) -> dict[str, list[float]]:
    env = {**os.environ, "REMBG_HOME": str(rembg_home(folder))}
    (folder / "bare.py").write_text(BARE)
    (folder / "run_rembg.py").write_text(REMBG)
    model = str(preferred_model_path())
    cases: dict[str, list[str]] = {
        "bare script (thumbnail + inference)": [PY, str(folder / "bare.py"), model, str(photo)],
        "cutout remove-bg --mask": [CUTOUT, "remove-bg", str(photo), "-o", str(folder / "o"), "--mask"],
        "cutout remove-bg (cut-out PNG)": [CUTOUT, "remove-bg", str(photo), "-o", str(folder / "o")],
        "cutout remove-bg (cut-out WebP)": [CUTOUT, "remove-bg", str(photo), "-o", str(folder / "o"),
                                            "--format", "webp"],
    }
    if with_rembg:
        cases["rembg only_mask (PNG)"] = [PY, str(folder / "run_rembg.py"), str(photo), str(folder / "r.png")]
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):  # alternate, so slow phases of the shared machine hit every case alike
        for name, command in cases.items():
            times[name].append(timed(command, env))
    return times


def ecssd(folder: Path, limit: int, with_rembg: bool) -> dict[str, tuple[float, Scores]]:
    root = ROOT.parent / "shared" / "eval" / "ecssd_subset64"
    items = list(pairs(root, limit))
    segmenter = load_segmenter()

    def ours(path: Path) -> np.ndarray:
        mask = segmenter.segment(pyvips.Image.new_from_file(str(path)), fine_edges=False)
        return np.asarray(mask.alpha.numpy(), dtype=np.float32) / 255

    runners: dict[str, Callable[[Path], np.ndarray]] = {"cutout": ours}
    if with_rembg:
        os.environ["REMBG_HOME"] = str(folder / "rembg")
        from PIL import Image
        from rembg import new_session, remove

        session = new_session("isnet-general-use")

        def theirs(path: Path) -> np.ndarray:
            mask = remove(Image.open(path), session=session, only_mask=True)
            return np.asarray(mask, dtype=np.float32) / 255

        runners["rembg"] = theirs
    results: dict[str, tuple[list[float], list[Scores]]] = {name: ([], []) for name in runners}
    for pair in items:
        truth = load_mask(pair.mask)
        for name, run in runners.items():
            start = time.perf_counter()
            alpha = run(pair.image)
            results[name][0].append(time.perf_counter() - start)
            results[name][1].append(scores(alpha, truth))
    return {name: (statistics.mean(t), mean(s)) for name, (t, s) in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ecssd", type=int, default=64, metavar="N", help="ecssd_subset64 images (0: skip)")
    parser.add_argument("--skip-rembg", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cutout-bench-") as tmp:
        folder = Path(tmp)
        photo = photo_12mp(folder)
        print(f"model file (remove-bg, bare script, rembg): {preferred_model_path()}")
        times = whole_process(folder, photo, args.runs, not args.skip_rembg)
        bare = statistics.median(times["bare script (thumbnail + inference)"])
        print(f"12 MP JPEG (4000x3000), whole process, median of {args.runs} (min):")
        for name, values in times.items():
            med = statistics.median(values)
            print(f"  {name:40s} {med:6.2f} s ({min(values):.2f})  ratio {med / bare:.2f}")
        if args.ecssd:
            print(f"ecssd_subset64 ({args.ecssd} images), in one process, mask only:")
            for name, (seconds, s) in ecssd(folder, args.ecssd, not args.skip_rembg).items():
                quality = f"IoU {s.iou:.4f}  MAE {s.mae:.4f}  SAD {s.sad:.2f}"
                print(f"  {name:8s} mean {seconds:.2f} s/image  {quality}")


if __name__ == "__main__":
    main()
