"""A copy of the model with onnxruntime's graph optimisations already applied, made once per machine.

Building a CPU session spends about half of its 0.45-0.7 s optimising the graph (fusions, the NCHWc
layout passes); loading a graph saved after those passes takes 0.22-0.27 s (2026-12-01, 2-core EPYC).
That is a tenth of a one-photo `cutout remove-bg`. The saved graph is specific to the onnxruntime
version and to the CPU's instruction set (the layout passes pick block sizes for AVX2 or AVX-512), so
the copy's name hashes both with the source file's identity; anything else simply makes a new copy.
Only CPU-only sessions use it: the saved graph holds CPU-specific fused operators.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from transform.files import replacing
from transform.segment.paths import optimized_folder

if TYPE_CHECKING:
    import onnxruntime


def copy_path(model: Path, ort_version: str, cpu: str | None = None) -> Path:
    """Where the optimised copy of ``model`` for this onnxruntime and CPU lives."""
    st = model.stat()
    identity = "|".join(
        (str(model.resolve()), str(st.st_size), str(st.st_mtime_ns), ort_version, cpu or cpu_flags())
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:20]
    return optimized_folder() / f"{model.stem}-{digest}.onnx"


def remove_copies(model: Path) -> None:
    """Delete every optimised copy made from a file named like ``model`` (for when it is replaced:
    they would never be read again, and they are about 170 MB each)."""
    for copy in optimized_folder().glob(f"{model.stem}-*.onnx"):
        copy.unlink(missing_ok=True)


def cpu_flags() -> str:
    """The first CPU's feature flags (Linux), else the platform name."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return sys.platform


def session(
    model: Path, options: onnxruntime.SessionOptions, providers: list[str]
) -> onnxruntime.InferenceSession:
    """A session for ``model``: from the optimised copy when there is one, else built from the file
    (writing the copy for next time when ``providers`` is CPU only)."""
    import onnxruntime as ort

    if providers != ["CPUExecutionProvider"]:
        return ort.InferenceSession(str(model), options, providers=providers)
    copy = copy_path(model, ort.__version__)
    if copy.is_file():
        level = options.graph_optimization_level
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(str(copy), options, providers=providers)
        except Exception as exc:  # an unreadable copy is rebuilt below from the real file
            print(f"cutout: rebuilding the optimised model copy {copy}: {exc}", file=sys.stderr)
        finally:
            options.graph_optimization_level = level
    return _build_and_save(model, copy, options, providers)


def _build_and_save(
    model: Path, copy: Path, options: onnxruntime.SessionOptions, providers: list[str]
) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        with replacing(copy) as temp:
            options.optimized_model_filepath = str(temp)
            try:
                # onnxruntime writes the optimised graph as it builds the session; the rename makes
                # it the copy. Several worker processes may start at once: each writes its own, one wins.
                return ort.InferenceSession(str(model), options, providers=providers)
            finally:
                options.optimized_model_filepath = ""
    except OSError as exc:  # a read-only home: run from the file every time, as before
        print(f"cutout: cannot write an optimised model copy in {copy.parent}: {exc}", file=sys.stderr)
        return ort.InferenceSession(str(model), options, providers=providers)
