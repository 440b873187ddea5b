"""Cut-out quality metrics, as defined in shared/reference/model.md, and the evaluation-set layout.

A set is a folder with ``image/`` and ``mask/`` holding files with matching stems (masks are 8-bit, any
number of bands; the first is used) and optionally ``categories.csv`` with ``id,category`` columns.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyvips

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Scores:
    iou: float
    mae: float
    sad: float  # already divided by 1000


def scores(alpha: npt.NDArray[np.floating], truth: npt.NDArray[np.floating]) -> Scores:
    """IoU of ``alpha > 0.5`` against ``truth > 0.5`` (1.0 when both are empty), mean and sum/1000 of
    ``|alpha - truth|``; both maps in [0, 1] and the same shape."""
    if alpha.shape != truth.shape:
        raise ValueError(f"alpha {alpha.shape} and truth {truth.shape} differ in shape")
    a = np.asarray(alpha, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    pa, pt = a > 0.5, t > 0.5
    union = np.count_nonzero(pa | pt)
    iou = np.count_nonzero(pa & pt) / union if union else 1.0
    diff = np.abs(a - t)
    return Scores(iou=float(iou), mae=float(diff.mean()), sad=float(diff.sum() / 1000))


def mean(items: list[Scores]) -> Scores:
    if not items:
        return Scores(float("nan"), float("nan"), float("nan"))
    return Scores(
        iou=float(np.mean([s.iou for s in items])),
        mae=float(np.mean([s.mae for s in items])),
        sad=float(np.mean([s.sad for s in items])),
    )


def load_mask(path: Path) -> npt.NDArray[np.float32]:
    """An 8-bit mask file as float32 HxW in [0, 1] (first band)."""
    image = pyvips.Image.new_from_file(str(path))
    arr = np.asarray(image.extract_band(0).cast("uchar").numpy(), dtype=np.float32)
    return arr / np.float32(255)


@dataclass(frozen=True)
class Pair:
    stem: str
    image: Path
    mask: Path
    category: str | None


def pairs(root: Path, limit: int | None = None) -> Iterator[Pair]:
    """The image/mask pairs of an evaluation set, sorted by stem."""
    categories: dict[str, str] = {}
    table = root / "categories.csv"
    if table.exists():
        with table.open(newline="") as f:
            categories = {row["id"]: row["category"] for row in csv.DictReader(f)}
    masks = {p.stem: p for p in (root / "mask").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    images = sorted(p for p in (root / "image").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    count = 0
    for image in images:
        if image.stem not in masks:
            continue
        if limit is not None and count >= limit:
            return
        count += 1
        yield Pair(image.stem, image, masks[image.stem], categories.get(image.stem))
