"""Angle ``a_``, rounding ``r_``, border ``bo_``, opacity ``o_`` and background ``b_``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pyvips

from grammar.errors import BadRequest, InvalidArgument
from transform import pixels
from transform.ops import args
from transform.ops.args import Color
from transform.ops.autopad import AutoBackground, BlurredBackground, parse_auto, parse_blurred
from transform.ops.registry import Action, Ctx, ParamSpec, builder, param, render_param
from transform.ops.resize import AUTO_TURNS

# a_auto_right / a_auto_left (AUTO_TURNS) qualify the component's resize, which turns the image before
# sizing it (transform/ops/resize.py); the angle step after it leaves them out.
_ANGLE_MODES = ("hflip", "vflip", "ignore", *AUTO_TURNS)


def _angle(key: str, value: str) -> tuple[str, ...]:
    """Tokens in URL order, except ``ignore`` (a fact about loading, not a step), which goes first."""
    tokens = tuple(value.split("."))
    for token in tokens:
        degrees = args.integer(token)
        if token not in _ANGLE_MODES and not (degrees is not None and abs(degrees) <= 3600):
            raise InvalidArgument(
                key,
                value,
                "angle must be degrees (-3600 to 3600), hflip, vflip, ignore, auto_right or auto_left, "
                "joined by '.'",
            )
    if sum(t not in _ANGLE_MODES for t in tokens) > 1:
        raise InvalidArgument(key, value, "angle takes one number of degrees (a_45, a_hflip.45)")
    if tokens.count("ignore") > 1:
        raise InvalidArgument(key, value, "angle takes ignore once")
    if sum(t in AUTO_TURNS for t in tokens) > 1:
        raise InvalidArgument(key, value, "angle takes one of auto_right and auto_left, once")
    steps = tuple(t if t in _ANGLE_MODES else str(args.integer(t)) for t in tokens if t != "ignore")
    return ("ignore", *steps) if "ignore" in tokens else steps


def _radius(key: str, value: str) -> tuple[int, ...] | str:
    if value == "max":
        return "max"
    radii = [args.integer(p) for p in value.split(":")]
    if len(radii) <= 4 and all(r is not None and 0 <= r <= args.MAX_LENGTH for r in radii):
        return tuple(r for r in radii if r is not None)
    raise InvalidArgument(
        key, value, f"radius must be max, or 1 to 4 pixel values from 0 to {args.MAX_LENGTH} joined by ':'"
    )


# "px" may be left out: Cloudinary's own example of a width from a variable, bo_$size_solid_rgb:FFB235,
# is bo_15_solid_rgb:FFB235 once the variable is put in.
# A width of 0 is no border (sites write bo_0px_solid_rgb:ffffff beside r_0 and o_100, their defaults); a
# decimal one is rounded to whole pixels, half up (bo_1.5px_solid_white is 2 px), as the image has no finer.
_BORDER = re.compile(r"([0-9]+(?:\.[0-9]+)?)(?:px)?_solid_(.+)")


def _border(key: str, value: str) -> tuple[int, Color]:
    match = _BORDER.fullmatch(value)
    width = math.floor(float(match[1]) + 0.5) if match and len(match[1]) <= 12 else None
    if match is None or width is None or not 0 <= width <= 1000:
        raise InvalidArgument(
            key, value, "border must be <width>px_solid_<colour>, width 0 to 1000 (bo_5px_solid_black)"
        )
    return width, args.color(key, match[2], "border colour")


def _border_head(value: str) -> tuple[str, str]:
    """``$size_solid_rgb:FFB235`` -> ("$size", "_solid_rgb:FFB235"): only the width may be an expression
    (``bo_w_div_50_solid_black``); the colour, which has ':' of its own, stays as written."""
    head, solid, colour = value.partition("_solid_")
    return (head, solid + colour) if solid else (value, "")


def _radius_at_dpr(key: str, value: tuple[int, ...] | str, ratio: float) -> tuple[int, ...] | str:
    if isinstance(value, str):  # max: a circle or an ellipse, whatever the size
        return value
    shown = ":".join(map(str, value))
    return tuple(args.at_dpr(key, shown, r, ratio, "radius", 0, args.MAX_LENGTH) for r in value)


def _border_at_dpr(key: str, value: tuple[int, Color], ratio: float) -> tuple[int, Color]:
    width, colour = value
    if width == 0:
        return value
    return args.at_dpr(key, f"{width}px_solid_{colour}", width, ratio, "border width", 1, 1000), colour


def _background(key: str, value: str) -> Color | AutoBackground | BlurredBackground:
    if value == "auto" or value.startswith("auto:"):
        return parse_auto(key, value)
    if value == "blurred" or value.startswith("blurred:"):
        return parse_blurred(key, value)
    try:
        return args.color(key, value, "background", allow_transparent=True)
    except InvalidArgument as exc:
        raise InvalidArgument(
            key, value, exc.expected + ", or auto[:<mode>] or blurred[:<intensity>][:<brightness>] with a pad"
        ) from None


param(
    ParamSpec(
        "a",
        "angle",
        _angle,
        "rotate clockwise by degrees; hflip, vflip; combine with '.' (a_hflip.45); "
        "ignore: do not apply the EXIF orientation; auto_right, auto_left: with the component's resize "
        "(w_ and h_, or ar_), first turn the image a quarter clockwise / counter-clockwise when the box "
        "and the image are not both landscape or both portrait",
        "angle",
        lambda t: ".".join(t),
        variables="integer",
    )
)
param(
    ParamSpec(
        "r",
        "radius",
        _radius,
        "round the corners: pixels, a:b[:c[:d]] (clockwise from top-left), or max",
        "radius",
        lambda v: v if isinstance(v, str) else ":".join(map(str, v)),
        _radius_at_dpr,
        variables="integer",
    )
)
param(
    ParamSpec(
        "bo",
        "border",
        _border,
        "solid border around the image (bo_5px_solid_black)",
        "border",
        lambda v: f"{v[0]}px_solid_{v[1]}",
        _border_at_dpr,
        variables="integer",
        variable_head=_border_head,
    )
)
param(
    ParamSpec(
        "o",
        "opacity",
        lambda k, v: args.int_in(k, v, "opacity", 0, 100),
        "opacity in percent",
        "opacity",
        variables="integer",
    )
)
param(
    ParamSpec(
        "b",
        "background",
        lambda k, v: _background(k, v),
        "background colour: pad colour with c_pad (b_auto[:<mode>][:2|4][:<direction>][:palette_<colours>]: "
        "taken from the image, a colour or, with a gradient mode, a fade of 2 or 4 colours, with c_pad, "
        "c_lpad, c_mpad, c_fill_pad; b_blurred[:<intensity 1-2000>][:<brightness -300..100>]: the image "
        "itself, filling the frame, blurred, with the same pads), else fills transparent areas",
        "background",
    )
)


def rotate(image: pyvips.Image, tokens: tuple[str, ...]) -> pyvips.Image:
    for token in tokens:
        if token == "hflip":
            image = image.fliphor()
        elif token == "vflip":
            image = image.flipver()
        elif int(token) % 90 == 0:
            turns = int(token) % 360 // 90
            image = image.rot(("d0", "d90", "d180", "d270")[turns]) if turns else image
        else:
            # Premultiplied, or the transparent corners' black bleeds into the edges.
            rotated = pixels.with_alpha(image).premultiply().rotate(int(token) % 360, background=[0, 0, 0, 0])
            image = rotated.unpremultiply().cast("uchar").copy(interpretation="srgb")
    return image


def corner_radii(radius: tuple[int, ...] | str, width: int, height: int) -> tuple[float, ...] | None:
    """(top-left, top-right, bottom-right, bottom-left) like CSS; None for an ellipse (r_max)."""
    if radius == "max":
        return None
    # CSS order: one value for all; two: TL/BR and TR/BL; three: TL, TR/BL, BR; four: clockwise from TL.
    picks = {1: (0, 0, 0, 0), 2: (0, 1, 0, 1), 3: (0, 1, 2, 1), 4: (0, 1, 2, 3)}[len(radius)]
    limit = min(width, height) / 2
    return tuple(min(float(radius[i]), limit) for i in picks)


def shape_mask(width: int, height: int, radii: tuple[float, ...] | None) -> pyvips.Image:
    """An antialiased one-band mask: 255 inside the rounded rectangle (or ellipse), 0 outside."""
    if radii is None:
        shape = f'<ellipse cx="{width / 2}" cy="{height / 2}" rx="{width / 2}" ry="{height / 2}"/>'
    else:
        tl, tr, br, bl = radii
        shape = (
            f'<path d="M{tl},0 H{width - tr} A{tr},{tr} 0 0 1 {width},{tr} V{height - br} '
            f"A{br},{br} 0 0 1 {width - br},{height} H{bl} A{bl},{bl} 0 0 1 0,{height - bl} "
            f'V{tl} A{tl},{tl} 0 0 1 {tl},0 Z"/>'
        )
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">{shape}</svg>'
    return pyvips.Image.svgload_buffer(svg.encode()).extract_band(3)


def round_corners(image: pyvips.Image, radius: tuple[int, ...] | str) -> pyvips.Image:
    radii = corner_radii(radius, image.width, image.height)
    if radii is not None and not any(radii):
        return image
    return pixels.mask_alpha(image, shape_mask(image.width, image.height, radii))


def add_border(
    image: pyvips.Image, width: int, colour: Color, radius: tuple[int, ...] | str | None
) -> pyvips.Image:
    """A border ``width`` px wide around the image; with a radius (same component) it follows the corners.
    Only the ring is painted: transparent parts of the image stay transparent."""
    outer_w, outer_h = image.width + 2 * width, image.height + 2 * width
    if radius is None and not pixels.has_alpha(image) and colour.a == 255:
        return image.embed(width, width, outer_w, outer_h, extend="background", background=colour.rgba[:3])
    ring = pixels.solid(outer_w, outer_h, colour.rgba)
    radii: tuple[float, ...] | None = (0.0, 0.0, 0.0, 0.0)
    if radius is not None:
        radii = corner_radii(radius, image.width, image.height)
        grown = None if radii is None else tuple(r + width if r else 0.0 for r in radii)
        ring = pixels.mask_alpha(ring, shape_mask(outer_w, outer_h, grown))
    ring = pixels.mask_alpha(ring, _around(image, width, radii))
    # The ring's coverage and the image's never overlap (the hole is the shape r_ cut the image to), so
    # adding them (premultiplied) gives the image inside, the ring outside and a seamless antialiased
    # edge between: where an opaque image was rounded, its alpha and the ring's sum to exactly opaque.
    return (
        ring.composite2(pixels.with_alpha(image), "add", x=width, y=width)
        .cast("uchar")
        .copy(interpretation="srgb")
    )


def _around(image: pyvips.Image, width: int, radii: tuple[float, ...] | None) -> pyvips.Image:
    """A one-band mask of the bordered size: 0 where the image goes (the shape r_ cut it to, if it did),
    255 around it."""
    inner = shape_mask(image.width, image.height, radii) if radii is None or any(radii) else None
    if inner is None:
        inner = (pyvips.Image.black(image.width, image.height) + 255).cast("uchar")
    outer_w, outer_h = image.width + 2 * width, image.height + 2 * width
    return inner.embed(width, width, outer_w, outer_h).invert()


@builder("angle")
def build_angle(params: Mapping[str, Any], claimed: set[str], prefix: str) -> Action | None:
    if "a" not in params:
        return None
    turn = next((t for t in params["a"] if t in AUTO_TURNS), None)
    if turn is not None and "a" not in claimed:
        raise BadRequest(
            f"Invalid transformation parameter - a_{turn}: it qualifies a resize in its component (c_ with "
            "w_ and h_, or ar_): it turns the image when the box's orientation is not the image's"
        )
    # a_ignore acts when the source is loaded; a_auto_right and a_auto_left in the resize, before it.
    tokens = tuple(t for t in params["a"] if t != "ignore" and t not in AUTO_TURNS)
    if not tokens:
        return None
    sequential = all(t == "hflip" or (t not in _ANGLE_MODES and int(t) % 360 == 0) for t in tokens)
    return Action(render_param("a", tokens), lambda ctx, image: rotate(image, tokens), sequential=sequential)


@builder("radius")
def build_radius(params: Mapping[str, Any], claimed: set[str], prefix: str) -> Action | None:
    if "r" not in params:
        return None
    radius = params["r"]
    return Action(render_param("r", radius), lambda ctx, image: round_corners(image, radius))


@builder("border")
def build_border(params: Mapping[str, Any], claimed: set[str], prefix: str) -> Action | None:
    if "bo" not in params:
        return None
    width, colour = params["bo"]
    if width == 0:  # no border (the r_ in its component rounds the corners on its own)
        return None
    radius = params.get("r")
    return Action(
        render_param("bo", params["bo"]), lambda ctx, image: add_border(image, width, colour, radius)
    )


def set_opacity(image: pyvips.Image, percent: int) -> pyvips.Image:
    if percent == 100:
        return image
    level = round(255 * percent / 100)
    return pixels.mask_alpha(image, pyvips.Image.black(image.width, image.height) + level)


@builder("opacity")
def build_opacity(params: Mapping[str, Any], claimed: set[str], prefix: str) -> Action | None:
    if "o" not in params:
        return None
    percent = params["o"]

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        return set_opacity(image, percent)

    return Action(render_param("o", percent), run, sequential=True)


@builder("background")
def build_background(params: Mapping[str, Any], claimed: set[str], prefix: str) -> Action | None:
    if "b" not in params or "b" in claimed:
        return None
    colour = params["b"]
    if isinstance(colour, AutoBackground | BlurredBackground):
        what = "b_blurred is the pad" if isinstance(colour, BlurredBackground) else "b_auto is the pad colour"
        raise BadRequest(
            f"Invalid transformation parameter - b_{colour}: {what} of c_pad, c_lpad, c_mpad or c_fill_pad, "
            "in the same component"
        )
    if colour.a == 0:
        raise BadRequest(
            f"Invalid transformation parameter - b_{colour}: a transparent background only "
            "makes sense as the pad colour of c_pad, c_lpad or c_mpad"
        )

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        return pixels.flatten(image, colour.rgba)

    return Action(render_param("b", colour), run, sequential=True)
