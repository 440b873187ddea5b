"""The one table of transformation parameters.

Every URL key (``c``, ``w``, ``e`` ...) is one ``ParamSpec``: how its value is parsed (through the shared
validators in ``args``), how it is written back canonically, a one-line help, and the *action* it
belongs to. ``e_`` dispatches further to ``EFFECTS``; ``c_`` modes are listed in ``CROP_MODES``.
A component's params become actions in ``ACTION_ORDER``; each action's builder lives in its family module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyvips

from grammar.errors import BadRequest, UnknownParameter
from transform.expressions import AssetFacts, Value
from transform.faces import FaceSource
from transform.limits import Limits
from transform.seam import MaskSource
from transform.templates import Template
from transform.watch import UNWATCHED, Watch

# Non-image actions (layer, flags, named, output, default) are handled by the plan compiler itself.
ACTION_ORDER = ("resize", "angle", "effect", "radius", "border", "opacity", "background")


@dataclass(frozen=True)
class ParamSpec:
    key: str
    noun: str
    parse: Callable[[str, str], Any]
    help: str
    action: str
    render: Callable[[Any], str] = str
    #: How a device pixel ratio (dpr_) scales a parsed value, ``(key, value, ratio) -> value``: lengths in
    #: pixels are multiplied (``args.at_dpr``); None: dpr_ leaves the parameter as it is (fractions,
    #: colours, angles, levels; w_ and h_, which the resize multiplies itself).
    dpr: Callable[[str, Any, float], Any] | None = None
    #: The value may be written with $variables and arithmetic (``w_iw_div_2``, ``r_10:$v``), evaluated
    #: when the URL or the image decides it (transform/expressions.py); how a computed number is written
    #: back: "integer" (rounded: pixels, percent, degrees) or "decimal"; "text": only a ':'-separated part
    #: that is a whole $variable the URL sets (``l_text:$style:Hi``). None: only literal values.
    variables: str | None = None
    #: For a value of which only a leading part may be an expression (``bo_$size_solid_red``: the width),
    #: that part and the literal rest; None: the whole value, split on ':', is the template.
    variable_head: Callable[[str], tuple[str, str]] | None = None


Source = str | os.PathLike[str] | bytes
LoadLayer = Callable[[str], tuple[Source, str]]


@dataclass(frozen=True)
class Origin:
    """The image a block of steps started from, as conditions and expressions read it: ``iw``, ``ih``
    (upright), ``pc`` (its pages) and, for ``fc`` inside a layer, the image itself (the delivered
    original's faces are found on ``Ctx.preview``)."""

    width: int
    height: int
    pages: int = 1
    image: pyvips.Image | None = None


@dataclass(frozen=True)
class Ctx:
    """What a step may need besides the image. ``source_key`` fingerprints the image the steps started
    from (the original, or a layer's source inside a layer block; marked when a_ignore leaves it as
    stored, see ``runner.block_source_key``); ``decode`` is the renderer's limit-checking loader, used for
    layers (``autorotate`` False under ``a_ignore``); ``limits`` bound every image the steps make;
    ``layer_base``, inside a layer block, is the size of the image the layer will be placed on (what a
    fl_relative w_/h_ of the layer's own components is a fraction of)."""

    source_key: str
    decode: Callable[[Source, bool], pyvips.Image]  # (source, autorotate) -> image
    masks: MaskSource | None = None
    faces: FaceSource | None = None
    load_layer: LoadLayer | None = None
    limits: Limits = Limits()
    layer_base: tuple[int, int] | None = None
    #: Inside a layer placed on a face or the subject: that box's size (what fl_region_relative w_/h_ of
    #: the layer's own components are fractions of).
    layer_region: tuple[int, int] | None = None
    #: The original, upright, scaled down to fit a side with shrink-on-load (cheap): for a detector that
    #: looks at the untouched original (a first step, prefix ""). None inside layers.
    preview: Callable[[int], pyvips.Image] | None = None
    #: The steps run on each frame of an animation in turn (transform/frames.py): what looks at the
    #: content to choose where to cut (g_auto) must not choose differently from one frame to the next.
    animated: bool = False
    #: The render's kill switch (transform/watch.py): ``run_steps`` hands it each step's result.
    watch: Watch = UNWATCHED
    #: Runs a block outside the render's time budget: work whose cost a URL cannot multiply (a model's
    #: inference, composing a cut-out from its mask: fixed by the image and the model). ``with
    #: ctx.uncounted(): ...``; the server's stops the budget's clock meanwhile.
    uncounted: Callable[[], AbstractContextManager[None]] = nullcontext
    #: What iw, ih, pc and fc read (set by the renderer when a step reads them, and for each layer).
    origin: Origin | None = None
    #: The delivered asset's tags and context, for conditions on tags and ctx:!key!, and its custom
    #: coordinates, for g_custom.
    asset: AssetFacts = AssetFacts()
    #: What a step measured on an animation's first frame, for the frames after it (b_auto's colour: one
    #: colour for every frame), by a key of the step's own. One table per render, as ``variables``.
    measured: dict[object, Any] = field(default_factory=dict)
    #: The user variables assigned so far (transform/dynamic.py): one table for the whole render, layers
    #: included, filled in URL order as the steps run (a render runs its steps on one thread).
    variables: dict[str, Value] = field(default_factory=dict)


Apply = Callable[[Ctx, pyvips.Image], pyvips.Image]


class Scaler(Protocol):
    def scaled_size(self, width: int, height: int) -> tuple[int, int] | None:
        """The output size when the action only scales the whole image (no crop, no pad), else None."""
        ...


@dataclass(frozen=True)
class Action:
    """One image operation built from a component's params. ``canonical`` is the text of the params it
    consumed; ``sequential`` says it reads its input once, top to bottom (so the source may be loaded with
    sequential access); ``wide`` that each output tile needs a wide margin of input, so a later step
    should get its result computed rather than recompute those margins for every tile of its own."""

    canonical: str
    run: Apply
    sequential: bool = False
    wide: bool = False
    segmentation: bool = False
    faces: bool = False  # it detects faces (the detector's id is then part of the derivative's key)
    scaler: Scaler | None = None  # set when the renderer may replace this action by shrink-on-load
    #: Why the action cannot run on each frame of an animation (it detects faces or removes the
    #: background: one model run, one cached mask per frame), as the 400 names it; None when it can.
    still_only: str | None = None
    #: The names it reads when rendering (w, iw, fc, tags, ctx...; transform/expressions.py): a condition,
    #: a variable, or a value written with them. Empty for every ordinary step.
    reads: frozenset[str] = frozenset()


# Builders take the parsed params of one component (key -> typed value), the keys already claimed by
# earlier builders (which they may extend), and the canonical prefix of everything before this action.
Builder = Callable[[Mapping[str, Any], set[str], str], Action | None]


@dataclass(frozen=True)
class EffectSpec:
    name: str
    parse: Callable[[str, str], Any]  # (full value, text after "name:" or "") -> typed arguments
    render: Callable[[Any], str]  # typed arguments -> canonical value text (including the name)
    build: Callable[[Any, str], Action]  # (typed arguments, canonical prefix) -> Action
    help: str
    #: Other keys of its component the effect reads (``co_`` for e_colorize). When set, ``build`` gets
    #: ``(arguments, {key: value of the keys present})`` as its arguments.
    qualifiers: tuple[str, ...] = ()
    #: How dpr_ scales the parsed arguments, ``(arguments, ratio) -> arguments`` (see ParamSpec.dpr).
    dpr: Callable[[Any, float], Any] | None = None
    #: For an effect that, in a component whose c_pad, c_lpad or c_mpad pads the image, acts on the image
    #: before the pad is laid around it (e_gradient_fade:symmetric_pad fades the image into the pad):
    #: ``build``'s arguments -> that operation, or None when the effect acts afterwards as usual. The
    #: resize then claims the e_ (and its qualifiers), and the effect step is left out.
    before_pad: Callable[[Any], Callable[[pyvips.Image], pyvips.Image] | None] | None = None


PARAMS: dict[str, ParamSpec] = {}
EFFECTS: dict[str, EffectSpec] = {}
BUILDERS: dict[str, Builder] = {}
CROP_MODES: dict[str, str] = {}  # mode -> help

# Cloudinary keys this server knows of but does not implement: a clearer 400 than "unknown".
UNSUPPORTED = {
    "dn": "density (dn_)",
    "fn": "custom functions",
    "p": "prefixes (p_)",
    "bl": "baselines (bl_)",
}


def param(spec: ParamSpec) -> ParamSpec:
    PARAMS[spec.key] = spec
    return spec


def effect(spec: EffectSpec) -> EffectSpec:
    EFFECTS[spec.name] = spec
    return spec


def builder(action: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        BUILDERS[action] = fn
        return fn

    return register


def effect_claims(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys of a component that its e_ reads as qualifiers (co_, and x_/y_ for e_shadow): other
    builders leave them alone."""
    chosen = params.get("e")
    return chosen.spec.qualifiers if chosen is not None else ()


def spec_for(key: str) -> ParamSpec:
    """The spec of a URL key; every ``$name`` shares the one of ``$`` (an assignment)."""
    spec = PARAMS.get(key) or (PARAMS.get("$") if key[:1] == "$" else None)
    if spec is not None:
        return spec
    label = UNSUPPORTED.get(key)
    raise UnknownParameter(key, hint=f" ({label} not supported by this server)" if label else "")


def op_names() -> list[str]:
    """Every operation a test table must cover: each key, each effect and each crop mode."""
    names = [f"{key}_" for key in PARAMS if key not in ("e", "c")]
    names += [f"e_{name}" for name in EFFECTS] + [f"c_{mode}" for mode in CROP_MODES]
    return sorted(names)


def render_param(key: str, value: Any) -> str:
    if type(value) is Template:  # a value the image decides: as the URL writes it
        return f"{key}_{value}"
    return f"{key}_{(PARAMS.get(key) or spec_for(key)).render(value)}"


def scale_for_dpr(params: Mapping[str, Any], ratio: float) -> dict[str, Any]:
    """A component's params at a device pixel ratio: each length it gives in pixels multiplied, as
    Cloudinary tunes every parameter the ratio concerns, not only the size (its support article "How does
    using DPR differ from setting multiplied dimension values?": a blur's strength, a text's font size).
    ``c_scale,w_100/r_10/dpr_2.0`` is ``c_scale,w_200/r_20``."""
    return {key: _scaled(key, value, ratio) for key, value in params.items()}


def _scaled(key: str, value: Any, ratio: float) -> Any:
    scale = spec_for(key).dpr
    if scale is None:
        return value
    if type(value) is Template:
        # A length the image decides is known only when rendering, after the ratio was applied.
        raise BadRequest(
            f"Invalid transformation: {key}_{value} is decided by the image, and dpr_ cannot scale it; "
            f"write the length with the ratio in it ({key}_..._mul_2) or leave dpr_ out"
        )
    return scale(key, value, ratio)
