"""Effects on neighbourhoods of pixels: ``e_unsharp_mask[:<strength>]``, ``e_pixelate[:<square size>]``,
``e_pixelate_region[:<square size>]`` (with ``x_``, ``y_``, ``w_``, ``h_``) and ``e_vignette[:<strength>]``.

- e_unsharp_mask (1-2000, default 100, e_sharpen's range): the classic unsharp mask on each sRGB channel,
  ``in + amount x (in - gaussblur(in, 1 px))`` with amount = strength / 100. (e_sharpen is libvips'
  sharpen, which works on the lightness only and limits its halos; this one is the plain filter, as its
  name says: stronger, colour fringes and all.)
- e_pixelate (1-200 px, default 5, as e_pixelate_faces): the whole image in squares of that side, each the
  mean of the pixels it covers (alpha premultiplied, so transparent pixels' colours do not bleed).
- e_pixelate_region: the same, inside the box ``x_``, ``y_`` (its top-left corner; default 0), ``w_``,
  ``h_`` (default: to the right and bottom edges), each in pixels or a fraction of the image's side, as
  c_crop's; the squares start at the box's corner. (Cloudinary's g_faces and g_ocr_text regions are not
  supported: e_pixelate_faces does faces.)
- e_vignette (0-100, default 20): the image darkens towards black away from its centre, along ellipses
  of the image's proportions; the strength moves where the darkening starts inwards (0: nowhere, 100: from
  near the centre) and with it how dark the corners get.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pyvips

from grammar.errors import BadRequest
from transform import pixels
from transform.ops import args
from transform.ops.args import Dim
from transform.ops.effects import rgb_only
from transform.ops.registry import Action, Ctx, EffectSpec, effect, render_param

UNSHARP_MASK = args.Level("unsharp_mask", "unsharp_mask strength", 1, 2000, 100)
PIXELATE = args.Level("pixelate", "pixel square size", 1, 200, 5)
PIXELATE_REGION = args.Level("pixelate_region", "pixel square size", 1, 200, 5)
VIGNETTE = args.Level("vignette", "vignette strength", 0, 100, 20)
#: The unsharp mask's blur, in pixels (sigma): the fine detail it brings out.
UNSHARP_SIGMA = 1.0
#: Where the vignette starts darkening and over how long it reaches black, on the ellipse radius (1 on
#: the ellipse through the middles of the edges, sqrt(2) in the corners): from START_AT_0 at strength 0
#: (the corners: no change) to START_AT_100 at 100, by the square root of the strength, so that the
#: default (20) already has nearly black corners, as Cloudinary's examples do.
START_AT_0 = math.sqrt(2)
START_AT_100 = 0.1
FADE_LENGTH = 0.6


def _unsharp_mask(strength: int, prefix: str) -> Action:
    amount = strength / 100

    def sharpen(rgb: pyvips.Image) -> pyvips.Image:
        blurred = rgb.gaussblur(UNSHARP_SIGMA, precision="float")
        return (rgb + (rgb - blurred) * amount + 0.5).cast("uchar")  # cast clamps to 0..255

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        return rgb_only(image, sharpen)

    return Action("e_" + UNSHARP_MASK.render(strength), run)


def pixelate(image: pyvips.Image, size: int) -> pyvips.Image:
    """``image`` in ``size`` x ``size`` squares from its top-left corner; the last row and column of
    squares are cut to the image, each the mean of the pixels it covers."""
    size = max(1, min(size, image.width, image.height))
    if size == 1:
        return image
    width, height = image.width, image.height
    alpha = pixels.has_alpha(image)
    work = image.premultiply() if alpha else image.cast("float")
    # Padded with zeros to whole squares, and divided by the share of each square that is image: the cut
    # squares on the right and bottom edges are then the mean of their own pixels.
    across, down = math.ceil(width / size) * size, math.ceil(height / size) * size
    sums = work.embed(0, 0, across, down, extend="black").shrink(size, size)
    covered = (pyvips.Image.black(width, height) + 1).embed(0, 0, across, down, extend="black")
    blocks = (sums / covered.shrink(size, size)).zoom(size, size).crop(0, 0, width, height)
    if alpha:
        blocks = blocks.unpremultiply()
    return (blocks + 0.5).cast("uchar").copy(interpretation="srgb")


def _pixelate(size: int, prefix: str) -> Action:
    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        return pixelate(image, size)

    return Action("e_" + PIXELATE.render(size), run)


def _pixelate_region(arguments: tuple[int, Mapping[str, Any]], prefix: str) -> Action:
    size, qualifiers = arguments
    # The dpr_ its w_/h_ are drawn at, as a resize's (transform/ratio.py: the chain's ratio, or 1.0 where
    # the pixels were multiplied already); x_/y_ and the square size were multiplied by their own specs.
    ratio: float = qualifiers.get("dpr", 1.0)
    box: dict[str, Dim | None] = {}
    for key in ("x", "y", "w", "h"):
        value = qualifiers.get(key)
        if value is not None and not isinstance(value, Dim):  # a value only the image decides
            raise BadRequest(
                f"Invalid transformation parameter - {render_param(key, value)}: e_pixelate_region's "
                f"{key}_ must be a number"
            )
        if value is not None and key in ("w", "h") and not value.relative:
            value = Dim(round(value.value * ratio), False)
        box[key] = value
    # Alphabetical, as the plan writes components: dpr_, e_, h_, w_, x_, y_.
    parts = {
        **{k: render_param(k, v) for k, v in qualifiers.items()},
        "e": "e_" + PIXELATE_REGION.render(size),
    }
    canonical = ",".join(parts[k] for k in sorted(parts))

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        x, y, w, h = box["x"], box["y"], box["w"], box["h"]
        left = max(0, x.px(image.width) if x else 0)
        top = max(0, y.px(image.height) if y else 0)
        right = min(image.width, left + w.px(image.width) if w else image.width)
        bottom = min(image.height, top + h.px(image.height) if h else image.height)
        if right <= left or bottom <= top:
            return image  # the box lies outside the image: nothing of it to pixelate
        area = image.extract_area(left, top, right - left, bottom - top)
        return image.insert(pixelate(area, size), left, top)

    return Action(canonical, run)


def vignette_mask(width: int, height: int, strength: int) -> pyvips.Image:
    """A float image, 1 where the vignette leaves the light alone, down to 0 where it is black."""
    start = START_AT_0 + (START_AT_100 - START_AT_0) * math.sqrt(strength / 100)
    xyz = pyvips.Image.xyz(width, height)
    dx = (xyz[0] + 0.5 - width / 2) / (width / 2)
    dy = (xyz[1] + 0.5 - height / 2) / (height / 2)
    t = ((dx * dx + dy * dy) ** 0.5 - start) / FADE_LENGTH
    t = (t < 0).ifthenelse(0, (t > 1).ifthenelse(1, t))
    return 1 - t * t * (3 - 2 * t)  # smoothstep: no visible ring where the darkening starts


def _vignette(strength: int, prefix: str) -> Action:
    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        if strength == 0:
            return image
        light = vignette_mask(image.width, image.height, strength)
        return rgb_only(image, lambda rgb: (rgb * light + 0.5).cast("uchar"))

    return Action("e_" + VIGNETTE.render(strength), run)


effect(
    EffectSpec(
        "unsharp_mask",
        UNSHARP_MASK.parse,
        UNSHARP_MASK.render,
        _unsharp_mask,
        "the classic unsharp mask on each colour channel (1 px radius), amount strength/100: strength "
        "1-2000 (default 100)",
    )
)
effect(
    EffectSpec(
        "pixelate",
        PIXELATE.parse,
        PIXELATE.render,
        _pixelate,
        "pixelate the whole image: squares of 1-200 px (default 5), each its pixels' mean",
        dpr=PIXELATE.at_dpr,  # a square's side is a length on the image
    )
)
effect(
    EffectSpec(
        "pixelate_region",
        PIXELATE_REGION.parse,
        PIXELATE_REGION.render,
        _pixelate_region,
        "pixelate the box x_, y_ (default 0), w_, h_ (default: to the edges; pixels or fractions of the "
        "image): squares of 1-200 px (default 5)",
        qualifiers=("x", "y", "w", "h", "dpr"),
        dpr=PIXELATE_REGION.at_dpr,
    )
)
effect(
    EffectSpec(
        "vignette",
        VIGNETTE.parse,
        VIGNETTE.render,
        _vignette,
        "darken towards black away from the centre: strength 0-100 (default 20; higher starts nearer the "
        "centre)",
    )
)
