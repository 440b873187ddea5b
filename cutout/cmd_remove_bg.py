"""`cutout remove-bg`: cut-outs (RGBA) or masks of local images, one output per input."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyvips

from cutout.cli import make_folder
from grammar.image_formats import EXTENSIONS
from transform.decode import fails_alone
from transform.files import replacing
from transform.seam import cut_out, fit_for_segmentation
from transform.segment import IsNetSegmenter, SegmenterError, load_segmenter

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
    parser.add_argument(
        "--mask", action="store_true", help="write the 8-bit mask instead (one band in PNG; WebP: grey RGB)"
    )
    parser.add_argument("--format", choices=sorted(SAVE_OPTIONS), default="png", help="output format")


def run(args: argparse.Namespace) -> int:
    created = _missing_folders(args.output)
    problem = _check_inputs(args.inputs) or _check_outputs(args.inputs, args.output, args.format)
    if problem:
        _remove_folders(created)
        print(f"cutout remove-bg: {problem}", file=sys.stderr)
        return 2
    largest = max(map(_pixels, args.inputs))  # each header read once, for both choices below
    if largest <= KEEP_FREED_MAX_PIXELS:
        _keep_freed_memory()
    try:
        # A batch job has the cores to itself: idle onnxruntime threads may spin (CUTOUT_ORT_SPIN wins).
        segmenter = load_segmenter(spin_default=True)
    except SegmenterError as exc:
        print(f"cutout remove-bg: {exc}", file=sys.stderr)
        return 2
    # Small photos are pipelined: while one runs the network (alone: the model is exclusive), the next is
    # decoded and prepared and the one before is upsampled and saved, so the pre- and post-processing
    # hides behind inference instead of adding to it. Large ones go one at a time (two in flight would
    # hold two photos' full-size work at once: the memory target).
    pipelined = len(args.inputs) > 1 and largest <= PIPELINE_MAX_PIXELS
    if pipelined:
        segmenter.model.exclusive = threading.Lock()

    def one(path: Path) -> tuple[Path, Path, float | str]:
        target = _target(args.output, path, args.format)
        try:
            return path, target, process(segmenter, path, target, mask_only=args.mask,
                                         fine_edges=args.fine_edges)
        except OutputError as exc:
            return path, target, f"cannot write {target}: {exc}"
        except (pyvips.Error, OSError) as exc:
            return path, target, f"cannot decode: {_decode_reason(exc, path, alone=not pipelined)}"

    failed = written = 0

    def report(path: Path, target: Path, outcome: float | str) -> None:
        nonlocal failed, written
        if isinstance(outcome, str):
            failed += 1
            print(f"{path}: failed: {outcome}", file=sys.stderr)
        else:
            written += 1
            print(f"{path}: confidence {outcome:.3f} -> {target}", flush=True)

    pool = ThreadPoolExecutor(PIPELINE_DEPTH if pipelined else 1)
    futures = [pool.submit(one, path) for path in args.inputs]
    reported = 0
    try:
        for future in futures:  # in input order
            outcome = future.result()
            reported += 1
            report(*outcome)
    except KeyboardInterrupt:
        # Ctrl-C: the images in hand are finished (whole files, renamed into place) and said like the
        # others, so the operator knows which outputs exist; those not started never are.
        for future in futures[reported:]:
            future.cancel()
        pool.shutdown(wait=True)  # a second Ctrl-C ends the process at once (cli.py)
        for future in futures[reported:]:
            if not future.cancelled() and future.exception() is None:
                report(*future.result())
        raise
    finally:
        pool.shutdown(wait=True)
    if not written:
        _remove_folders(created)  # nothing was written: no empty folder of ours left behind
    return 1 if failed else 0


#: Photos in flight at once when pipelining, and the largest photo that is (see ``run``).
PIPELINE_DEPTH = 2
PIPELINE_MAX_PIXELS = 2048 * 2048


def _target(folder: Path, path: Path, fmt: str) -> Path:
    return folder / f"{path.stem}.{fmt}"


def _check_inputs(inputs: list[Path]) -> str | None:
    """The first input that is not a file at all: said before the model loads, and in plain words rather
    than as libvips' failure to decode it."""
    for path in inputs:
        if path.is_dir():
            return f"{path} is a folder: give image files"
        if not path.exists():
            return f"{path}: no such file"
    return None


def _check_outputs(inputs: list[Path], folder: Path, fmt: str) -> str | None:
    """Why the outputs cannot be written, if so; checked (and the folder made and written to once) before
    the model loads, so a folder that refuses files costs no inference."""
    stems = [p.stem for p in inputs]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        return f"inputs share the output name(s) {', '.join(duplicates)}"
    target = _overwritten_input(inputs, folder, fmt)
    if target is not None:
        return f"the output {target} would overwrite an input; choose another -o folder or --format"
    if not folder.exists() and folder.suffix.lower().lstrip(".") in EXTENSIONS:
        # `cutout render ... -o cut.png` names a file; here that made a folder cut.png/ holding <stem>.png
        return (f"-o {folder} looks like a file name, but -o is the output folder (each INPUT gives "
                f"<name>.{fmt} in it); create the folder first if that is its name")
    problem = make_folder(folder)
    return f"-o: {problem}" if problem else None


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first (what -o would create)."""
    return [p for p in (folder, *folder.parents) if not p.exists() and not p.is_symlink()]


def _remove_folders(folders: list[Path]) -> None:
    for path in folders:  # deepest first; one that holds anything (ours or not) stays
        with contextlib.suppress(OSError):
            path.rmdir()


def _overwritten_input(inputs: list[Path], folder: Path, fmt: str) -> Path | None:
    """The first output that is also an input: the same path (symbolic links resolved), or the same file
    under another name (a case-insensitive file system; a hard link, refused too though replacing it
    would leave the input alone)."""
    paths = {_resolved(p) for p in inputs}
    files = {key for p in inputs if (key := _file_key(p)) is not None}
    for path in inputs:
        target = _target(folder, path, fmt)
        if _resolved(target) in paths or _file_key(target) in files:
            return target
    return None


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: decoding it reports the problem later
        return path.absolute()


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class OutputError(Exception):
    """Writing the output failed (as opposed to reading the input); the message says why."""


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
    image = fit_for_segmentation(image)
    if not mask_only:
        image = image.copy_memory()  # the segmenter and the composer both read every pixel
    mask = segmenter.segment(image, fine_edges=fine_edges)
    if mask_only and not image.hasalpha():
        out = mask.alpha
    else:
        out = cut_out(image, mask.alpha)
        if mask_only:  # the cut-out's alpha: transparency the original already had stays transparent
            out = out.extract_band(out.bands - 1)
    try:
        with replacing(target) as temp:
            try:
                out.write_to_file(str(temp), **SAVE_OPTIONS[target.suffix.lstrip(".")])
            except pyvips.Error as exc:
                raise OutputError(_write_reason(exc, temp)) from exc
    except OSError as exc:  # creating the temporary file or renaming it
        raise OutputError(exc.strerror or str(exc)) from exc
    return mask.confidence


def _lines(exc: pyvips.Error) -> list[str]:
    return [line for line in str(exc.detail or exc.message).splitlines() if line.strip()]


def _decode_reason(exc: pyvips.Error | OSError, path: Path, *, alone: bool) -> str:
    if isinstance(exc, OSError):
        return str(exc)
    lines = _lines(exc)
    if alone and lines:
        return lines[0]
    # Photos pipelined: libvips' error text is one buffer for the whole process, so this one's may be empty
    # or another photo's ("image: no property named `copy'"). Decoding it alone says whether it is damaged.
    if fails_alone(path):
        return "damaged image data"
    return lines[0] if lines else str(exc.message)


def _write_reason(exc: pyvips.Error, temp: Path) -> str:
    # libvips says "<temp>: write error", then "system error: File too large": the system's reason is the
    # useful part, and the temporary name would only puzzle.
    lines = _lines(exc)
    for line in lines:
        reason = line.removeprefix("system error: ")
        if reason != line and not reason.startswith("Unknown error"):
            return reason
    return lines[0].replace(f"{temp}: ", "") if lines else str(exc.message)
