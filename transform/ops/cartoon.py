"""``e_cartoonify[:<line strength>][:<colour reduction>|bw]``: the image as a cartoon, flat colours inside
dark outlines (https://cloudinary.com/documentation/transformation_reference#e_cartoonify).

- line strength, 0-100 (default 50): how many outlines and how thick. The outlines are the edges of the
  smoothed image (libvips' Canny, its non-maximum suppressed gradient) above a threshold that falls as the
  strength rises; from LINE_WIDENS_AT up they are widened by a pixel each side. 0: no outlines.
- colour reduction, 0-100 (default: the line strength, as Cloudinary's "adjusts according to the line
  strength"): fewer colours and, to make up for it, more saturated ones, as Cloudinary describes it. The
  image is smoothed (a median, which keeps edges), its chroma raised by up to SATURATION_BOOST, then each
  channel rounded to fewer levels (from MOST_LEVELS at 1 to 2 at 100). 0: the colours as they are.
  ``bw``: black and white, the grey levels reduced as at 50.

Cloudinary's exact filter is its own: this is the same recipe (smoothing, reduction, outlines), not its
pixels. Alpha is kept as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from grammar.errors import InvalidArgument
from transform.ops import args
from transform.ops.effects import rgb_only
from transform.ops.registry import Action, Ctx, EffectSpec, effect

DEFAULT_STRENGTH = 50
#: The median's window: wide enough to flatten texture (skin, fabric) into areas, narrow enough to keep
#: small features.
SMOOTHING = 5
#: Canny's blur (sigma, px) and the gradient an outline needs at strength 0 (the threshold falls by
#: THRESHOLD_STEP a point of strength, to THRESHOLD_AT_100 at 100).
EDGE_SIGMA = 1.0
THRESHOLD_AT_100 = 1.0
THRESHOLD_STEP = 0.06
LINE_WIDENS_AT = 30
MOST_LEVELS = 12
SATURATION_BOOST = 0.6
BW_LEVELS = 4


@dataclass(frozen=True)
class Cartoon:
    strength: int = DEFAULT_STRENGTH
    #: 0-100, "bw", or None: the line strength's.
    reduction: int | str | None = None


def _parse(value: str, rest: str) -> Cartoon:
    parts = rest.split(":") if rest else []
    if len(parts) > 2:
        raise InvalidArgument("e", value, "e_cartoonify takes a line strength and a colour reduction at most")
    strength = DEFAULT_STRENGTH
    if parts and parts[0] != "":
        strength = args.int_in("e", parts[0], "line strength", 0, 100, shown=value)
    reduction: int | str | None = None
    if len(parts) == 2:
        reduction = "bw" if parts[1] == "bw" else args.int_in(
            "e", parts[1], "colour reduction", 0, 100, shown=value, forms="or bw"
        )
    return Cartoon(strength, reduction)


def _render(cartoon: Cartoon) -> str:
    text = "cartoonify"
    if cartoon.reduction is not None:
        return f"{text}:{cartoon.strength}:{cartoon.reduction}"
    return text if cartoon.strength == DEFAULT_STRENGTH else f"{text}:{cartoon.strength}"


def _flatten(smooth: pyvips.Image, reduction: int | str) -> pyvips.Image:
    """``smooth``: the image after its median (shared with ``_outlines``)."""
    if reduction == "bw":
        smooth, levels = smooth.colourspace("b-w"), BW_LEVELS
    elif reduction == 0:
        return smooth
    else:
        assert isinstance(reduction, int)
        boost = 1 + SATURATION_BOOST * reduction / 100
        smooth = (smooth.colourspace("lch") * [1, boost, 1]).colourspace("srgb")
        levels = max(2, round(2 + (MOST_LEVELS - 2) * (1 - reduction / 100)))
    step = 255 / (levels - 1)
    flat = ((smooth / step + 0.5).floor() * step).cast("uchar")
    return flat.bandjoin([flat, flat]) if flat.bands == 1 else flat  # (bw: back to three bands)


def _outlines(smooth: pyvips.Image, strength: int) -> pyvips.Image:
    """255 where an outline is drawn, found on the image after its median."""
    edges = smooth.colourspace("b-w").canny(sigma=EDGE_SIGMA)
    lines = edges > THRESHOLD_AT_100 + THRESHOLD_STEP * (100 - strength)
    if strength >= LINE_WIDENS_AT:
        lines = lines.morph(pyvips.Image.new_from_array([[255] * 3] * 3), "dilate")
    return lines


def _cartoonify(cartoon: Cartoon, prefix: str) -> Action:
    reduction = cartoon.strength if cartoon.reduction is None else cartoon.reduction

    def draw(rgb: pyvips.Image) -> pyvips.Image:
        smooth = rgb.median(SMOOTHING)  # one median for the colours and the lines
        flat = _flatten(smooth, reduction)
        if cartoon.strength == 0:
            return flat
        return _outlines(smooth, cartoon.strength).ifthenelse(0, flat).copy(interpretation="srgb")

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        return rgb_only(image, draw)

    return Action("e_" + _render(cartoon), run)


effect(
    EffectSpec(
        "cartoonify",
        _parse,
        _render,
        _cartoonify,
        "a cartoon: flat colours in dark outlines; line strength 0-100 (default 50), colour reduction "
        "0-100 (default: the line strength) or bw",
    )
)
