"""Layers: ``l_<id>`` (overlay) and ``u_<id>`` (underlay) open a block that ``fl_layer_apply`` closes;
the closing component places the layer with ``g_``, ``x_``, ``y_`` (and may size it with ``c_``/``w_``/``h_``,
relative to the base under ``fl_relative``). The canvas grows to hold the layer unless ``fl_no_overflow``."""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from grammar import layer_public_id
from grammar.errors import BadRequest, InvalidArgument
from grammar.image_formats import EXTENSIONS
from transform import pixels
from transform.limits import Limits, check_output
from transform.ops.args import Dim
from transform.ops.registry import ParamSpec, param
from transform.ops.resize import Resize
from transform.ops.style import set_opacity
from transform.ops.text import TextLayer, parse_text

_SOURCES = ("fetch", "video", "audio", "subtitles", "lut", "private", "authenticated")
_EXTENSIONS = tuple(f".{ext}" for ext in EXTENSIONS)


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
    lowered = value.lower()
    for ext in _EXTENSIONS:
        if lowered.endswith(ext) and len(value) > len(ext):
            value = value[: -len(ext)]
            break
    try:
        return layer_public_id(value)
    except BadRequest as exc:
        raise InvalidArgument(key, value, exc.public) from exc


def _render_layer(value: str | TextLayer) -> str:
    return str(value) if isinstance(value, TextLayer) else value.replace("/", ":")


param(
    ParamSpec(
        "l",
        "overlay",
        _layer_id,
        "open an overlay layer block with an image (l_docs:logo) or text (l_text:Arial_40_bold:Hello; "
        "co_ colours it, b_ puts a background behind it, c_fit,w_ wraps it)",
        "layer",
        _render_layer,
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


def place_layer(
    base: pyvips.Image, layer: pyvips.Image, *, underlay: bool, at: Placement, limits: Limits
) -> pyvips.Image:
    """Composite ``layer`` over (or under) ``base``; fractions of x/y are of the base's size."""
    if at.sizing is not None:
        reference = (base.width, base.height) if at.relative else None
        layer = at.sizing.apply(layer, limits, reference=reference)
    if at.opacity is not None:
        layer = set_opacity(layer, at.opacity)
    dx = at.x.px(base.width) if at.x else 0
    dy = at.y.px(base.height) if at.y else 0
    left, top = pixels.place((base.width, base.height), (layer.width, layer.height), at.gravity, dx, dy)
    if at.no_overflow:
        x0, y0, width, height = 0, 0, base.width, base.height
        # A layer wholly outside the base changes nothing wherever it is: keep libvips' offsets small.
        left = min(max(left, -layer.width), base.width)
        top = min(max(top, -layer.height), base.height)
    else:
        x0, y0 = min(0, left), min(0, top)
        width = max(base.width, left + layer.width) - x0
        height = max(base.height, top + layer.height) - y0
        check_output(width, height, limits, "Canvas holding the layer")
    canvas = pixels.solid(width, height, [0, 0, 0, 0])
    images = [pixels.with_alpha(base), pixels.with_alpha(layer)]
    xs, ys = [-x0, left - x0], [-y0, top - y0]
    if underlay:
        images, xs, ys = images[::-1], xs[::-1], ys[::-1]
    out = canvas.composite(images, "over", x=xs, y=ys)
    return out.cast("uchar").copy(interpretation="srgb")
