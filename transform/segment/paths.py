"""Where the model files live and what they are called: the leaf every other segment module may import.

``$CUTOUT_HOME/models/`` holds the fetched IS-Net (``MEDIUM``, or ``SMALL``), its float32 copy
(``FP32_FILENAME``, see convert.py) and ``optimized/`` (onnxruntime's saved graphs, see optimized.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transform import variables


@dataclass(frozen=True)
class Variant:
    name: str
    resource: str
    sha256: str
    size: int
    filename: str


MEDIUM = Variant(
    "medium",
    "/models/medium",
    "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
    88_188_479,
    "isnet-general-use.onnx",
)
SMALL = Variant(
    "small",
    "/models/small",
    "7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
    44_342_436,
    "isnet-general-use-int8.onnx",
)

#: The float32 copy of MEDIUM that `cutout fetch-model` writes beside it (see convert.py); used by
#: default when its manifest ``<name>.json`` matches, because it runs faster on CPU at equal quality.
FP32_FILENAME = "isnet-general-use-fp32.onnx"
#: What the copy is; a copy whose manifest records another version is made again by `fetch-model`.
#: 2: the input's height and width are free (convert.dynamic_size).
FP32_CONVERSION = 2
#: Metadata key of the input size (``WIDTHxHEIGHT``) that a copy with a dynamic input was exported at.
INPUT_SIZE_KEY = "cutout.input_size"


def cutout_home() -> Path:
    # expanduser: systemd units and Docker pass a literal "~/..." through, unexpanded by any shell.
    home: Path = variables.read("home")["CUTOUT_HOME"]
    return home.expanduser()


def model_path(variant: Variant = MEDIUM) -> Path:
    return cutout_home() / "models" / variant.filename


def default_model_path() -> Path:
    return model_path(MEDIUM)


def fp32_path() -> Path:
    return model_path(MEDIUM).with_name(FP32_FILENAME)


def optimized_folder() -> Path:
    return cutout_home() / "models" / "optimized"
