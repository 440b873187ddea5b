"""Transformation components -> a Plan: a flat list of steps, layers as sub-plans, and a canonical string.

Components run in URL order. Inside a component the params become actions in ``ACTION_ORDER`` and are
written back in alphabetical order (what Cloudinary's SDKs emit), so ``w_400,c_scale`` and
``c_scale,w_400`` give the same plan and the same ``canonical``. ``d_`` and ``fl_attachment`` choose the
source and the headers, not the bytes: ``derivative``, what a cached result is keyed by, leaves them out.
What applies to the delivered image as a whole (f_, q_, d_, pg_, a dpr_ of its own...) is taken out of
its component by transform/delivery.py. A layer, once its fl_layer_apply closes it, becomes one step
(transform/layering.py), as an if_ block does (transform/dynamic.py); transform/runner.py runs the steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from grammar.ast import Component, Condition
from grammar.errors import BadRequest
from grammar.parse import quoted
from transform import delivery, dynamic, ratio
from transform.binding import Scope, bind
from transform.expressions import Unevaluable, as_expression, condition_reads, fold_condition, reads
from transform.layering import (
    APPLY_KEYS,
    PLACEMENT_KEYS,
    TextOptions,
    layer_step,
    placing_keys,
    text_options,
    unclosed_openers,
)
from transform.ops import ACTION_ORDER, BUILDERS, Action, render_param, scale_for_dpr, spec_for
from transform.ops.args import Color
from transform.ops.conditions import Assignment
from transform.ops.flags import ANIMATION_FLAGS, LOSSY, attachment_name
from transform.ops.focus import CONTENT_GRAVITIES, CUSTOM_GRAVITIES
from transform.ops.output import Quality
from transform.ops.pages import Pages, Timing, check_timing
from transform.ops.text import TextLayer
from transform.ratio import Sizing
from transform.templates import Template, has_expression

MAX_NAMED_DEPTH = 8
#: if_ blocks inside if_ blocks: enough for any real chain, and a bound on the compile's recursion.
MAX_CONDITION_DEPTH = 8
#: Chained components a URL may ask for: far more than any real use, few enough that one URL cannot
#: keep a worker busy for minutes.
MAX_COMPONENTS = 64


@dataclass(frozen=True)
class Plan:
    #: The whole transformation, canonical: ``w_400,c_scale`` and ``c_scale,w_400`` read alike (the
    #: console shows it; strict mode and eager compare it whole; cache keys use ``derivative``).
    canonical: str
    #: ``canonical`` without what does not change the bytes (d_, fl_attachment), its lengths at their
    #: device pixel ratio (``r_10/...dpr_2.0`` draws, and is keyed as, ``r_20``): the text a derivative is
    #: cached under, so ``d_avatar/c_scale,w_90`` delivering the default shares its entry with
    #: ``c_scale,w_90`` of the default itself, and a download shares the image's. "" is no transformation.
    derivative: str
    steps: tuple[Action, ...]
    needs_segmentation: bool
    layer_ids: frozenset[str]
    requested_format: str | None
    quality: Quality | None = None
    #: The last b_ of the top level: the colour transparency is flattened onto for JPEG output.
    background: Color | None = None
    #: False under a_ignore: the original's EXIF orientation is not applied.
    autorotate: bool = True
    #: fl_preserve_transparency: a JPEG choice becomes PNG when the result is transparent.
    preserve_transparency: bool = False
    #: fl_progressive: progressive JPEG, interlaced PNG or GIF.
    progressive: bool = False
    #: fl_lossy: lossy PNG (a quantised palette) and GIF (fewer colours); a 400 with TIFF.
    lossy: bool = False
    #: What of the original's metadata is written, where the format holds it: "all" (fl_keep_iptc: its
    #: IPTC, XMP and Exif), "attribution" (fl_keep_attribution: their rights fields), None (none).
    metadata: str | None = None
    #: A face gravity: faces are detected (the detector's id then goes into the derivative's key).
    needs_faces: bool = False
    #: d_: the public id delivered (with this plan) when the requested original does not exist.
    default_image: str | None = None
    #: fl_attachment: the download's file name without extension ("" names it after the public id);
    #: None when the image is not sent as an attachment.
    attachment: str | None = None
    #: pg_: the frames (pages) of the original delivered; None: all of them.
    pages: Pages | None = None
    #: fl_animated or fl_awebp: the URL asks for an animation (a format that cannot hold one is a 400).
    animated: bool = False
    #: dl_, vs_ and e_loop: the delivered animation's delays, sampling and loop (the original's if none).
    timing: Timing = Timing()
    #: What the steps read when rendering (w, iw, fc, tags, ctx, $variables...): conditions and values
    #: written with the image's names. Empty for a plan the URL alone decides.
    reads: frozenset[str] = frozenset()

    @property
    def needs_asset(self) -> bool:
        """The steps read the asset's record (tags, ctx:!key!, g_custom's coordinates): its facts go into
        the key and the render."""
        return bool(self.reads & {"tags", "ctx", "custom"})

    @property
    def sequential(self) -> bool:
        """True when every step reads its input once from top to bottom."""
        return all(step.sequential for step in self.steps)

    @property
    def still_only(self) -> str | None:
        """Why the steps cannot run on each frame of an animation (the first step that cannot, named as
        the 400 names it); None when they can."""
        return next((step.still_only for step in self.steps if step.still_only), None)


@dataclass
class _Block:
    """A plan being built: the base image, a layer between its opener and fl_layer_apply, or a branch of
    a condition between its if_ and if_end (``condition`` set)."""

    opener: dict[str, Any] = field(default_factory=dict)
    start: int = 0  # index of the opening component in the canonical list
    condition: Condition | None = None
    then: list[Action] | None = None  # an if_ block's first branch, once its if_else is reached
    steps: list[Action] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # canonical components, for mask keys
    autorotate: bool = True  # False when a component of the block says a_ignore
    text: TextOptions | None = None  # the opener's co_, b_ and text box, when the layer is text
    region_sized: bool = False  # a component of the layer says fl_region_relative
    #: Whether its image is at the chain's dpr_ (base and layer blocks; an if_ block shares its parent's,
    #: each branch starting from what it was at the if_: ``scaled_at_if``, and ``scaled_then`` at if_else).
    sizing: Sizing = field(default_factory=Sizing)
    scaled_at_if: bool = False
    scaled_then: bool | None = None


def compile_plan(
    components: Sequence[Component], *, named: Mapping[str, str] | None = None, unbound: bool = False
) -> Plan:
    """``unbound``: variables used before they are assigned are left to the URL that will use the text
    (a named transformation checked on its own, ``$width_150/t_passport``)."""
    state = _State(Scope(unbound=unbound))
    written = state.written
    expanded = _expand(components, named or {}, 0, written)
    try:
        return _compile(state, expanded)
    except BadRequest as exc:
        raise _naming_written(exc, [*reversed(written[: state.at + 1]), *written[state.at + 1 :]]) from None


def _compile(state: _State, expanded: list[dict[str, Any]]) -> Plan:
    state.ratio = delivery.delivery_dpr(expanded)
    state.alone = unclosed_openers(expanded)
    state.later = ratio.sized_later(expanded, state.alone)
    for index, params in enumerate(expanded):
        state.at = index
        if len(state.canonical) >= MAX_COMPONENTS:
            raise BadRequest(
                f"Invalid transformation: more than {MAX_COMPONENTS} chained components "
                "(named transformations count with their own)"
            )
        condition = params.pop("if", None)
        if condition is None:
            _component(state, index, params)
        elif isinstance(condition, str):
            _branch_word(state, condition, params)
        else:
            _condition(state, index, condition, params)
    blocks = state.blocks
    if blocks[-1].condition is not None:
        raise BadRequest(
            "Invalid transformation: if_ without its if_end (every if_ block is closed by if_end)"
        )
    # Every opener left open was made a one-component layer (layering.unclosed_openers).
    assert len(blocks) == 1
    steps = tuple(blocks[0].steps)
    out = state.out
    timing = Timing(out.get("dl"), out.get("vs"), out.get("loop"))
    check_timing(timing, out.get("pg"))
    return Plan(
        canonical="/".join(state.canonical),
        derivative="/".join(state.derivative),
        steps=steps,
        needs_segmentation=any(s.segmentation for s in steps),
        layer_ids=frozenset(state.layer_ids),
        requested_format=out.get("f"),
        quality=out.get("q"),
        background=out.get("b"),
        autorotate=blocks[0].autorotate,
        preserve_transparency="preserve_transparency" in out.get("fl", ()),
        progressive=delivery.progressive(out.get("fl", ())),
        lossy=LOSSY in out.get("fl", ()),
        metadata=delivery.kept_metadata(out.get("fl", ()), out.get("q")),
        needs_faces=any(s.faces for s in steps),
        default_image=out.get("d"),
        attachment=delivery.attachment(out.get("fl", ())),
        pages=out.get("pg"),
        animated=any(flag in ANIMATION_FLAGS for flag in out.get("fl", ())),
        timing=timing,
        reads=frozenset().union(*(s.reads for s in steps)),
    )


@dataclass
class _State:
    """The compile so far: the blocks open (base, layers, if_ branches), the canonical text and what
    applies to the delivered image as a whole (``out``)."""

    scope: Scope
    blocks: list[_Block] = field(default_factory=lambda: [_Block()])
    canonical: list[str] = field(default_factory=list)
    #: What the steps of each component see: ``canonical`` at its device pixel ratio (lengths multiplied,
    #: the chain's dpr_ written in), so that a layer's key tells a text drawn at dpr_2.0 from dpr_1.0's.
    #: One entry per entry of ``canonical``.
    seen: list[str] = field(default_factory=list)
    derivative: list[str] = field(default_factory=list)
    out: dict[str, Any] = field(default_factory=dict)
    layer_ids: set[str] = field(default_factory=set)
    ratio: float | None = None
    alone: set[int] = field(default_factory=set)
    #: The components with w_/h_ that a later one of their block sizes again (ratio.sized_later).
    later: set[int] = field(default_factory=set)
    #: The index of the component being compiled (what a 400 is most likely about).
    at: int = 0
    #: Each component's params, canonical text (and at its device pixel ratio) -> as the URL wrote it.
    written: list[dict[str, str]] = field(default_factory=list)

    @property
    def in_layer(self) -> bool:
        return any(block.opener for block in self.blocks)

    @property
    def nested(self) -> str | None:
        """Where the component is, when not on the delivered image itself (what f_, q_, d_... refuse)."""
        if self.in_layer:
            return delivery.IN_LAYER
        return delivery.IN_CONDITION if self.scope.conditional else None


def _component(state: _State, index: int, params: dict[str, Any]) -> None:
    blocks, out = state.blocks, state.out
    nested = state.nested
    params = bind(params, state.scope, in_layer=nested == delivery.IN_LAYER)
    if not params:
        return  # only variables the URL decides: nothing to do, nothing to key by
    delivery_dpr = delivery.is_delivery_dpr(params)
    state.canonical.append(_render(params))
    chained = not delivery_dpr and state.ratio is not None and "dpr" not in params
    # Lengths in pixels at the component's device pixel ratio: the derivative's text says what is drawn
    # (r_10 at dpr_2.0 is r_20), so its key does too.
    unscaled = params
    params, opened = (params, None) if delivery_dpr else _at_ratio(state, index, params)
    _note_scaled(state.written[index], unscaled, params)
    state.seen.append(_render(params))
    # The chain's own ratio, where a component is sized at it, goes without saying (the chain's dpr_
    # component is in the derivative); a dpr_1.0 where the chain's ratio leaves the sizes does not.
    shown = {k: v for k, v in params.items() if k != "dpr" or v != state.ratio} if chained else params
    bytes_part = _derivative_part(shown)
    if bytes_part:
        state.derivative.append(bytes_part)
    if _assign(state, params):
        return  # only variables set when rendering
    delivery.take_delivery(params, out, nested=nested)
    delivery.take_output_flags(params, out, nested=nested)
    if "d" in params:
        delivery.take_default(params, out, nested=nested)
    if not bytes_part:
        return  # only d_ or fl_attachment: no step (nor an empty part in later steps' prefixes)
    if delivery_dpr:
        if state.scope.conditional:
            raise BadRequest("Invalid transformation: a dpr_ component of its own (it multiplies the whole "
                             "chain) cannot be inside an if_ block")  # fmt: skip
        return  # applied to the components it concerns (_at_ratio)
    closes = "layer_apply" in params.get("fl", ())
    if "l" in params or "u" in params:
        _open_layer(state, index, params, closes, opened or Sizing())
    elif not closes:
        if isinstance(params.get("b"), Color) and len(blocks) == 1:
            out["b"] = params["b"]  # b_auto has no colour until the image is seen: JPEG gets white
        _add_component(blocks[-1], params, layer=_layer_block(blocks))
    if closes:
        params = _static(state, params, APPLY_KEYS, "fl_layer_apply")
        if len(blocks) == 1:
            raise BadRequest("Invalid transformation: fl_layer_apply without an l_ or u_ layer to apply")
        if blocks[-1].condition is not None:
            raise BadRequest("Invalid transformation: fl_layer_apply inside an if_ block applies a layer "
                             "opened outside it; close the if_ block (if_end) first")  # fmt: skip
        layer = blocks.pop()
        closed = _layer_step(layer, params, "/".join(state.seen[layer.start :]), _prefix(blocks[-1]))
        _add_closed_block(blocks[-1], closed)


def _note_scaled(texts: dict[str, str], unscaled: Mapping[str, Any], scaled: Mapping[str, Any]) -> None:
    """A check of a length at its device pixel ratio names it as the URL wrote it too (``x_05`` at
    dpr_2.0 is checked as ``x_10``)."""
    for key, value in scaled.items():
        if key in unscaled and value is not unscaled[key]:
            original = render_param(key, unscaled[key])
            texts.setdefault(render_param(key, value), texts.get(original, original))


def _at_ratio(state: _State, index: int, params: dict[str, Any]) -> tuple[dict[str, Any], Sizing | None]:
    """The component's lengths at its device pixel ratio: its own dpr_'s, else the chain's where
    transform/ratio.py says; and the Sizing of the layer it opens, if it opens one."""
    block = _layer_block(state.blocks) or state.blocks[0]
    opens = "l" in params or "u" in params
    layer = block.sizing.layer(params.get("l", params.get("u"))) if opens else None
    own, chain = params.get("dpr"), state.ratio
    if own is not None:
        if not opens and own == chain and ("w" in params or "h" in params):
            block.sizing.scaled = block.sizing.target  # sized at the chain's ratio by its own dpr_
        return (params if own == 1.0 else scale_for_dpr(params, own)), layer
    if chain is None:
        return params, layer
    last = index not in state.later
    if opens and (index in state.alone or "layer_apply" in params.get("fl", ())):
        return ratio.one_component(params, chain, layer or Sizing(), PLACEMENT_KEYS), layer
    if opens:
        return ratio.component(params, chain, layer or Sizing(), last=last), layer
    if "layer_apply" in params.get("fl", ()) and block.opener:
        return ratio.closer(params, chain, block.sizing), None
    return ratio.component(params, chain, block.sizing, last=last), None


def _open_layer(state: _State, index: int, params: dict[str, Any], closes: bool, sizing: Sizing) -> None:
    blocks = state.blocks
    if "l" in params and "u" in params:
        raise BadRequest("Invalid transformation: l_ and u_ cannot open two layers in one component")
    # Its own image must be known to key the result; placing it too when it is also applied here.
    placed = {"l", "u", *(placing_keys(params) if index in state.alone else ())}
    params = _static(state, params, placed, "l_" if "l" in params else "u_")
    source = params.get("l") or params["u"]
    text = None
    if isinstance(source, TextLayer):
        params, text = text_options(params, source)
    elif source is not _STAND_IN:
        state.layer_ids.add(source)  # text is drawn, not looked up
    block = _Block(opener=params, start=len(state.canonical) - 1, text=text, sizing=sizing)
    inner = {k: v for k, v in params.items() if k not in ("l", "u")}
    if index in state.alone:
        canonical = state.seen[-1]
        _add_closed_block(blocks[-1], _one_component_layer(block, inner, canonical, _prefix(blocks[-1])))
        return
    blocks.append(block)
    if inner and not closes:
        _add_component(block, inner, layer=block)


def _condition(state: _State, index: int, condition: Condition, params: dict[str, Any]) -> None:
    """``if_<condition>`` alone opens a block up to its if_end; with other parameters, it applies to
    that component alone (Cloudinary's rule)."""
    blocks = state.blocks
    if sum(1 for b in blocks if b.condition is not None) >= MAX_CONDITION_DEPTH:
        raise BadRequest(f"Invalid transformation: if_ blocks nest more than {MAX_CONDITION_DEPTH} deep")
    try:
        condition = fold_condition(condition, state.scope.known, unbound=state.scope.unbound)
    except Unevaluable as exc:
        raise BadRequest(f"Invalid transformation parameter - if_{condition}: {exc}") from None
    names = condition_reads(condition)
    if state.in_layer and names & {"tags", "ctx"}:
        raise BadRequest(f"Invalid transformation parameter - if_{condition}: tags and ctx:!key! are the "
                         "delivered asset's; they cannot be tested inside a layer")  # fmt: skip
    parent = blocks[-1]
    head = render_param("if", condition)
    scaled = (_layer_block(blocks) or blocks[0]).sizing.scaled
    blocks.append(_Block(start=len(state.canonical), condition=condition, parts=[*parent.parts, head],
                         autorotate=parent.autorotate, scaled_at_if=scaled))  # fmt: skip
    state.scope.enter()
    if not params:
        state.canonical.append(head)
        state.seen.append(head)
        state.derivative.append(head)
        return
    if "l" in params or "u" in params or "layer_apply" in params.get("fl", ()):
        raise BadRequest(f"Invalid transformation: {head} with other parameters applies to its component "
                         "alone, which cannot open or apply a layer; use if_.../if_end")  # fmt: skip
    before = len(state.canonical)
    _component(state, index, params)
    if len(state.canonical) == before:  # only variables: their component still has its condition
        state.canonical.append("")
        state.seen.append("")
        state.derivative.append("")
    state.canonical[-1] = ",".join(filter(None, [head, state.canonical[-1]]))
    state.seen[-1] = ",".join(filter(None, [head, state.seen[-1]]))
    state.derivative[-1] = ",".join(filter(None, [head, state.derivative[-1]]))
    _close_condition(state)


def _branch_word(state: _State, word: str, params: dict[str, Any]) -> None:
    """``if_else`` and ``if_end``, each alone in its component."""
    blocks = state.blocks
    if params:
        raise BadRequest(f"Invalid transformation: if_{word} must be alone in its component")
    block = blocks[-1]
    if block.condition is None:
        where = " (inside a layer opened after it)" if state.scope.conditional else ""
        raise BadRequest(f"Invalid transformation: if_{word} without an if_ before it{where}")
    if word == "else" and block.then is not None:
        raise BadRequest("Invalid transformation: if_else given twice in one if_ block")
    state.canonical.append(f"if_{word}")
    state.seen.append(f"if_{word}")
    state.derivative.append(f"if_{word}")
    if word == "else":
        sizing = (_layer_block(blocks) or blocks[0]).sizing
        block.scaled_then, sizing.scaled = sizing.scaled, block.scaled_at_if
        block.then, block.steps = block.steps, []
        block.parts = [*block.parts[: len(blocks[-2].parts) + 1], "if_else"]  # the if_, then the else
        state.scope.otherwise()
        return
    _close_condition(state)


def _close_condition(state: _State) -> None:
    blocks = state.blocks
    block = blocks.pop()
    assert block.condition is not None
    then, otherwise = (block.then, block.steps) if block.then is not None else (block.steps, [])
    parent = blocks[-1]
    if block.scaled_then:  # at the ratio after either branch: lengths after it are taken as at the ratio
        (_layer_block(blocks) or blocks[0]).sizing.scaled = True
    for name, value in state.scope.leave().items():
        # Known before the block and changed by a branch: the way that leaves it alone needs its value.
        expression = as_expression(value)
        parent.steps.append(dynamic.assignment(name, expression, canonical=f"{name}_{expression}",
                                               reads=frozenset()))  # fmt: skip
    step = dynamic.conditional(
        block.condition, then, otherwise, canonical="/".join(state.seen[block.start :]),
        reads=frozenset(condition_reads(block.condition)),
    )  # fmt: skip
    _add_closed_block(parent, step)


def _assign(state: _State, params: dict[str, Any]) -> bool:
    """Moves the assignments left for the render out of ``params`` into steps of the current block (the
    canonical text keeps them); True when nothing else is left."""
    if not any(key[0] == "$" for key in params):
        return False
    for key in [k for k, v in params.items() if isinstance(v, Assignment)]:
        assignment = params.pop(key)
        step = dynamic.assignment(key, assignment.expression, canonical=render_param(key, assignment),
                                  reads=frozenset(reads(assignment.expression)))  # fmt: skip
        state.blocks[-1].steps.append(step)
    return not params


#: What a layer's image is while a named transformation is checked on its own (``unbound``) and its id
#: is a variable the URLs using it will set (``l_$img``): any image will do to check the rest.
_STAND_IN = "(a layer the URL names)"


def _static(state: _State, params: dict[str, Any], keys: Set[str], where: str) -> dict[str, Any]:
    """``params``, whose ``keys`` must be known before rendering (what a layer shows and where it goes).
    A named transformation checked alone gets stand-ins for the variables its users will set."""
    for key in sorted(k for k in keys if isinstance(params.get(k), Template)):
        template = params[key]
        unbound = {n for n in template.reads() if n.startswith("$") and n not in state.scope.known}
        if not state.scope.unbound or template.reads() - unbound:
            raise BadRequest(
                f"Invalid transformation parameter - {key}_{template}: a value only the image decides is "
                f"not supported in a component with {where} (set it from the URL, or size the layer in a "
                "component of its own)"
            )
        params = {**params, key: _stand_in(key, template)}
    return params


def _stand_in(key: str, template: Template) -> Any:
    if key not in ("l", "u"):
        return spec_for(key).parse(key, template.stand_in())
    if str(template).startswith("text:"):
        return TextLayer("sans", 12, (), "?", "sans_12:%3F")
    return _STAND_IN


def _layer_block(blocks: Sequence[_Block]) -> _Block | None:
    """The innermost layer block open, if any (an if_ block inside a layer belongs to it)."""
    return next((block for block in reversed(blocks) if block.opener), None)


def _derivative_part(params: Mapping[str, Any]) -> str:
    """A component's canonical text without the params that leave the bytes alone (d_, fl_attachment, and
    fl_animated and fl_awebp: an animation is delivered animated with or without them)."""
    kept = []
    for key in _ordered(params):
        value = params[key]
        if key == "d":
            continue
        if key == "fl":
            value = tuple(f for f in value if attachment_name(f) is None and f not in ANIMATION_FLAGS)
            if not value:
                continue
        # Not a truth test on the value: o_0 is 0 and changes every byte (fully transparent).
        kept.append(render_param(key, value))
    return ",".join(kept)


def _ordered(params: Mapping[str, Any]) -> list[str]:
    """The keys in canonical order: ``if_`` first, the variables in URL order (each may use the one
    before), then the rest alphabetically (what Cloudinary's SDKs write)."""
    keys = sorted(params)
    if not keys or (keys[0][0] != "$" and "if" not in params):  # ('$' sorts first)
        return keys
    variables = [key for key in params if key[0] == "$"]
    rest = [key for key in keys if key != "if" and key[0] != "$"]
    return ["if"] * ("if" in params) + variables + rest


def _render(params: Mapping[str, Any]) -> str:
    return ",".join(render_param(key, params[key]) for key in _ordered(params))


def _expand(
    components: Sequence[Component], named: Mapping[str, str], depth: int, written: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """Parse every component's params through the registry, replacing t_ components by their definitions.
    ``written`` gets, for each component returned, its params' canonical text -> the text the URL wrote
    (what an error names: ``co_rgb:999`` is checked as ``co_rgb:999999``)."""
    result: list[dict[str, Any]] = []
    for component in components:
        params: dict[str, Any] = {}
        texts: dict[str, str] = {}
        for p in component.params:
            value = _value(p.key, p.value)
            texts.setdefault(render_param(p.key, value), f"{p.key}_{p.value}")
            if p.key == "fl" and "fl" in params:  # fl_layer_apply,fl_relative == fl_layer_apply.relative
                value = tuple(sorted({*params["fl"], *value}))
            elif p.key == "e" and "e" in params:
                # Cloudinary applies only the last effect of a component and drops the others without a
                # word; here the client learns that one of the two would not run.
                first = next(q for q in component.params if q.key == "e")
                raise BadRequest(
                    f"Invalid transformation: e_{first.value} and e_{p.value} in one component "
                    f"({quoted(component.raw)}); only one effect applies per component: chain them, "
                    f"e_{first.value}/e_{p.value}"
                )
            elif p.key in params:
                raise BadRequest(f"Invalid transformation: {p.key}_ appears twice in {quoted(component.raw)}")
            params.pop(p.key, None)
            params[p.key] = value
        if "t" not in params:
            result.append(params)
            written.append(texts)
            continue
        if len(params) > 1:
            raise BadRequest(f"Invalid transformation: t_ must be alone in its component "
                             f"({quoted(component.raw)})")
        if depth >= MAX_NAMED_DEPTH:
            raise BadRequest("Invalid transformation: named transformations nest too deeply (a cycle?)")
        for name in params["t"]:
            if name not in named:
                raise BadRequest(f"Unknown transformation {name}")
            from grammar import parse_transformation

            result.extend(_expand(parse_transformation(named[name]), named, depth + 1, written))
    return result


def _naming_written(exc: BadRequest, written: Sequence[Mapping[str, str]]) -> BadRequest:
    """``exc`` naming each parameter as the URL wrote it, not as it was checked: a check after parsing
    sees typed values and names them canonically (``co_RGB:999`` -> ``co_rgb:999999``, ``x_05`` ->
    ``x_5``), a text the client never sent. ``written``: the failing component's texts first, so that a
    parameter written in two ways in two components is named as the failing one writes it."""
    seen: set[str] = set()
    for texts in written:
        for canonical, text in texts.items():
            if canonical in seen:
                continue
            seen.add(canonical)
            if text == canonical:
                continue
            # Where a message names a parameter: after "- " (the parameter at fault), "; " or "(" (one it
            # clashes with); not inside a list of parameters that would do ("needs e_shadow or ...").
            named = re.compile(rf"(?:(?<=- )|(?<=; )|(?<=\())({re.escape(canonical)})(?=[: )]|$)")
            written_as = text.replace("\\", "\\\\")  # a replacement template: only backslashes are special
            exc.public = named.sub(written_as, exc.public, count=1)
            exc.detail = named.sub(written_as, exc.detail, count=1)
            exc.args = (exc.public,)
    return exc


#: Parameters whose values are not expressions (no ParamSpec.variables) but which a whole $variable the
#: URL sets may stand for, as README promises "any value when the URL alone decides": ``$q_50/q_$q``,
#: ``$c_!red!/co_$c``. Not those the compile reads before it knows the variables (fl_, dpr_, if_, t_;
#: l_/u_ have their own); binding.py folds these or answers 400 when only the image could decide them.
URL_VARIABLE_KEYS = frozenset({"b", "c", "co", "d", "dl", "f", "g", "pg", "q", "vs"})


def _value(key: str, text: str) -> Any:
    """A parameter's typed value; a value written with variables or arithmetic (``w_iw_div_2``) is kept
    as a Template, for the compile to fold and the render to finish."""
    spec = spec_for(key)
    kind = spec.variables
    if kind is None and key in URL_VARIABLE_KEYS and "$" in text and has_expression(text, text=True):
        return Template.parse(key, text, rounding=True, text=True)
    head, rest = spec.variable_head(text) if spec.variable_head is not None else (text, "")
    if kind is not None and has_expression(head, text=kind == "text"):
        return Template.parse(key, head, rounding=kind == "integer", text=kind == "text", suffix=rest)
    return spec.parse(key, text)


def _prefix(block: _Block) -> str:
    """The canonical steps a layer closed now is placed after (what a face detection of the image under it
    is keyed by)."""
    return "/".join(block.parts)


def _one_component_layer(block: _Block, params: Mapping[str, Any], canonical: str, prefix: str) -> Action:
    """The layer of a component that opens and applies it at once: the placement keys (and sizing, which
    fl_relative makes relative to the base) go to fl_layer_apply's Placement, the rest (e_, a_, r_, bo_ ...)
    transforms the layer first."""
    placing = placing_keys(params)  # and its e_, when that is a blend mode (c_scale,e_cut_out,l_logo)
    own = {k: v for k, v in params.items() if k not in placing}
    if own:
        _add_component(block, own, layer=block)
    return _layer_step(block, {k: v for k, v in params.items() if k in placing}, canonical, prefix)


def _layer_step(layer: _Block, closer: Mapping[str, Any], canonical: str, prefix: str) -> Action:
    return layer_step(layer.opener, closer, layer.steps, text=layer.text, autorotate=layer.autorotate,
                      region_sized=layer.region_sized, canonical=canonical, prefix=prefix)  # fmt: skip


def _add_closed_block(block: _Block, step: Action) -> None:
    """Adds a closed layer or if_ block to ``block`` as one step, its canonical text one part of the
    prefix (mask and face keys) of the steps after it."""
    block.steps.append(step)
    block.parts.append(step.canonical)


def _add_component(block: _Block, params: Mapping[str, Any], *, layer: _Block | None) -> None:
    """``layer``: the innermost layer block the component is in (``block`` itself, or the layer an
    if_ block ``block`` is inside), None on the delivered image."""
    if "ignore" in params.get("a", ()):
        if block.condition is not None:
            raise BadRequest("Invalid transformation: a_ignore (how the original is loaded) cannot be inside "
                             "an if_ block")  # fmt: skip
        block.autorotate = False
    flags = params.get("fl", ())
    # fl_relative in a layer's own sizing component (the reference's l_icon/c_scale,fl_relative,w_0.3/
    # fl_layer_apply) makes w_/h_ fractions of the image the layer is placed on; fl_region_relative
    # (l_mask/c_scale,fl_region_relative,w_1.0/fl_layer_apply,g_faces) of the face it is placed on.
    # Outside a layer, fl_region_relative makes a face or subject crop's w_/h_ fractions of that box
    # (c_crop,fl_region_relative,g_face,h_2.0,w_2.0: twice the face's size, around it).
    region_crop = (
        flags == ("region_relative",) and params.get("c") == "crop" and params.get("g") in CONTENT_GRAVITIES
    )
    inside_layer = layer is not None
    if flags and not region_crop and (not inside_layer or flags not in (("relative",), ("region_relative",))):
        raise BadRequest(
            f"Invalid transformation parameter - {render_param('fl', flags)}: no_overflow, relative, "
            "region_relative, cutter and tiled qualify fl_layer_apply (relative or region_relative also a "
            "layer's own w_ or h_)"
        )
    if flags and "w" not in params and "h" not in params:
        raise BadRequest(
            f"Invalid transformation parameter - fl_{flags[0]}: fl_{flags[0]} needs w_ or h_ to size"
        )
    if flags == ("region_relative",) and layer is not None:
        layer.region_sized = True
    if layer is not None and params.get("g") in CUSTOM_GRAVITIES:
        # The custom coordinates read are the delivered asset's, not the layer's image's.
        raise BadRequest(f"Invalid transformation parameter - g_{params['g']}: custom coordinates are the "
                         "delivered asset's; g_custom cannot crop inside a layer")  # fmt: skip
    if any(isinstance(v, Template) for v in params.values()):
        block.steps.append(_deferred(params, list(block.parts)))
    else:
        block.steps.extend(_actions(params, block.parts))
    block.parts.append(_render(params))


def _deferred(params: Mapping[str, Any], parts: list[str]) -> Action:
    """A component with values only the image decides: built now with stand-ins (which checks all the
    rest of it), and for real when rendering."""
    static = {k: v for k, v in params.items() if not isinstance(v, Template)}
    templates = {k: v for k, v in params.items() if isinstance(v, Template)}
    stand_ins = {k: spec_for(k).parse(k, t.stand_in()) for k, t in templates.items()}
    try:
        probe = _actions({**params, **stand_ins}, parts)
    except BadRequest as exc:
        raise _as_written(exc, stand_ins, templates) from None
    return dynamic.deferred(static, templates, lambda bound: _actions(bound, parts),
                            canonical=_render(params), probe=probe)  # fmt: skip


def _as_written(
    exc: BadRequest, stand_ins: Mapping[str, Any], templates: Mapping[str, Template]
) -> BadRequest:
    """``exc`` naming the parameters as the URL writes them: a check of the probe reports the stand-in
    (``x_w_add_20`` probed as ``x_1``), a value the client never wrote."""
    for key, template in templates.items():
        probed = f"- {render_param(key, stand_ins[key])}:"
        if probed in exc.public:
            exc.public = exc.public.replace(probed, f"- {key}_{template}:", 1)
            exc.detail = exc.detail.replace(probed, f"- {key}_{template}:", 1)
            exc.args = (exc.public,)
    return exc


def _actions(params: Mapping[str, Any], parts: list[str]) -> list[Action]:
    actions: list[Action] = []
    claimed: set[str] = set()
    for name in ACTION_ORDER:
        done = ",".join(a.canonical for a in actions)
        prefix = "/".join([*parts, done] if done else parts)
        action = BUILDERS[name](params, claimed, prefix)
        if action is not None:
            actions.append(action)
    return actions
