"""``e_shadow[:<strength>]`` with ``co_``, ``x_``, ``y_``: Cloudinary's classic shadow, for any image.

The image's shape (its alpha; an opaque image is its rectangle) is cast as a shadow of the ``co_`` colour
(default gray, as the reference says), moved by ``x_``/``y_`` (default: to the bottom right, by 2 % of the
shorter side) and blurred by ``strength`` (0-100, default 40: "the strength of the blur on the edges").
The canvas grows to hold the shadow, transparent where neither image nor shadow is: an opaque image's
shadow lies outside it, and would otherwise never show. (``e_dropshadow`` is the light-source shadow of a
cut-out; this one needs no transparency.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pyvips

from transform import pixels
from transform.limits import check_output
from transform.ops import args
from transform.ops.args import Color, Dim
from transform.ops.registry import Action, Ctx, EffectSpec, effect, render_param

#: strength_ is the reference's verbose spelling (e_shadow:strength_40); its error does not name it.
STRENGTH = args.Level("shadow", "shadow strength", 0, 100, 40, "strength_")
GRAY = Color(128, 128, 128, 255, "gray")
#: sigma of the blur in pixels per unit of strength: e_shadow:100 is a 12.5 px (sigma) soft edge.
SIGMA_PER_STRENGTH = 0.125


def _shadow(arguments: tuple[int, Mapping[str, Any]], prefix: str) -> Action:
    strength, qualifiers = arguments
    colour: Color = qualifiers.get("co", GRAY)
    x: Dim | None = qualifiers.get("x")
    y: Dim | None = qualifiers.get("y")
    # Alphabetical, as the plan writes components: co_, e_, x_, y_.
    parts = {**{k: render_param(k, v) for k, v in qualifiers.items()}, "e": "e_" + STRENGTH.render(strength)}
    canonical = ",".join(parts[k] for k in sorted(parts))

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        default = max(1, round(min(image.width, image.height) * 0.02))
        dx = x.px(image.width) if x else default
        dy = y.px(image.height) if y else default
        return cast_shadow(image, colour, dx, dy, strength * SIGMA_PER_STRENGTH, ctx)

    return Action(canonical, run)


def cast_shadow(image: pyvips.Image, colour: Color, dx: int, dy: int, sigma: float, ctx: Ctx) -> pyvips.Image:
    """``image`` over its shadow, on a canvas grown to hold both (offsets may be negative)."""
    reach = math.ceil(3 * sigma)  # the blur's visible spread beyond the shape
    left, top = min(0, dx - reach), min(0, dy - reach)
    right = max(image.width, image.width + dx + reach)
    bottom = max(image.height, image.height + dy + reach)
    width, height = right - left, bottom - top
    check_output(width, height, ctx.limits, "Canvas holding the shadow")
    shape = pixels.with_alpha(image).extract_band(3)
    # The shape put where the shadow falls, with room for the blur; blurred there.
    shade = shape.embed(dx - left, dy - top, width, height, extend="black")
    if sigma > 0:
        shade = shade.gaussblur(sigma, precision="integer")
    if colour.a != 255:
        shade = shade * (colour.a / 255)
    shadow = pixels.solid(width, height, [colour.r, colour.g, colour.b, 0]).extract_band(0, n=3)
    shadow = shadow.bandjoin(shade.cast("uchar")).copy(interpretation="srgb")
    out = shadow.composite2(pixels.with_alpha(image), "over", x=-left, y=-top)
    return out.cast("uchar").copy(interpretation="srgb")


effect(
    EffectSpec(
        "shadow",
        STRENGTH.parse,
        STRENGTH.render,
        _shadow,
        "a shadow of the image's shape in the co_ colour (default gray), moved by x_, y_ (default 2 % of the "
        "shorter side, to the bottom right) and blurred: strength 0-100 (default 40); the canvas grows to "
        "hold it",
        qualifiers=("co", "x", "y"),
    )
)
