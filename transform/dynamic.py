"""The steps that look at the image before they know what to do: a condition that picks a branch, a
component whose values are written with the image's names (``c_scale,w_iw_div_2``), and the assignment of
a variable such a value needs. The plan compiler (transform/plan.py) builds them; everything the URL alone
decides was folded in before (transform/expressions.py), so these are only what the image decides.

Their values are computed from the image as it is at their place in the chain (``w``, ``h``, ``ar``), the
original the block started from (``iw``, ``ih``, ``pc``, ``fc``) and the asset's record (``tags``,
``ctx:!key!``), all of which the cache key covers: the URL's text, the original's fingerprint, the
detector's id when faces are counted and the record's tags and context when they are read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyvips

from grammar.ast import Condition, Expression
from grammar.errors import InvalidArgument, NotAvailable
from transform.decode import page_count
from transform.expressions import Facts, Num, Unevaluable, Value, evaluate, holds, text_of
from transform.faces.centerface import DETECT_SIDE
from transform.ops.registry import Action, Ctx, Origin, spec_for
from transform.runner import run_steps
from transform.templates import Template

Build = Callable[[Mapping[str, Any]], list[Action]]


def origin(image: pyvips.Image, size: tuple[int, int] | None = None, *, keep: bool = False) -> Origin:
    """What iw, ih, pc (and fc in a layer: ``keep`` the image) read of the image a block starts from;
    ``size`` when it is not the image's own (the original upright, told from its header)."""
    width, height = size or (image.width, image.height)
    return Origin(width, height, max(1, page_count(image)), image if keep else None)


def facts(ctx: Ctx, image: pyvips.Image) -> Facts:
    """What names mean at this step: ``image`` is the current image, ``ctx.origin`` the block's start."""

    def value(name: str) -> Value:
        if name in ("w", "h", "ar"):
            return Num({"w": image.width, "h": image.height, "ar": image.width / image.height}[name])
        if name == "tags":
            return ctx.asset.tags
        origin = ctx.origin
        assert origin is not None, "the renderer sets the origin of a plan whose steps read it"
        if name == "fc":
            return Num(face_count(ctx))
        return Num({"iw": origin.width, "ih": origin.height, "iar": origin.width / origin.height,
                    "pc": origin.pages}[name])  # fmt: skip

    return Facts(ctx.variables, value, ctx.asset)


def face_count(ctx: Ctx) -> int:
    """The faces of the block's original: the same detection (and cache entry) as a g_face crop in the
    first step, found on the shrink-on-load preview of the delivered original."""
    if ctx.faces is None:
        raise NotAvailable("Face detection is not available on this server (fc counts faces)")
    seen = ctx.preview(DETECT_SIDE) if ctx.preview is not None else None
    if seen is None:
        assert ctx.origin is not None and ctx.origin.image is not None
        seen = ctx.origin.image
    return len(ctx.faces(seen, key=f"{ctx.source_key}|"))


def conditional(
    condition: Condition,
    then: Sequence[Action],
    otherwise: Sequence[Action],
    *,
    canonical: str,
    reads: frozenset[str],
) -> Action:
    """``if_<condition>/<then>/if_else/<otherwise>/if_end`` as one step; ``reads`` is what the condition
    reads (the branches' steps say their own)."""
    branches = (*then, *otherwise)

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        try:
            chosen = then if holds(condition, facts(ctx, image)) else otherwise
        except Unevaluable as exc:
            raise InvalidArgument("if", str(condition), str(exc)) from None
        return run_steps(chosen, ctx, image)

    return Action(
        canonical,
        run,
        # One of the branches runs, whichever: what either needs is needed.
        wide=any(branch[-1].wide for branch in (then, otherwise) if branch),
        segmentation=any(s.segmentation for s in branches),
        faces=any(s.faces for s in branches) or "fc" in reads,
        reads=reads.union(*(s.reads for s in branches)),
    )


def deferred(
    static: Mapping[str, Any],
    templates: Mapping[str, Template],
    build: Build,
    *,
    canonical: str,
    probe: Sequence[Action],
) -> Action:
    """A component whose ``templates`` (``w_iw_div_2``) are known only from the image: evaluated, parsed
    as if the URL had said the numbers, and built into its actions when rendering. ``probe`` is the
    component built with stand-in values at compile time (which checked the rest of it): what its
    actions need, the real ones need."""
    reads = frozenset().union(*(t.reads() for t in templates.values()))

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        found = facts(ctx, image)
        params = dict(static)
        for key, template in templates.items():
            text = template.substitute(found)
            try:
                params[key] = spec_for(key).parse(key, text)
            except InvalidArgument as exc:
                raise InvalidArgument(key, f"{template} (= {text} here)", exc.expected) from None
        return run_steps(build(params), ctx, image)

    return Action(
        canonical,
        run,
        wide=bool(probe) and probe[-1].wide,
        segmentation=any(s.segmentation for s in probe),
        faces=any(s.faces for s in probe) or "fc" in reads,
        reads=reads.union(*(s.reads for s in probe)),
    )


def texts(ctx: Ctx, names: frozenset[str], layer: str) -> dict[str, str]:
    """What ``$(name)`` shows in a text layer for each of ``names``, from the variables set so far."""
    missing = sorted(names - set(ctx.variables))
    if missing:
        raise InvalidArgument("l", layer, f"{missing[0]} is not defined here (it is set on another way "
                              "through an if_ block, or not at all)")  # fmt: skip
    return {name: text_of(ctx.variables[name]) for name in names}


def assignment(name: str, expression: Expression, *, canonical: str, reads: frozenset[str]) -> Action:
    """``$name_<expression>`` when rendering: the variable is set for the steps after it."""

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        try:
            ctx.variables[name] = evaluate(expression, facts(ctx, image))
        except Unevaluable as exc:
            raise InvalidArgument(name, str(expression), str(exc)) from None
        return image

    return Action(canonical, run, sequential=True, faces="fc" in reads, reads=reads)
