"""Background removal: IS-Net on onnxruntime behind ``transform.seam.Segmenter``.

``load_segmenter()`` is called once at start-up; it raises ModelMissing (with how to fix it) rather
than letting the first request fail.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from transform.segment.model import (
    ModelMissing,
    SegmenterConfigError,
    SegmenterError,
    config_from_env,
    load_model,
)
from transform.segment.paths import default_model_path
from transform.segment.segmenter import PIPELINE_VERSION, IsNetSegmenter


def load_segmenter(
    model_path: str | os.PathLike[str] | None = None,
    *,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    spin: bool | None = None,
    spin_default: bool = False,
) -> IsNetSegmenter:
    """``spin_default``: what an unset CUTOUT_ORT_SPIN means (a batch command may let threads spin)."""
    config = config_from_env(model_path, threads=threads, providers=providers, spin=spin,
                             spin_default=spin_default)
    return IsNetSegmenter(load_model(config), quality=config.quality)


__all__ = [
    "PIPELINE_VERSION",
    "IsNetSegmenter",
    "ModelMissing",
    "SegmenterConfigError",
    "SegmenterError",
    "default_model_path",
    "load_segmenter",
]
