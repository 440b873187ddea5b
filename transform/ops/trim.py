"""``e_trim[:<tolerance>][:<colour>]``: cut away the edges that are the background colour or transparent.

The background is the colour override when given, else the top-left pixel's colour; on an image with
alpha whose top-left pixel is transparent (within the tolerance: a cut-out, typically after
e_background_removal) it is transparency itself, found on the alpha band. ``tolerance`` (0-100, default
10) is how far, in percent of the full range, a channel may differ from the background and still count as
background. libvips' find_trim median-filters first (3x3), so a stray speck near an edge does not stop
the trim."""

from __future__ import annotations

import pyvips

from transform import pixels
from transform.ops import args
from transform.ops.args import Color
from transform.ops.registry import Action, Ctx, EffectSpec, effect

DEFAULT_TOLERANCE = 10
#: find_trim's 3x3 median needs at least this many pixels a side.
MIN_SIDE = 3

Trim = tuple[int, Color | None]


def _parse(value: str, rest: str) -> Trim:
    tolerance_text, _, colour_text = rest.partition(":")
    tolerance = (
        DEFAULT_TOLERANCE
        if tolerance_text == ""
        else args.int_in("e", tolerance_text, "trim tolerance", 0, 100, shown=value)
    )
    colour = args.color("e", colour_text, "trim colour", shown=value) if colour_text else None
    return tolerance, colour


def _render(trim: Trim) -> str:
    tolerance, colour = trim
    if colour is not None:
        return f"trim:{tolerance}:{colour}"
    return "trim" if tolerance == DEFAULT_TOLERANCE else f"trim:{tolerance}"


def trim_box(image: pyvips.Image, tolerance: int, colour: Color | None) -> tuple[int, int, int, int]:
    """(left, top, width, height) of what is not background; width 0 when everything is. An image
    narrower or shorter than find_trim's median window is kept whole."""
    if image.width < MIN_SIDE or image.height < MIN_SIDE:
        return 0, 0, image.width, image.height
    threshold = tolerance * 2.55
    if colour is None and pixels.has_alpha(image) and image.getpoint(0, 0)[3] <= threshold:
        left, top, width, height = image.extract_band(3).find_trim(threshold=threshold, background=[0])
        return left, top, width, height
    rgb = [colour.r, colour.g, colour.b] if colour is not None else [int(v) for v in image.getpoint(0, 0)[:3]]
    # Transparent pixels become the background colour, so they are trimmed as well.
    opaque = pixels.flatten(image, [*rgb, 255])
    left, top, width, height = opaque.find_trim(threshold=threshold, background=rgb)
    return left, top, width, height


def _trim(trim: Trim, prefix: str) -> Action:
    tolerance, colour = trim

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        image = image.copy_memory()  # read twice: once to find the box, once to cut it out
        left, top, width, height = trim_box(image, tolerance, colour)
        if width == 0 or height == 0:
            return image  # all background: nothing sensible to cut down to
        return image.extract_area(left, top, width, height)

    return Action("e_" + _render(trim), run)


effect(
    EffectSpec(
        "trim",
        _parse,
        _render,
        _trim,
        "cut away edges of the top-left corner's colour (or the given colour), or transparent ones: "
        "tolerance 0-100 (default 10), then an optional colour (e_trim:20:white)",
    )
)
