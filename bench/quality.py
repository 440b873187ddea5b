"""Cut-out quality of the real pipeline against ground truth, beside the raw model, per photo.

    .venv/bin/python bench/quality.py ../shared/eval/ecssd_val200 [../shared/eval/ecssd_subset64 ...]
        [--levels default,best] [--old] [--fine-edges] [--limit N] [--csv-dir DIR]

Each DIR holds ``image/`` and ``mask/`` with matching stems (and optionally ``categories.csv``). For
every photo, in the same run and with the same model file, this scores:

* ``B``: the network alone with rembg's recipe (model.md recipe B: square 1024x1024 input, min-max
  stretch, Lanczos to full size). It is the floor: a photo whose cut-out scores more than FLOOR IoU
  below it is listed, with both IoUs.
* each quality level (``CUTOUT_QUALITY``; ``default`` is what ``e_background_removal`` serves);
* ``old``: with ``--old``, the default before 2026-12-06 (the photo's aspect ratio at the input);
* ``fine``: with ``--fine-edges``, what ``e_background_removal:fineedges_y`` serves.

Inference is shared where the inputs are identical: the model wrapper memoises ``run`` on the batch, so
recipe B, the default and fine edges cost one square inference, and every variant still goes through
the real pre- and post-processing. Each variant's time per photo counts the inferences it needed (even
when another variant ran them first) plus its own work. A CSV per set (``--csv-dir``, default
``bench/out``) has one row per photo. Also printed: the confidence score against IoU (Spearman) and how
well its threshold flags bad cut-outs (``transform.segment.confidence.REVIEW_BELOW``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import time
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metrics import Scores, load_mask, mean, pairs, scores  # noqa: E402

from transform.segment import load_segmenter  # noqa: E402
from transform.segment.confidence import REVIEW_BELOW  # noqa: E402
from transform.segment.guided import from_numpy, resize_to  # noqa: E402
from transform.segment.segmenter import QUALITIES, IsNetSegmenter, prepare, stretch  # noqa: E402

#: A photo whose IoU is more than this below recipe B's on the same photo is "under the floor".
FLOOR = 0.05
#: A cut-out under this IoU is a bad one, which the confidence score should flag for review.
BAD_IOU = 0.7


class MemoModel:
    """Wraps a segment Model: ``run`` on a batch already run for this photo returns the stored result,
    and ``spent`` tells each caller the inference seconds its batches cost, stored or not."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._runs: dict[str, tuple[np.ndarray, float]] = {}
        self.spent = 0.0  # inference seconds of the batches asked for, stored or not
        self.fresh = 0.0  # of those, the seconds really spent now

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def new_photo(self) -> None:
        self._runs.clear()

    def run(self, batch: np.ndarray, **options: Any) -> np.ndarray:
        key = hashlib.sha256(batch.tobytes() + str(batch.shape).encode()).hexdigest()
        if key not in self._runs:
            t = time.perf_counter()
            result = self._model.run(batch, **options)
            self._runs[key] = (result, time.perf_counter() - t)
            self.fresh += self._runs[key][1]
        result, seconds = self._runs[key]
        self.spent += seconds
        return result


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


def recipe_b(segmenter: IsNetSegmenter, rgb: pyvips.Image) -> np.ndarray:
    raw = resize_to(from_numpy(stretch(segmenter.probability(rgb))), rgb.width, rgb.height)
    return to_float((raw.clamp(min=0, max=1) * 255 + 0.5).cast("uchar"))


def cut_out(
    segmenter: IsNetSegmenter, image: pyvips.Image, rgb: pyvips.Image, *, fine_edges: bool
) -> tuple[np.ndarray, float]:
    mask = segmenter.segment(image, fine_edges=fine_edges)
    return to_float(mask.alpha), mask.confidence


def evaluate(folder: Path, args: argparse.Namespace, memo: MemoModel, csv_dir: Path) -> list[str]:
    """Score every photo of ``folder``, print the tables; the failures ``--check`` counts: each level's
    photos under recipe B's floor, and a level whose mean IoU or MAE is not better than recipe B's."""
    levels = {level: IsNetSegmenter(memo, quality=level) for level in args.levels}  # type: ignore[arg-type]
    plain = levels.get("default") or IsNetSegmenter(memo)  # type: ignore[arg-type]
    variants = ["B", *levels] + (["old"] if args.old else []) + (["fine"] if args.fine_edges else [])
    results: dict[str, list[Scores]] = defaultdict(list)
    by_category: dict[tuple[str, str], list[Scores]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)
    confidences: dict[str, list[float]] = defaultdict(list)
    rows: list[dict[str, Any]] = []

    old = IsNetSegmenter(memo, aspect=True) if args.old else None  # type: ignore[arg-type]
    makers: dict[str, Any] = {"B": lambda image, rgb: (recipe_b(plain, rgb), None)}
    for level, segmenter in levels.items():
        makers[level] = partial(cut_out, segmenter, fine_edges=False)
    if old is not None:
        makers["old"] = partial(cut_out, old, fine_edges=False)
    if args.fine_edges:
        makers["fine"] = partial(cut_out, plain, fine_edges=True)

    print(f"\n{folder.name}: " + "  ".join(f"{v:>22}" for v in variants) + "  confidence", flush=True)
    for pair in pairs(folder, args.limit):
        memo.new_photo()
        image = pyvips.Image.new_from_file(str(pair.image))
        truth = load_mask(pair.mask)
        rgb = prepare(image)
        row: dict[str, Scores] = {}
        confidence: dict[str, float] = {}
        for v in variants:
            memo.spent = memo.fresh = 0.0
            t = time.perf_counter()
            alpha, score = makers[v](image, rgb)
            # Wall time, with stored inferences counted at what they cost when they were first run.
            seconds[v] += time.perf_counter() - t - memo.fresh + memo.spent
            row[v] = scores(alpha, truth)
            if v in levels:
                confidence[v] = score
                confidences[v].append(score)
        category = pair.category or "-"
        for v in variants:
            results[v].append(row[v])
            by_category[(category, v)].append(row[v])
        record: dict[str, Any] = {"photo": pair.stem, "category": category}
        for v in variants:
            record.update({f"{v}_iou": round(row[v].iou, 5), f"{v}_mae": round(row[v].mae, 5),
                           f"{v}_sad": round(row[v].sad, 3)})
        record.update({f"{level}_confidence": round(c, 4) for level, c in confidence.items()})
        rows.append(record)
        cells = "  ".join(f"{row[v].iou:.3f} {row[v].mae:.4f} {row[v].sad:6.2f}" for v in variants)
        conf = " ".join(f"{c:.3f}" for c in confidence.values())
        print(f"{pair.stem:<10} {cells}  {conf}", flush=True)

    csv_dir.mkdir(parents=True, exist_ok=True)
    table = csv_dir / f"quality-{folder.name}.csv"
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["photo"])
        writer.writeheader()
        writer.writerows(rows)

    n = len(results["B"])
    print(f"\n{folder.name}: {n} photos (IoU MAE SAD/1000; per-photo table {table})")
    categories = sorted({c for c, _ in by_category})
    if categories != ["-"]:
        for c in categories:
            for v in variants:
                print(f"  {c:<14} {v:<8} {fmt(mean(by_category[(c, v)]))}  ({len(by_category[(c, v)])})")
    floor = [s.iou - FLOOR for s in results["B"]]
    for v in variants:
        under = sum(s.iou < f for s, f in zip(results[v], floor, strict=True))
        print(f"ALL {v:<8} {fmt(mean(results[v]))}  under the floor {under:3d}  "
              f"{seconds[v] / max(n, 1):.2f} s/photo")
    failures: list[str] = []
    for v in variants[1:]:
        for record, s, f in zip(rows, results[v], floor, strict=True):
            if s.iou < f:
                print(f"  under the floor: {v} {record['photo']} IoU {s.iou:.3f} (recipe B {f + FLOOR:.3f})")
                failures.append(f"{folder.name} {v} {record['photo']} under the floor")
    for level in levels:
        ours, raw = mean(results[level]), mean(results["B"])
        if not (ours.iou > raw.iou and ours.mae < raw.mae):
            failures.append(f"{folder.name} {level}: mean {fmt(ours)} not better than recipe B's {fmt(raw)}")
    for level in levels:
        ious = [s.iou for s in results[level]]
        scored = confidences[level]
        bad = [c for c, i in zip(scored, ious, strict=True) if i < BAD_IOU]
        good = [c for c, i in zip(scored, ious, strict=True) if i >= BAD_IOU]
        flagged_bad = sum(c < REVIEW_BELOW for c in bad)
        flagged_good = sum(c < REVIEW_BELOW for c in good)
        print(f"confidence ({level}) vs IoU: Spearman {spearman(scored, ious):.3f}; below {REVIEW_BELOW} it "
              f"flags {flagged_bad}/{len(bad)} cut-outs with IoU < {BAD_IOU}, "
              f"{flagged_good}/{len(good)} others")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", type=Path, nargs="+")
    parser.add_argument("--levels", default=",".join(QUALITIES), help="quality levels to score")
    parser.add_argument("--old", action="store_true", help="also score the aspect-ratio default of before")
    parser.add_argument("--fine-edges", action="store_true", help="also score fineedges_y")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos of each set")
    parser.add_argument("--csv-dir", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a photo of a level falls under recipe B's floor or a level's mean "
                             "is not better than recipe B's (`make quality`)")
    args = parser.parse_args(argv)
    args.levels = [level for level in args.levels.split(",") if level]
    unknown = set(args.levels) - set(QUALITIES)
    if unknown:
        parser.error(f"unknown quality levels {sorted(unknown)}; known: {', '.join(QUALITIES)}")
    memo = MemoModel(load_segmenter().model)
    print(f"model {memo.config.path}")
    failures = [failure for folder in args.dirs for failure in evaluate(folder, args, memo, args.csv_dir)]
    if args.check and failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
