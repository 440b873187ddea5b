"""``e_outline[:<mode>][:<width>][:<blur>]`` with ``co_``: an outline of the image's shape.

The shape is the alpha channel (an opaque image's is its rectangle). Modes, as the reference lists them:
``inner`` paints a band ``width`` px wide inside the shape's edge, ``outer`` one outside it, both when no
mode is given; ``inner_fill`` paints the whole shape, ``fill`` the shape and the outer band. ``width`` is
1-100 px (default 5), ``blur`` 0-200 (default 0) softens the band (sigma blur/10 px); ``co_`` is its
colour (default black). Modes that paint outside the shape grow the canvas by the band's reach on every
side (width, plus the blur's spread), transparent there: otherwise an opaque image's outer outline, or a
cut-out touching its edge, would fall off the canvas.

The band is found by dilating the shape with a disc, in steps of a 9x9 disc (libvips ``morph``): a
Minkowski sum of discs is a disc, and each step costs 69 comparisons a pixel however wide the outline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pyvips

from grammar.errors import InvalidArgument
from transform import pixels
from transform.limits import Limits, check_output
from transform.ops import args
from transform.ops.args import Color
from transform.ops.registry import Action, Ctx, EffectSpec, effect, render_param

MODES = ("inner", "outer", "inner_fill", "fill")
DEFAULT_WIDTH = 5
BLACK = Color(0, 0, 0, 255, "black")
_STEP = 4  # radius of one dilation step
_DISC = [[255 if (i - _STEP) ** 2 + (j - _STEP) ** 2 <= _STEP * _STEP + 2 else 128 for i in range(9)]
         for j in range(9)]  # fmt: skip

Outline = tuple[str, int, int]  # mode ("" for inner and outer), width, blur


def _parse(value: str, rest: str) -> Outline:
    parts = rest.split(":") if rest else []
    mode = parts.pop(0) if parts and parts[0] in MODES else ""
    if len(parts) > 2 or (parts and args.integer(parts[0]) is None):
        raise InvalidArgument(
            "e", value, "outline takes [mode:][width[:blur]], mode one of inner, outer, inner_fill, fill"
        )
    width = args.int_in("e", parts[0], "outline width", 1, 100, shown=value) if parts else DEFAULT_WIDTH
    blur = args.int_in("e", parts[1], "outline blur", 0, 200, shown=value) if len(parts) > 1 else 0
    return mode, width, blur


def _render(outline: Outline) -> str:
    mode, width, blur = outline
    parts = ["outline", *([mode] if mode else [])]
    if width != DEFAULT_WIDTH or blur:
        parts.append(str(width))
    if blur:
        parts.append(str(blur))
    return ":".join(parts)


def _at_dpr(outline: Outline, ratio: float) -> Outline:
    mode, width, blur = outline
    shown = _render(outline)
    return (mode, args.at_dpr("e", shown, width, ratio, "outline width", 1, 100),
            args.at_dpr("e", shown, blur, ratio, "outline blur", 0, 200))  # fmt: skip


def _outline(arguments: tuple[Outline, Mapping[str, Any]], prefix: str) -> Action:
    (mode, width, blur), qualifiers = arguments
    colour: Color = qualifiers.get("co", BLACK)
    parts = {k: render_param(k, v) for k, v in qualifiers.items()}
    parts["e"] = "e_" + _render((mode, width, blur))
    canonical = ",".join(parts[k] for k in sorted(parts))

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        return draw_outline(image, mode, width, blur / 10, colour, ctx.limits)

    return Action(canonical, run, wide=True)


def draw_outline(
    image: pyvips.Image, mode: str, width: int, sigma: float, colour: Color, limits: Limits
) -> pyvips.Image:
    """(Also the stroke of text layers, transform/ops/text.py: mode outer.)"""
    image = pixels.with_alpha(image)
    outside = mode in ("", "outer", "fill")
    if outside:
        grow = width + math.ceil(2 * sigma)
        outer_w, outer_h = image.width + 2 * grow, image.height + 2 * grow
        check_output(outer_w, outer_h, limits, "Canvas holding the outline")
        image = image.embed(grow, grow, outer_w, outer_h, extend="black")
    alpha = image.extract_band(3)
    shape = (alpha > 127).ifthenelse(255, 0).cast("uchar").copy_memory()
    band = pyvips.Image.black(image.width, image.height).cast("uchar")
    if mode in ("", "outer"):
        band = band | (_dilate(shape, width) & shape.invert())
    if mode in ("", "inner"):
        # Inside the edge: what a dilation of the outside (the canvas border counting as outside) reaches.
        framed = shape.invert().embed(1, 1, image.width + 2, image.height + 2, extend="white")
        band = band | (_dilate(framed, width).crop(1, 1, image.width, image.height) & shape)
    if mode == "inner_fill":
        band = shape
    if mode == "fill":
        band = _dilate(shape, width)
    paint = band.gaussblur(max(sigma, 0.5), precision="integer")  # at least a little antialiasing
    if colour.a != 255:
        paint = paint * (colour.a / 255)
    layer = pixels.solid(image.width, image.height, colour.rgba[:3] + [0]).extract_band(0, n=3)
    layer = layer.bandjoin(paint.cast("uchar")).copy(interpretation="srgb")
    if mode == "outer":
        out = layer.composite2(image, "over")  # the band only shows outside the shape
    else:
        # Painted over the image, but not beyond its shape unless the mode reaches outside.
        out = image.composite2(layer, "over" if outside else "atop")
    return out.cast("uchar").copy(interpretation="srgb")


def _dilate(mask: pyvips.Image, radius: int) -> pyvips.Image:
    """The mask grown by a disc of ``radius`` px, in steps of at most _STEP (computed step by step)."""
    steps, last = divmod(radius, _STEP)
    for _ in range(steps):
        mask = mask.morph(_DISC, "dilate").copy_memory()
    if last:
        small = [[255 if (i - last) ** 2 + (j - last) ** 2 <= last * last + 1 else 128
                  for i in range(2 * last + 1)] for j in range(2 * last + 1)]  # fmt: skip
        mask = mask.morph(small, "dilate").copy_memory()
    return mask


effect(
    EffectSpec(
        "outline",
        _parse,
        _render,
        _outline,
        "outline of the image's shape (alpha, or the rectangle) in the co_ colour (default black): mode "
        "inner, outer (both by default), inner_fill (the shape) or fill (shape and outer band), then width "
        "1-100 px (default 5) and blur 0-200 (default 0); modes reaching outside grow the canvas by the "
        "band's reach",
        qualifiers=("co",),
        dpr=_at_dpr,
    )
)
