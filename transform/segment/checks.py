"""Checking model files cheaply: sha256 sidecars, the float32 copy's manifest, which file to use."""

from __future__ import annotations

import json
from pathlib import Path

from transform.files import sha256_of, write_atomically
from transform.segment.paths import FP32_CONVERSION, MEDIUM, Variant, fp32_path, model_path


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered in a ``<file>.sha256`` sidecar keyed by size and mtime.

    Hashing 88 MB costs a few hundred milliseconds; the sidecar makes start-up and the
    ``fetch-model`` no-op instant. A sidecar that cannot be written (read-only folder) is skipped.
    """
    st = path.stat()
    sidecar = path.with_name(path.name + ".sha256")
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        cached = json.loads(sidecar.read_text())
        if {k: cached.get(k) for k in stamp} == stamp and isinstance(cached.get("sha256"), str):
            return str(cached["sha256"])
    except (OSError, ValueError):
        pass
    sha = sha256_of(path)
    try:
        write_atomically(sidecar, json.dumps({**stamp, "sha256": sha}))
    except OSError:
        pass
    return sha


def is_valid(path: Path, variant: Variant) -> bool:
    try:
        if path.stat().st_size != variant.size:
            return False
    except OSError:
        return False
    return file_sha256(path) == variant.sha256


def fp32_is_valid(path: Path, source_sha256: str = MEDIUM.sha256) -> bool:
    """True when ``path`` is the copy its manifest describes, made from the model ``source_sha256``."""
    try:
        manifest = json.loads(path.with_name(path.name + ".json").read_text())
        return bool(
            manifest.get("source_sha256") == source_sha256
            and manifest.get("conversion") == FP32_CONVERSION
            and manifest.get("sha256") == file_sha256(path)
        )
    except (OSError, ValueError, AttributeError):
        return False


def preferred_model_path() -> Path:
    """The model file used when none is configured: the float32 copy when it is there and checks
    out against its manifest, else the original."""
    fast = fp32_path()
    return fast if fp32_is_valid(fast) else model_path(MEDIUM)
