"""How a layer is blended with the image under it: ``e_multiply``, ``e_screen``, ``e_overlay``, ``e_mask``,
``e_cut_out`` and ``e_anti_removal[:<level>]`` in a ``fl_layer_apply`` component (or in the one component
that opens and applies a layer, the older form ``c_scale,e_cut_out,g_south_west,l_logo,w_200``), and the
layer flags ``fl_cutter`` and ``fl_tiled``.

They are effects by name (``e_``) but qualify the placing of a layer, as Cloudinary's reference lists them:
anywhere else they have no image to blend with, and are a 400 naming them. The pixels are libvips' blend
modes (composite2): multiply, screen and overlay are the PDF blend modes of the same names; ``e_mask``
keeps the base only where the layer is opaque (dest-in: the layer's alpha becomes the result's, the base
transparent where there is no layer); ``e_cut_out`` removes the layer's opaque parts from the base
(dest-out); ``fl_cutter`` is dest-in too, trimmed to the layer's box (the base cut to the layer's shape,
as a cookie-cutter: Cloudinary's "trims pixels on the base image according to the transparency levels of
an overlay"); ``fl_tiled`` repeats the layer over the whole base from its top-left corner."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pyvips

from grammar.errors import BadRequest, InvalidArgument
from transform import pixels
from transform.ops import args
from transform.ops.registry import Action, EffectSpec, effect

#: The blend e_ names -> libvips' composite mode for them. anti_removal is an ordinary "over" of a layer
#: made hard to remove first (``anti_removal``).
MODES = {
    "multiply": "multiply",
    "screen": "screen",
    "overlay": "overlay",
    "mask": "dest-in",
    "cut_out": "dest-out",
    "anti_removal": "over",
}
#: Modes that can only take away from the base: a layer beyond its edges has nothing there to cut, so the
#: canvas never grows for them (as if fl_no_overflow).
SUBTRACTIVE = frozenset({"mask", "cut_out"})
#: e_anti_removal's level: the Kotlin SDK's range (cldRanged(0, 100)); 50 when none is given.
DEFAULT_LEVEL = 50
#: The seed of anti_removal's noise: fixed, so that one URL always gives the same bytes (the cache, ETags).
_SEED = 20261207


@dataclass(frozen=True)
class Blend:
    name: str
    level: int | None = None  # anti_removal's
    #: The device pixel ratio anti_removal's lengths (its warp, its grain) are drawn at: dpr_2.0's layer
    #: is twice dpr_1.0's in pixels, and is warped and grained as a 2x enlargement of it. Not written in
    #: the text: a dpr_ other than 1 is always in the derivative's text (transform/plan.py).
    scale: float = 1.0

    def __str__(self) -> str:
        if self.level is None or self.level == DEFAULT_LEVEL:
            return self.name
        return f"{self.name}:{self.level}"

    @property
    def mode(self) -> str:
        return MODES[self.name]


def is_blend(chosen: object) -> bool:
    """Whether an e_ value (transform.ops.effects.Effect) is one of the blend modes of this module."""
    return isinstance(getattr(chosen, "arguments", None), Blend)


def _parser(name: str) -> object:
    def parse(value: str, rest: str) -> Blend:
        if name == "anti_removal":
            if rest == "":
                return Blend(name, DEFAULT_LEVEL)
            return Blend(name, args.int_in("e", rest, "anti_removal level", 0, 100, shown=value))
        if rest:
            raise InvalidArgument("e", value, f"e_{name} takes no arguments")
        return Blend(name)

    return parse


def _outside_a_layer(blend: Blend, prefix: str) -> Action:
    """Reached only where the e_ is an ordinary step (not a fl_layer_apply component): refused."""
    raise BadRequest(
        f"Invalid transformation parameter - e_{blend}: e_{blend.name} blends a layer with the image under "
        f"it; it goes in the layer's fl_layer_apply component (l_docs:logo/fl_layer_apply,e_{blend.name})"
    )


def _anti_removal_at_dpr(blend: Blend, ratio: float) -> Blend:
    return replace(blend, scale=blend.scale * ratio)


_HELP = {
    "multiply": "blend mode of a layer (in its fl_layer_apply component): the layer's colours multiply the "
    "image's (darkens; white leaves it as it is)",
    "screen": "blend mode of a layer (in fl_layer_apply): the inverse of multiplying the inverses "
    "(lightens; black leaves the image as it is)",
    "overlay": "blend mode of a layer (in fl_layer_apply): multiply where the image is dark, screen where it "
    "is light (contrast from the layer)",
    "mask": "blend mode of a layer (in fl_layer_apply): the image is kept only where the layer is opaque, "
    "transparent elsewhere (the layer's alpha becomes the result's)",
    "cut_out": "blend mode of a layer (in fl_layer_apply): the layer's opaque parts are cut out of the "
    "image, leaving transparency",
    "anti_removal": "the layer (in fl_layer_apply) is warped and grained so that it is hard to remove: level "
    "0-100 (default 50; 0: placed as it is)",
}
for _name in MODES:
    effect(EffectSpec(_name, _parser(_name), str, _outside_a_layer, _HELP[_name],  # type: ignore[arg-type]
                      dpr=_anti_removal_at_dpr if _name == "anti_removal" else None))


def anti_removal(layer: pyvips.Image, level: int, scale: float = 1.0) -> pyvips.Image:
    """The layer warped by a smooth random displacement (up to level/100 x 3 px, a cell every 8 px) and
    grained (Gaussian noise, sigma level/100 x 24 levels, on its colour only, a grain a pixel): a removal
    that subtracts a known logo leaves its outline and grain behind, while the mark stays as legible.
    Seeded: the same URL gives the same bytes. ``scale`` (the layer's device pixel ratio) multiplies the
    pixel lengths, the displacement, its cell and the grain's size, not the grain's strength (levels): at
    dpr_2.0 the same noise is drawn enlarged, as a 2x of dpr_1.0's."""
    if level == 0:
        return layer
    layer = pixels.with_alpha(layer)
    width, height = layer.width, layer.height
    cell = 8 * scale
    cells = (math.ceil(width / cell) + 1, math.ceil(height / cell) + 1)
    # Two bands of noise in -1..1 on the coarse grid, enlarged: a displacement that varies smoothly.
    coarse = [pyvips.Image.gaussnoise(*cells, sigma=0.5, mean=0.0, seed=_SEED + band) for band in range(2)]
    field = _covering(coarse[0].bandjoin(coarse[1]).resize(cell, kernel="linear"), width, height)
    amplitude = level / 100 * 3.0 * scale
    index = pyvips.Image.xyz(width, height) + field * amplitude
    warped = layer.premultiply().mapim(index, interpolate=pyvips.Interpolate.new("bilinear"),
                                       premultiplied=True, extend="black").unpremultiply()  # fmt: skip
    sigma = level / 100 * 24
    if scale == 1.0:
        grain = pyvips.Image.gaussnoise(width, height, sigma=sigma, mean=0.0, seed=_SEED + 2)
    else:  # the grain of the layer at dpr_1.0, each of its pixels drawn over ``scale`` x ``scale`` pixels
        small = (math.ceil(width / scale), math.ceil(height / scale))
        grain = pyvips.Image.gaussnoise(*small, sigma=sigma, mean=0.0, seed=_SEED + 2)
        grain = _covering(grain.resize(scale, kernel="nearest"), width, height)
    colour = warped.extract_band(0, n=3) + grain
    out = colour.bandjoin(warped.extract_band(3)).cast("uchar")
    return out.copy(interpretation="srgb")


def _covering(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """``image`` cut (or, where an enlargement's rounding fell a pixel short, extended) to the size."""
    if image.width < width or image.height < height:
        image = image.embed(0, 0, max(width, image.width), max(height, image.height), extend="copy")
    return image.crop(0, 0, width, height)


def tile(layer: pyvips.Image, size: tuple[int, int]) -> pyvips.Image:
    """The layer repeated from the top-left corner over a ``size`` canvas (fl_tiled)."""
    across, down = math.ceil(size[0] / layer.width), math.ceil(size[1] / layer.height)
    return layer.replicate(across, down).crop(0, 0, *size)


def blend_layers(
    base: pyvips.Image,
    layers: list[tuple[pyvips.Image, int, int]],
    canvas: tuple[int, int, int, int],
    *,
    mode: str,
    cutter: bool,
) -> pyvips.Image:
    """``layers`` (image, left, top in base pixels) blended with ``base`` by ``mode`` on ``canvas`` (x0, y0,
    width, height in base pixels). The layers are first put together on one transparent canvas the whole
    size: libvips skips an overlay in the tiles it does not touch, which for dest-in would keep the base
    there while the tiles it partly covers lose it."""
    x0, y0, width, height = canvas
    empty = pixels.solid(width, height, [0, 0, 0, 0])
    drawn = empty.composite([pixels.with_alpha(layer) for layer, _, _ in layers], "over",
                            x=[left - x0 for _, left, _ in layers],
                            y=[top - y0 for _, _, top in layers])  # fmt: skip
    under = empty.composite2(pixels.with_alpha(base), "over", x=-x0, y=-y0)
    out = under.composite2(drawn, "dest-in" if cutter else mode)
    if cutter:
        # Trimmed to the layers' box (within the canvas): the base in the layer's shape, nothing around.
        left = max(0, min(x - x0 for _, x, _ in layers))
        top = max(0, min(y - y0 for _, _, y in layers))
        right = min(width, max(x - x0 + layer.width for layer, x, _ in layers))
        bottom = min(height, max(y - y0 + layer.height for layer, _, y in layers))
        if right <= left or bottom <= top:
            raise BadRequest(
                "Invalid transformation parameter - fl_cutter: the layer does not overlap the image, so "
                "nothing of it would be left"
            )
        out = out.crop(left, top, right - left, bottom - top)
    return out.cast("uchar").copy(interpretation="srgb")
