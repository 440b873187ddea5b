"""The seam between the rendering engine and background removal.

The engine never talks to onnxruntime. At an ``e_background_removal`` step it fits the image into
``SEGMENT_MAX_SIDE``, asks a ``MaskSource`` for the alpha mask of the image it holds, then composes the
cut-out with ``cut_out``. The server's MaskSource looks in the mask cache first; the command line's calls
the segmenter directly. ``transform/ops/`` reaches background removal only through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pyvips

#: Larger photographs are scaled down to this longer side before their background is removed (as
#: Cloudinary does); the segmenter's own inputs never exceed it either.
SEGMENT_MAX_SIDE = 6144


@dataclass(frozen=True)
class Mask:
    """A single-band 8-bit alpha mask the size of the image it was made from, and its confidence."""

    alpha: pyvips.Image
    confidence: float


class Segmenter(Protocol):
    """Something that turns a photograph into a foreground mask (IS-Net on onnxruntime, in practice)."""

    #: Identifies what the masks depend on (model file, pipeline version, input size and the like);
    #: part of every cache key of a mask or of a derivative that removes a background.
    model_id: str

    def segment(self, image: pyvips.Image, *, fine_edges: bool) -> Mask: ...


class MaskSource(Protocol):
    """Gives the mask for ``image``. ``key`` identifies the image content at this point of the plan
    (original fingerprint plus the canonical steps before it), so equal keys may share a cached mask."""

    def __call__(self, image: pyvips.Image, *, key: str, fine_edges: bool) -> Mask: ...


@dataclass(frozen=True)
class DirectMasks:
    """A MaskSource that always runs the segmenter (command line, eager without a server)."""

    segmenter: Segmenter

    def __call__(self, image: pyvips.Image, *, key: str, fine_edges: bool) -> Mask:
        return self.segmenter.segment(image, fine_edges=fine_edges)


def fit_for_segmentation(image: pyvips.Image) -> pyvips.Image:
    """``image``, scaled down to fit ``SEGMENT_MAX_SIDE`` when it is larger."""
    if max(image.width, image.height) <= SEGMENT_MAX_SIDE:
        return image
    return image.thumbnail_image(SEGMENT_MAX_SIDE, height=SEGMENT_MAX_SIDE)


def cut_out(image: pyvips.Image, alpha: pyvips.Image) -> pyvips.Image:
    """``image`` with ``alpha`` as its transparency and the foreground colours estimated at the edges
    (see transform/segment/compose.py, imported here only when a background is removed)."""
    from transform.segment.compose import apply_alpha

    return apply_alpha(image, alpha)
