"""`cutout remove-bg`: cut-outs (RGBA) or masks of local images, one output per input."""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from pathlib import Path

import pyvips

from transform.segment import IsNetSegmenter, SegmenterError, load_segmenter
from transform.segment.compose import apply_alpha
from transform.segment.segmenter import MAX_SIDE

# 12 MP RGBA PNG: compression 6 (libvips' default) took 1.0-1.1 s, 2 took 0.55 s for a file 6 % larger,
# 1 took 0.35 s but 43 % larger. WebP: lossy colour, lossless alpha so edges stay exact; effort 2 took
# 2.6-3.0 s, the default 4 took 4.1-4.4 s for a file 1 % smaller (bench/RESULTS.md).
SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "png": {"compression": 2},
    "webp": {"Q": 90, "alpha_q": 100, "effort": 2},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR", help="output folder")
    parser.add_argument("--fine-edges", action="store_true", help="matting pass for hair and fur (slower)")
    parser.add_argument("--mask", action="store_true", help="write the 8-bit single-band mask instead")
    parser.add_argument("--format", choices=sorted(SAVE_OPTIONS), default="png", help="output format")


def run(args: argparse.Namespace) -> int:
    stems = [p.stem for p in args.inputs]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        print(f"cutout remove-bg: inputs share the output name(s) {', '.join(duplicates)}", file=sys.stderr)
        return 2
    if max(map(_pixels, args.inputs)) <= KEEP_FREED_MAX_PIXELS:
        _keep_freed_memory()
    try:
        # A batch job has the cores to itself: idle onnxruntime threads may spin (CUTOUT_ORT_SPIN wins).
        segmenter = load_segmenter(spin=None if "CUTOUT_ORT_SPIN" in os.environ else True)
    except SegmenterError as exc:
        print(f"cutout remove-bg: {exc}", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.inputs:
        target = args.output / f"{path.stem}.{args.format}"
        try:
            confidence = process(segmenter, path, target, mask_only=args.mask, fine_edges=args.fine_edges)
        except (pyvips.Error, OSError) as exc:
            failed += 1
            print(f"{path}: failed: {_reason(exc)}", file=sys.stderr)
            continue
        print(f"{path}: confidence {confidence:.3f} -> {target}")
    return 1 if failed else 0


#: Above this size the freed memory glibc would keep raises the peak too much: 6144x6144 with fine
#: edges went from 1.21 to 1.38 GB (target 1.5 GB), for a speed-up that matters less at that size.
KEEP_FREED_MAX_PIXELS = 4096 * 4096


def _pixels(path: Path) -> int:
    """Width x height from the file's header (nothing decoded); 0 when it cannot be read."""
    try:
        image = pyvips.Image.new_from_file(str(path))
    except pyvips.Error:
        return 0
    return int(image.width * image.height)


def _keep_freed_memory() -> None:
    """Let glibc reuse freed large blocks instead of handing each back to the system at once.

    By default a block over glibc's (dynamic) mmap threshold is its own mapping, unmapped when freed,
    so the guided filter's many 3-40 MB temporaries are fresh memory whose every page faults on first
    touch: at 12 MP that is about 0.1 s of the mask's 0.35-0.45 s of post-processing (bench/RESULTS.md).
    Kept to this short-lived command: a long-running server would hold on to its peak. No-op off glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    libc.mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest accepted value on 64-bit
    libc.mallopt(m_trim_threshold, 1 << 30)


def process(
    segmenter: IsNetSegmenter, path: Path, target: Path, *, mask_only: bool, fine_edges: bool
) -> float:
    image = pyvips.Image.new_from_file(str(path)).autorot()
    if max(image.width, image.height) > MAX_SIDE:
        image = image.thumbnail_image(MAX_SIDE, height=MAX_SIDE)
    if not mask_only:
        image = image.copy_memory()  # the segmenter and the composer both read every pixel
    mask = segmenter.segment(image, fine_edges=fine_edges)
    out = mask.alpha if mask_only else apply_alpha(image, mask.alpha)
    out.write_to_file(str(target), **SAVE_OPTIONS[target.suffix.lstrip(".")])
    return mask.confidence


def _reason(exc: Exception) -> str:
    if isinstance(exc, pyvips.Error):
        lines = [line for line in str(exc.detail or exc.message).splitlines() if line.strip()]
        return f"cannot decode: {lines[0] if lines else exc.message}"
    return str(exc)
