"""Cut-out quality of the real pipeline against ground truth.

    .venv/bin/python bench/quality.py ../shared/eval/ecssd_subset64 [--fine-edges] [--limit N]

DIR holds ``image/`` and ``mask/`` with matching stems (and optionally ``categories.csv``). For every
image this runs ``load_segmenter()`` end to end (``segment(image, fine_edges=...)``), and scores:

* ``raw``: the network alone, recipe B (min-max stretch, Lanczos to full size): the floor;
* ``default``: what ``e_background_removal`` serves;
* ``fine``: with ``--fine-edges``, what ``e_background_removal:fineedges_y`` serves.

The three share one inference per image: the model wrapper below memoises ``run`` on the exact input
batch, so every variant still goes through the real pre- and post-processing. Metrics are defined in
``bench/metrics.py``. Also printed: the rank correlation between the confidence score and IoU.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metrics import Scores, load_mask, mean, pairs, scores  # noqa: E402

from transform.segment import load_segmenter  # noqa: E402
from transform.segment.guided import from_numpy, resize_to  # noqa: E402
from transform.segment.segmenter import IsNetSegmenter, prepare, stretch  # noqa: E402


class MemoModel:
    """Wraps a segment Model; ``run`` on an identical batch returns the stored result."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._last: tuple[str, np.ndarray] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def run(self, batch: np.ndarray, **options: Any) -> np.ndarray:
        key = hashlib.sha256(batch.tobytes()).hexdigest()
        if self._last is None or self._last[0] != key:
            self._last = (key, self._model.run(batch, **options))
        return self._last[1]


def to_float(alpha: pyvips.Image) -> np.ndarray:
    return np.asarray(alpha.numpy(), dtype=np.float32) / 255


def spearman(x: list[float], y: list[float]) -> float:
    if len(x) < 3:
        return float("nan")
    rx = np.argsort(np.argsort(x)).astype(float)
    ry = np.argsort(np.argsort(y)).astype(float)
    return float(np.corrcoef(rx, ry)[0, 1])


def fmt(s: Scores) -> str:
    return f"IoU {s.iou:.4f}  MAE {s.mae:.4f}  SAD {s.sad:6.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--fine-edges", action="store_true", help="also score fineedges_y")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    args = parser.parse_args(argv)

    base = load_segmenter()
    segmenter = IsNetSegmenter(MemoModel(base.model))  # type: ignore[arg-type]
    variants = ["raw", "default"] + (["fine"] if args.fine_edges else [])
    results: dict[str, list[Scores]] = defaultdict(list)
    by_category: dict[tuple[str, str], list[Scores]] = defaultdict(list)
    confidences: list[float] = []
    seconds: dict[str, float] = defaultdict(float)

    print(f"{'image':<10} {'category':<14} " + "  ".join(f"{v:>28}" for v in variants) + "  confidence")
    for pair in pairs(args.dir, args.limit):
        image = pyvips.Image.new_from_file(str(pair.image))
        truth = load_mask(pair.mask)
        row: dict[str, Scores] = {}
        t = time.perf_counter()
        rgb = prepare(image)
        raw = resize_to(from_numpy(stretch(segmenter.probability(rgb))), rgb.width, rgb.height)
        row["raw"] = scores(to_float((raw.clamp(min=0, max=1) * 255 + 0.5).cast("uchar")), truth)
        seconds["raw"] += time.perf_counter() - t
        t = time.perf_counter()
        mask = segmenter.segment(image, fine_edges=False)
        row["default"] = scores(to_float(mask.alpha), truth)
        seconds["default"] += time.perf_counter() - t
        confidences.append(mask.confidence)
        if args.fine_edges:
            t = time.perf_counter()
            row["fine"] = scores(to_float(segmenter.segment(image, fine_edges=True).alpha), truth)
            seconds["fine"] += time.perf_counter() - t
        category = pair.category or "-"
        for v in variants:
            results[v].append(row[v])
            by_category[(category, v)].append(row[v])
        cells = "  ".join(f"{row[v].iou:.3f} {row[v].mae:.4f} {row[v].sad:7.2f}" for v in variants)
        print(f"{pair.stem:<10} {category:<14} {cells:>}  {mask.confidence:.3f}", flush=True)

    n = len(results["raw"])
    print(f"\n{args.dir.name}: {n} images (per image: IoU MAE SAD/1000)")
    categories = sorted({c for c, _ in by_category})
    if categories != ["-"]:
        for c in categories:
            for v in variants:
                print(f"  {c:<14} {v:<8} {fmt(mean(by_category[(c, v)]))}  ({len(by_category[(c, v)])})")
    for v in variants:
        extra = "" if v == "raw" else " (raw inference time shared, counted under raw)"
        print(f"ALL {v:<8} {fmt(mean(results[v]))}   {seconds[v] / max(n, 1):.2f} s/image{extra}")
    ious = [s.iou for s in results["default"]]
    print(f"confidence vs IoU (default), Spearman rank correlation: {spearman(confidences, ious):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
