"""Layers: ``l_<id>`` (overlay) and ``u_<id>`` (underlay) open a block that ``fl_layer_apply`` closes;
the closing component places the layer with ``g_``, ``x_``, ``y_`` (and may size it with ``c_``/``w_``/``h_``,
relative to the base under ``fl_relative``). The canvas grows to hold the layer unless ``fl_no_overflow``.

A face or subject gravity in the closing component (``g_face``, ``g_faces``, ``g_auto:face``,
``g_auto:subject``) places the layer on a *region* instead: centred on the largest face, on each face (one
copy per face), or on the background-removal mask's object. ``fl_region_relative`` then makes the layer's
fractional w_/h_ (and x_/y_) fractions of that region's box, as Cloudinary's "sizing relative to the
detected region" does (``l_mask/c_scale,fl_region_relative,w_1.0/fl_layer_apply,g_faces``). No region
found: the layer is not placed at all, as Cloudinary documents for special positions."""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from grammar.errors import InvalidArgument
from transform import pixels
from transform.limits import Limits, check_output
from transform.ops import args
from transform.ops.args import Dim
from transform.ops.blends import SUBTRACTIVE, Blend, anti_removal, blend_layers, tile
from transform.ops.registry import ParamSpec, param
from transform.ops.resize import Resize
from transform.ops.style import set_opacity
from transform.ops.text import TextLayer, parse_text

_SOURCES = ("fetch", "video", "audio", "subtitles", "lut", "private", "authenticated")


def _layer_id(key: str, value: str) -> str | TextLayer:
    """``docs:road`` -> ``docs/road`` (a known image extension is dropped: layers are found by id);
    ``text:Arial_40:Hi`` -> a TextLayer (transform/ops/text.py)."""
    head = value.split(":")[0]
    if head == "text":
        return parse_text(key, value)
    if head in _SOURCES:
        raise InvalidArgument(
            key,
            value,
            f"{head}: layers are not supported; a layer must be an image public id "
            "with ':' for '/' (u_docs:road) or text:<font>_<size>:<text>",
        )
    return args.public_id(key, value, "layer public id")


def _render_layer(value: str | TextLayer) -> str:
    return str(value) if isinstance(value, TextLayer) else value.replace("/", ":")


def _layer_at_dpr(key: str, value: str | TextLayer, ratio: float) -> str | TextLayer:
    """Text is drawn larger at a device pixel ratio; an image layer keeps its size unless the layer's own
    w_/h_ (multiplied as any) size it."""
    return value.at_dpr(key, ratio) if isinstance(value, TextLayer) else value


param(
    ParamSpec(
        "l",
        "overlay",
        _layer_id,
        "open an overlay layer block with an image (l_docs:logo) or text (l_text:Arial_40_bold:Hello; "
        "co_ colours it, b_ puts a background behind it, c_fit,w_ wraps it; $(name) in the text is a "
        "variable's value)",
        "layer",
        _render_layer,
        _layer_at_dpr,
        variables="text",
    )
)
param(
    ParamSpec(
        "u",
        "underlay",
        _layer_id,
        "open an underlay layer block (placed under the image)",
        "layer",
        _render_layer,
        _layer_at_dpr,
        variables="text",
    )
)


@dataclass(frozen=True)
class Placement:
    gravity: str = "center"
    x: Dim | None = None
    y: Dim | None = None
    sizing: Resize | None = None
    relative: bool = False
    no_overflow: bool = False
    opacity: int | None = None
    #: fl_region_relative: fractions of the region (face, subject) the layer is placed on.
    region_relative: bool = False
    #: e_multiply, e_mask... in the fl_layer_apply component (transform/ops/blends.py); None: over.
    blend: Blend | None = None
    cutter: bool = False  # fl_cutter: the base trimmed to the layer's shape
    tiled: bool = False  # fl_tiled: the layer repeated over the whole base


@dataclass(frozen=True)
class Box:
    """A region of the base in pixels (a face's or the subject's box)."""

    left: float
    top: float
    width: float
    height: float

    @property
    def size(self) -> tuple[int, int]:
        return max(1, round(self.width)), max(1, round(self.height))


def finish_layer(
    layer: pyvips.Image, at: Placement, reference: tuple[int, int], limits: Limits
) -> pyvips.Image:
    """The closing component's own sizing and opacity; ``reference`` is what fl_relative or
    fl_region_relative fractions are of."""
    if at.sizing is not None:
        relative = at.relative or at.region_relative
        layer = at.sizing.apply(layer, limits, reference=reference if relative else None)
    if at.opacity is not None:
        layer = set_opacity(layer, at.opacity)
    if at.blend is not None and at.blend.level is not None:  # e_anti_removal
        layer = anti_removal(layer, at.blend.level, at.blend.scale)
    return layer


def place_layer(
    base: pyvips.Image, layer: pyvips.Image, *, underlay: bool, at: Placement, limits: Limits
) -> pyvips.Image:
    """Composite ``layer`` over (or under) ``base`` at a compass gravity; fractions of x/y are of the
    base's size."""
    layer = finish_layer(layer, at, (base.width, base.height), limits)
    if at.tiled:
        # From the top-left corner over the whole base: nothing beyond it (the plan refuses g_/x_/y_).
        layer, left, top = tile(layer, (base.width, base.height)), 0, 0
    else:
        dx = at.x.px(base.width) if at.x else 0
        dy = at.y.px(base.height) if at.y else 0
        left, top = pixels.place((base.width, base.height), (layer.width, layer.height), at.gravity, dx, dy)
    return composite(base, [(layer, left, top)], underlay=underlay, no_overflow=at.no_overflow, limits=limits,
                     blend=at.blend, cutter=at.cutter)  # fmt: skip


def on_region(
    layer: pyvips.Image, box: Box, at: Placement, base: tuple[int, int], *, region_offsets: bool
) -> tuple[int, int]:
    """Top-left of ``layer`` centred on ``box`` and moved by x_/y_ (+x right, +y down, as from the centre):
    fractions of the box when the layer is sized with fl_region_relative (``region_offsets``), else of
    the base."""
    reference = box.size if region_offsets else base
    dx = at.x.px(reference[0]) if at.x else 0
    dy = at.y.px(reference[1]) if at.y else 0
    left = round(box.left + box.width / 2 - layer.width / 2) + dx
    top = round(box.top + box.height / 2 - layer.height / 2) + dy
    return left, top


def composite(
    base: pyvips.Image,
    layers: list[tuple[pyvips.Image, int, int]],
    *,
    underlay: bool,
    no_overflow: bool,
    limits: Limits,
    blend: Blend | None = None,
    cutter: bool = False,
) -> pyvips.Image:
    """``layers`` (image, left, top in base pixels) over (or under) ``base`` in one composite, on a canvas
    grown to hold them unless ``no_overflow`` (or a ``blend`` that only takes away, or ``cutter``)."""
    if no_overflow or cutter or (blend is not None and blend.name in SUBTRACTIVE):
        x0, y0, width, height = 0, 0, base.width, base.height
        # A layer wholly outside the base changes nothing wherever it is: keep libvips' offsets small.
        layers = [
            (layer, min(max(left, -layer.width), base.width), min(max(top, -layer.height), base.height))
            for layer, left, top in layers
        ]
    else:
        x0 = min(0, *(left for _, left, _ in layers))
        y0 = min(0, *(top for _, _, top in layers))
        width = max(base.width, *(left + layer.width for layer, left, _ in layers)) - x0
        height = max(base.height, *(top + layer.height for layer, _, top in layers)) - y0
        check_output(width, height, limits, "Canvas holding the layer")
    if cutter or (blend is not None and blend.mode != "over"):
        mode = blend.mode if blend is not None else "over"
        return blend_layers(base, layers, (x0, y0, width, height), mode=mode, cutter=cutter)
    canvas = pixels.solid(width, height, [0, 0, 0, 0])
    images = [pixels.with_alpha(base)] + [pixels.with_alpha(layer) for layer, _, _ in layers]
    xs = [-x0] + [left - x0 for _, left, _ in layers]
    ys = [-y0] + [top - y0 for _, _, top in layers]
    if underlay:
        images, xs, ys = images[::-1], xs[::-1], ys[::-1]
    out = canvas.composite(images, "over", x=xs, y=ys)
    return out.cast("uchar").copy(interpretation="srgb")
