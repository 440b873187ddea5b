"""The seam between the rendering engine and background removal.

The engine never talks to onnxruntime. At an ``e_background_removal`` step it asks a ``MaskSource``
for the alpha mask of the image it holds, then composes the cut-out with
``transform.segment.compose.apply_alpha``. The server's MaskSource looks in the mask cache first;
the command line's calls the segmenter directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pyvips


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
