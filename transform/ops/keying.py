"""Effects that choose pixels by their colour or opacity: ``e_make_transparent[:<tolerance>]`` (with an
optional ``co_``), ``e_replace_color:<to>[:<tolerance>][:<from>]`` and ``e_opacity_threshold[:<level>]``.

- e_make_transparent (tolerance 0-100, default 10, as e_trim's: how far, in percent of the full range, a
  channel may differ): without ``co_`` the background is the colour of the image's edges (the median of
  its border pixels, as Cloudinary's "all pixels that resemble the pixels on the edges"), and only the
  matching pixels connected to the border go: a white shirt on a white backdrop keeps its inside. With
  ``co_`` that colour is keyed out wherever it is (a colour key, as the caller chose the colour).
- e_replace_color (tolerance 0-100, default 50: a radius in CIE Lab around the ``from`` colour, default the
  image's predominant colour): each matching pixel is moved in Lab by ``to - from``, so shades of the
  ``from`` colour become the same shades of ``to`` (the reference: "taking luminosity and chroma into
  account"); the last quarter of the radius fades the change out, so the edge of a recoloured area does
  not step.
- e_opacity_threshold (1-100, default 50): alpha below level % of full becomes 0, the rest 255.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvips

from grammar.errors import InvalidArgument
from transform import pixels
from transform.ops import args
from transform.ops.args import Color
from transform.ops.effects import rgb_only
from transform.ops.registry import Action, Ctx, EffectSpec, effect, render_param

TRANSPARENT = args.Level("make_transparent", "make_transparent tolerance", 0, 100, 10)
REPLACE_TOLERANCE = 50
#: level_ is the reference's verbose spelling (e_opacity_threshold:level_50); its error does not name it.
OPACITY_THRESHOLD = args.Level("opacity_threshold", "opacity_threshold level", 1, 100, 50, "level_")
#: The bins a channel is counted in for the predominant colour (measured on ``pixels.measured``).
BINS = 16


# -- e_make_transparent ---------------------------------------------------------------------------------


def _within(rgb: pyvips.Image, colour: list[float], tolerance: int) -> pyvips.Image:
    """255 where every channel is within ``tolerance`` % of the full range of ``colour``, else 0."""
    return ((rgb - colour).abs() <= tolerance * 2.55).bandand()


def border_colour(rgb: pyvips.Image) -> list[float]:
    """The median, channel by channel, of the pixels on the image's four edges."""
    width, height = rgb.width, rgb.height
    strips = [rgb.crop(0, 0, width, 1), rgb.crop(0, height - 1, width, 1)]
    strips += [rgb.crop(0, 0, 1, height).rot90(), rgb.crop(width - 1, 0, 1, height).rot90()]
    border = pyvips.Image.arrayjoin(strips, across=1)
    return [float(border.extract_band(band).percent(50)) for band in range(3)]


def _connected_to_border(mask: pyvips.Image) -> pyvips.Image:
    """The 255-valued pixels of ``mask`` that a path of 255s joins to the image's edge."""
    # A 1 px frame of 255 around the mask joins every matching edge pixel, so one flood fill from the
    # frame's corner reaches all of them.
    framed = mask.embed(1, 1, mask.width + 2, mask.height + 2, extend="background", background=[255])
    flooded = framed.copy_memory().draw_flood([128], 0, 0, equal=True)  # equal: the 255s from (0, 0)
    return (flooded == 128).crop(1, 1, mask.width, mask.height)


def _make_transparent(arguments: tuple[int, Mapping[str, Any]], prefix: str) -> Action:
    tolerance, qualifiers = arguments
    colour: Color | None = qualifiers.get("co")
    # Alphabetical, as the plan writes components: co_, e_.
    parts = [*(render_param(k, v) for k, v in sorted(qualifiers.items()))]
    parts.append("e_" + TRANSPARENT.render(tolerance))

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        image = pixels.with_alpha(image).copy_memory()  # read to measure, then to key
        rgb, alpha = image.extract_band(0, n=3), image.extract_band(3)
        target = [float(c) for c in colour.rgba[:3]] if colour is not None else border_colour(rgb)
        # Pixels already transparent are background too: they carry the flood through a cut-out's edges.
        matched = _within(rgb, target, tolerance) | (alpha == 0)
        if colour is None:
            matched = _connected_to_border(matched)
        return rgb.bandjoin(matched.ifthenelse(0, alpha)).cast("uchar").copy(interpretation="srgb")

    return Action(",".join(parts), run)


# -- e_replace_color ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replace:
    to: Color
    tolerance: int = REPLACE_TOLERANCE
    source: Color | None = None  # None: the image's predominant colour

    def render(self) -> str:
        parts = ["replace_color", _hex_or_name(self.to)]
        if self.tolerance != REPLACE_TOLERANCE or self.source is not None:
            parts.append(str(self.tolerance))
        if self.source is not None:
            parts.append(_hex_or_name(self.source))
        return ":".join(parts)


def _hex_or_name(colour: Color) -> str:
    """Cloudinary writes this effect's colours as names or bare hex (e_replace_color:aa7812)."""
    return colour.text.removeprefix("rgb:")


_REPLACE_FORMS = (
    "replace_color takes <to colour>[:<tolerance 0-100>][:<from colour>], colours as names, rgb:RRGGBB "
    "or bare RRGGBB"
)


_BARE_HEX = re.compile(r"[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8}")


def _colour(value: str, text: str, noun: str) -> Color:
    """A colour name, ``rgb:<hex>`` or Cloudinary's bare hex (``aa7812``: this effect's own form; no
    colour name is all hex digits, so the two cannot be confused)."""
    try:
        return args.color("e", "rgb:" + text if _BARE_HEX.fullmatch(text) else text, noun, shown=value)
    except InvalidArgument:
        # The whole form, as the parameter table shows it, and which part was not a colour.
        raise InvalidArgument("e", value, f"{_REPLACE_FORMS}; {text} is not supported") from None


def _parse_replace(value: str, rest: str) -> Replace:
    parts = rest.split(":") if rest else []
    # rgb:aa7812 spelled with its prefix: the prefix and the digits are one part.
    merged: list[str] = []
    for part in parts:
        if merged and merged[-1].lower() == "rgb":
            merged[-1] += ":" + part
        else:
            merged.append(part)
    if not merged or len(merged) > 3 or not merged[0]:
        raise InvalidArgument("e", value, _REPLACE_FORMS)
    to = _colour(value, merged[0], "replace_color's target colour")
    tolerance = REPLACE_TOLERANCE
    if len(merged) > 1 and merged[1] != "":
        tolerance = args.int_in("e", merged[1], "replace_color tolerance", 0, 100, shown=value)
    source = _colour(value, merged[2], "replace_color's source colour") if len(merged) > 2 else None
    return Replace(to, tolerance, source)


def predominant_colour(image: pyvips.Image) -> list[float]:
    """The mean colour of the most populated cell of a 16x16x16 grid over sRGB, among the opaque pixels
    of a thumbnail: the colour most of the image is close to."""
    small = pixels.measured(image)
    # numpy: a 3-D histogram's fullest cell and a masked mean are one line each; libvips has neither.
    array = np.asarray(small.numpy(), dtype=np.int32).reshape(-1, small.bands)
    if small.bands == 4:
        opaque = array[array[:, 3] >= 128]
        array = opaque if len(opaque) else array
    rgb = array[:, :3]
    cells = (rgb // (256 // BINS)) @ np.array([BINS * BINS, BINS, 1])
    fullest = np.bincount(cells, minlength=BINS**3).argmax()
    return [float(v) for v in rgb[cells == fullest].mean(axis=0)]


def _lab(colour: list[float]) -> list[float]:
    pixel = (pyvips.Image.black(1, 1) + colour).cast("uchar").copy(interpretation="srgb")
    return [float(v) for v in pixel.colourspace("lab").getpoint(0, 0)]


def _replace_color(replace: Replace, prefix: str) -> Action:
    to_lab = _lab([replace.to.r, replace.to.g, replace.to.b])
    measured = object()  # the predominant colour of an animation's first frame, in Ctx.measured

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        if replace.source is not None:
            source = [float(replace.source.r), float(replace.source.g), float(replace.source.b)]
        elif measured in ctx.measured:  # one colour for every frame, or the frames would flicker
            source = ctx.measured[measured]
        else:
            image = image.copy_memory()  # read to measure, then to recolour
            source = ctx.measured[measured] = predominant_colour(image)
        from_lab = _lab(source)
        shift = [t - f for t, f in zip(to_lab, from_lab, strict=True)]
        radius = replace.tolerance

        def recolour(rgb: pyvips.Image) -> pyvips.Image:
            lab = rgb.colourspace("lab")
            squares = (lab - from_lab) ** 2
            distance = (squares[0] + squares[1] + squares[2]) ** 0.5  # CIE76 delta E
            if radius == 0:
                weight = (distance < 0.5) / 255  # the colour itself (to the rounding of 8-bit sRGB)
            else:
                # Full strength inside three quarters of the radius, fading to none at the radius.
                fade = max(radius * 0.25, 1.0)
                ramp = (radius - distance) / fade
                weight = (ramp < 0).ifthenelse(0, (ramp > 1).ifthenelse(1, ramp))
            moved = lab + weight.bandjoin([weight, weight]) * shift
            return moved.copy(interpretation="lab").colourspace("srgb")

        return rgb_only(image, recolour)

    return Action("e_" + replace.render(), run)


# -- e_opacity_threshold --------------------------------------------------------------------------------


def _opacity_threshold(level: int, prefix: str) -> Action:
    threshold = level * 2.55

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        if not pixels.has_alpha(image):
            return image  # nothing is semi-transparent
        alpha = (image.extract_band(3) >= threshold).ifthenelse(255, 0)
        return image.extract_band(0, n=3).bandjoin(alpha).cast("uchar").copy(interpretation="srgb")

    return Action("e_" + OPACITY_THRESHOLD.render(level), run, sequential=True)


effect(
    EffectSpec(
        "make_transparent",
        TRANSPARENT.parse,
        TRANSPARENT.render,
        _make_transparent,
        "make the background transparent: the edges' colour where it touches the edges, or the co_ colour "
        "everywhere: tolerance 0-100 (default 10)",
        qualifiers=("co",),
    )
)
effect(
    EffectSpec(
        "replace_color",
        _parse_replace,
        Replace.render,
        _replace_color,
        "recolour the from colour (default the predominant one) and its shades to the to colour: "
        "e_replace_color:<to>[:<tolerance 0-100, a Lab radius, default 50>][:<from>] (colours as names, "
        "rgb:hex or bare hex)",
    )
)
effect(
    EffectSpec(
        "opacity_threshold",
        OPACITY_THRESHOLD.parse,
        OPACITY_THRESHOLD.render,
        _opacity_threshold,
        "alpha below level % becomes fully transparent, the rest fully opaque: level 1-100 (default 50)",
    )
)
