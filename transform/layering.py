"""A layer as one step: the steps between an ``l_``/``u_`` opener and its ``fl_layer_apply``, run on the
layer's own image (decoded, or drawn for ``l_text:``), then placed on the image the step receives.

This is imgproxy's ``watermarkPipeline``: the layer gets its own sub-pipeline of the same step functions.
The plan compiler (transform/plan.py) collects a layer's steps and hands them here when the layer closes;
the pixels of placing it (gravity, offsets, regions, compositing) are transform/ops/layers.py's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyvips

from grammar.errors import BadRequest, NotFound
from transform import dynamic, pixels
from transform.ops import Action, Ctx, focus, render_param
from transform.ops.args import Color
from transform.ops.blends import MODES, Blend, is_blend
from transform.ops.focus import PLACING_GRAVITIES, regions
from transform.ops.layers import Box, Placement, composite, finish_layer, on_region, place_layer
from transform.ops.resize import resize_from
from transform.ops.text import TextLayer, interpolate, interpolated, render_text
from transform.runner import block_source_key, run_steps

#: What a fl_layer_apply component may say: where the layer goes and how large it is there.
PLACEMENT_KEYS = frozenset({"fl", "g", "x", "y", "c", "w", "h", "ar", "dpr", "o"})
#: ... and how it is blended: its e_ must be a blend mode (transform/ops/blends.py).
APPLY_KEYS = PLACEMENT_KEYS | {"e"}


def placing_keys(params: Mapping[str, Any]) -> frozenset[str]:
    """The keys of a component that opens and applies a layer at once that place it: PLACEMENT_KEYS, and
    its e_ when that is a blend mode (``c_scale,e_cut_out,g_south_west,l_logo,w_200``); any other e_
    transforms the layer first (``l_logo,e_grayscale``)."""
    return APPLY_KEYS if is_blend(params.get("e")) else PLACEMENT_KEYS


def unclosed_openers(expanded: Sequence[Mapping[str, Any]]) -> set[int]:
    """Indices of the l_/u_ components that no later fl_layer_apply closes (matched innermost first,
    like brackets). Such a component is a whole layer by itself, as older SDKs and Cloudinary's training
    material write it: ``l_logo,g_north_east`` (or the SDK's ``g_north_east,l_logo``) places the logo at
    the top right; the component's c_/w_/h_ size the layer and its g_/x_/y_ place it."""
    open_: list[int] = []
    for index, params in enumerate(expanded):
        opens = "l" in params or "u" in params
        closes = "layer_apply" in params.get("fl", ())
        if opens and not closes:
            open_.append(index)
        elif closes and not opens and open_:
            open_.pop()
    return set(open_)


@dataclass(frozen=True)
class TextOptions:
    # Its repr is part of a text layer's key (layer_step's ``start``): renaming the class or a field
    # changes every such key.
    colour: Color | None = None
    background: Color | None = None
    wrap: int | None = None
    stroke: tuple[int, Color] | None = None


def text_options(params: Mapping[str, Any], layer: TextLayer) -> tuple[dict[str, Any], TextOptions]:
    """A text layer's own qualifiers, taken out of its opening component: ``co_`` is the text colour,
    ``b_`` its background, ``c_fit`` with a pixel ``w_`` (no ``h_``) a text box the lines wrap to,
    rather than a scaling of the drawn text, and with the ``stroke`` style ``bo_`` the stroke."""
    rest = dict(params)
    stroke = rest.pop("bo", None) if "stroke" in layer.styles else None
    background = rest.pop("b", None)
    if background is not None and not isinstance(background, Color):
        raise BadRequest(
            f"Invalid transformation parameter - {render_param('b', background)}: "
            "a text layer's background is a colour"
        )
    wrap = None
    width = rest.get("w")
    if rest.get("c") == "fit" and width is not None and not width.relative and "h" not in rest:
        # The box at the text's device pixel ratio, as its font size is (TextLayer.at_dpr).
        wrap = round(width.value * rest.pop("dpr", 1.0))
        del rest["c"], rest["w"]
    return rest, TextOptions(rest.pop("co", None), background, wrap, stroke)


def layer_step(
    opener: Mapping[str, Any],
    closer: Mapping[str, Any],
    steps: Sequence[Action],
    *,
    text: TextOptions | None,
    autorotate: bool,
    region_sized: bool,
    canonical: str,
    prefix: str,
) -> Action:
    """The layer ``opener`` opened (its ``l_``/``u_`` source; ``text``: a text layer's options), made by
    its own ``steps`` and placed as ``closer`` (the fl_layer_apply component's params) says. ``canonical``
    is the layer's components as their steps see them (at their dpr_), ``prefix`` the steps of the image
    it is placed on (what a face detection there is keyed by); ``autorotate`` False under the layer's
    a_ignore; ``region_sized`` when a component of the layer says fl_region_relative."""
    underlay = "u" in opener
    source: str | TextLayer = opener["u"] if underlay else opener["l"]
    placing = {k: v for k, v in closer.items() if k not in ("l", "u")}
    stray = sorted(set(placing) - APPLY_KEYS)
    if stray:
        raise BadRequest(
            f"Invalid transformation parameter - {render_param(stray[0], placing[stray[0]])}: "
            "not supported in a fl_layer_apply component (use g_, x_, y_, o_, c_, w_, h_, fl_, or a blend "
            "mode e_)"
        )
    blend = _blend(placing, underlay)
    gravity = placing.get("g", "center")
    region = gravity if gravity in PLACING_GRAVITIES else None
    if gravity not in pixels.COMPASS and region is None:
        raise BadRequest(
            f"Invalid transformation: g_{gravity} cannot place a layer; use a compass gravity, or g_face, "
            "g_faces, g_auto:face, g_auto:faces or g_auto:subject"
        )
    flags = placing.get("fl", ())
    if "relative" in flags and "region_relative" in flags:
        raise BadRequest(
            "Invalid transformation parameter - fl_region_relative: fl_relative and fl_region_relative "
            "cannot size one layer together"
        )
    if region is None and ("region_relative" in flags or region_sized):
        raise BadRequest(
            "Invalid transformation parameter - fl_region_relative: it needs a region to be relative to "
            "(g_face, g_faces, g_auto:face or g_auto:subject in the fl_layer_apply component)"
        )
    tiled, cutter = "tiled" in flags, "cutter" in flags
    _check_shapes(placing, underlay=underlay, tiled=tiled, cutter=cutter, blend=blend is not None)
    at = Placement(
        gravity="center" if region else gravity,
        x=placing.get("x"),
        y=placing.get("y"),
        sizing=resize_from(placing, placing=True),
        relative="relative" in flags,
        no_overflow="no_overflow" in flags,
        opacity=placing.get("o"),
        region_relative="region_relative" in flags,
        blend=blend,
        cutter=cutter,
        tiled=tiled,
    )
    steps = tuple(steps)
    per_region = region_sized  # the layer's own steps differ per face: run once per face
    # A layer sized to the face moves in fractions of the face too (g_face,y_-0.1: a tenth of its height up).
    region_offsets = at.region_relative or region_sized

    shown = interpolated(source) if isinstance(source, TextLayer) else frozenset()  # $(name) left to render

    def start(ctx: Ctx) -> tuple[pyvips.Image, str]:
        """The layer's image before its own steps, and the key of that image."""
        if isinstance(source, TextLayer):
            options = text or TextOptions()
            written = interpolate(source, dynamic.texts(ctx, shown, str(source))) if shown else source
            drawn = render_text(written, options.colour, options.background, options.wrap, ctx.limits,
                                options.stroke)  # fmt: skip
            return drawn, f"{written}|{options}"
        if ctx.load_layer is None:
            raise NotFound(f"Unknown or invalid referenced image {source} of type upload")
        found, key = ctx.load_layer(source)
        return ctx.decode(found, autorotate), block_source_key(key, autorotate)

    # Steps that use variables may use ones set outside the layer (from the base image or the asset):
    # what they make is keyed by those values too, not by the layer's own image alone.
    outer = any(name.startswith("$") for step in steps for name in step.reads)

    def content(ctx: Ctx, begun: tuple[pyvips.Image, str], base: tuple[int, int],
                box: tuple[int, int] | None) -> pyvips.Image:  # fmt: skip
        # A layer's image is a still (the first frame of an animated one), whatever it is placed on.
        key = f"{begun[1]}|{sorted(ctx.variables.items())}" if outer else begun[1]
        layer_ctx = replace(ctx, source_key=key, layer_base=base, layer_region=box, preview=None,
                            origin=dynamic.origin(begun[0], keep=True), animated=False)  # fmt: skip
        return run_steps(steps, layer_ctx, begun[0])

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        base = (image.width, image.height)
        if region is None:
            layer = content(ctx, start(ctx), base, None)
            return place_layer(image, layer, underlay=underlay, at=at, limits=ctx.limits)
        boxes = [
            Box(f.left * base[0], f.top * base[1], f.width * base[0], f.height * base[1])
            for f in regions(region, ctx, image, prefix)
        ]
        if not boxes:
            return image  # Cloudinary: no face (no special position) found, no layer placed
        begun = start(ctx)  # decoded (or drawn) once, however many faces
        shared = None if per_region else content(ctx, begun, base, None)
        placed = []
        for box in boxes:
            drawn = content(ctx, begun, base, box.size) if shared is None else shared
            drawn = finish_layer(drawn, at, box.size if at.region_relative else base, ctx.limits)
            placed.append((drawn, *on_region(drawn, box, at, base, region_offsets=region_offsets)))
        return composite(image, placed, underlay=underlay, no_overflow=at.no_overflow, limits=ctx.limits,
                         blend=at.blend, cutter=at.cutter)  # fmt: skip

    return Action(canonical, run,
                  segmentation=any(s.segmentation for s in steps) or focus.needs_mask(region),
                  faces=any(s.faces for s in steps) or focus.needs_faces(region),
                  still_only=f"a layer placed with g_{region}" if region else None,
                  reads=shown.union(*(s.reads for s in steps)))  # fmt: skip


def _blend(placing: Mapping[str, Any], underlay: bool) -> Blend | None:
    """The blend mode the fl_layer_apply component's e_ names (None: the layer goes over, or under, as it
    is). Only an overlay blends: an underlay is under the image, which covers it."""
    chosen = placing.get("e")
    if chosen is None:
        return None
    if not is_blend(chosen):
        raise BadRequest(
            f"Invalid transformation parameter - e_{chosen}: not a blend mode; a fl_layer_apply component's "
            f"e_ is one of {', '.join(f'e_{name}' for name in MODES)} (put other effects in a component "
            "of the layer's own, before fl_layer_apply)"
        )
    if underlay:
        raise BadRequest(
            f"Invalid transformation parameter - e_{chosen}: blend modes apply an overlay (l_), not an "
            "underlay (u_)"
        )
    blend: Blend = chosen.arguments
    return blend


def _check_shapes(
    placing: Mapping[str, Any], *, underlay: bool, tiled: bool, cutter: bool, blend: bool
) -> None:
    """fl_cutter and fl_tiled with what they cannot go with: a 400 naming the flag."""
    if cutter and (underlay or blend or tiled):
        other = "an underlay (u_)" if underlay else "fl_tiled" if tiled else f"e_{placing['e']}"
        raise BadRequest(
            f"Invalid transformation parameter - fl_cutter: it trims the image to an overlay's shape, and "
            f"cannot go with {other}"
        )
    placed = sorted(key for key in ("g", "x", "y") if key in placing)
    if tiled and placed:
        raise BadRequest(
            f"Invalid transformation parameter - fl_tiled: the tiles cover the whole image from its top-left "
            f"corner; {render_param(placed[0], placing[placed[0]])} cannot place them"
        )
