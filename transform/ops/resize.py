"""Resizing and cropping: ``c_`` with its qualifiers ``w_``, ``h_``, ``ar_``, ``dpr_``, ``g_``, ``x_``, ``y_``
(and ``b_`` as the pad colour)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pyvips

from grammar.errors import BadRequest, InvalidArgument
from transform import pixels
from transform.faces import Face
from transform.limits import Limits, check_output, check_sides
from transform.ops import args, autopad, focus
from transform.ops.args import Color, Dim
from transform.ops.autopad import AutoBackground, BlurredBackground, Gradient
from transform.ops.registry import (
    CROP_MODES,
    Action,
    Ctx,
    ParamSpec,
    builder,
    effect_claims,
    param,
    render_param,
)

#: a_auto_right / a_auto_left (https://cloudinary.com/documentation/transformation_reference#a_angle;
#: its SDKs: "Rotate image 90 degrees clockwise [counterclockwise] only if the requested aspect ratio does
#: not match the image's aspect ratio"): qualifiers of the resize, parsed with a_ (transform/ops/style.py),
#: which turn the image before sizing it.
AUTO_TURNS = ("auto_right", "auto_left")

CROP_MODES.update(
    scale="resize to exactly w x h (one given: keep aspect ratio)",
    fit="largest size that fits inside w x h, aspect ratio kept",
    limit="like fit, but only ever scales down",
    mfit="like fit, but only ever scales up",
    fill="cover w x h, then crop the excess at the gravity (g_auto: most interesting region)",
    lfill="like fill, but never scales up",
    pad="fit inside w x h, then pad to exactly w x h with b_ (default transparent or white); "
    "b_ also fills transparent areas",
    lpad="like pad, but never scales up",
    mpad="pad to w x h without scaling, when the image is smaller than that",
    crop="cut a w x h region out without scaling, at the gravity or at x,y (g_custom alone: the custom "
    "region)",
    thumb="exactly w x h: with a face or subject gravity, the region around it (the face about half the "
    "height; z_ zooms) scaled to w x h; with no face found, or another gravity, like fill",
    fill_pad="with g_auto only: exactly w x h, filled where the interesting content fits the crop, else "
    "scaled until it does and padded with b_ (b_auto: a colour from the image)",
    auto="exactly w x h: the region around the subject (g_auto, the default: the background-removal "
    "mask's object, 423 while it is made) or the faces (g_auto:face), at least w x h of the image where it "
    "has them, scaled to w x h; z_ zooms",
)
#: An operation on the image before a pad is laid around it (Resize.before_pad).
Before = Callable[[pyvips.Image], pyvips.Image]
_PAD = ("pad", "lpad", "mpad")
_PADDED = (*_PAD, "fill_pad")  # modes whose b_ is the pad colour
_GRAVITY_MODES = ("fill", "lfill", "pad", "lpad", "mpad", "crop", "thumb", "fill_pad", "auto")
_AUTO_MODES = ("fill", "lfill", "crop", "thumb", "fill_pad", "auto")
_CONTENT_MODES = ("fill", "lfill", "crop", "thumb", "auto")  # those a face or subject gravity may steer
_ZOOM_MODES = ("thumb", "crop", "auto")
GRAVITIES = (*pixels.COMPASS, "auto", *focus.CONTENT_GRAVITIES)
_UNSUPPORTED_GRAVITY = (
    "custom_no_override", "liquid", "ocr_text", "adv_face", "adv_faces", "adv_eyes", "body", "no_faces"
)  # fmt: skip


@dataclass(frozen=True)
class Ratio:
    value: float
    text: str

    def __str__(self) -> str:
        return self.text


def _ratio(key: str, value: str) -> Ratio:
    number = args.ratio(key, value, "aspect ratio")
    if ":" in value:
        left, right = value.split(":")
        return Ratio(
            number,
            f"{args.fmt_float(float(left)).removesuffix('.0')}:"
            f"{args.fmt_float(float(right)).removesuffix('.0')}",
        )
    return Ratio(number, args.fmt_float(number))


def _dpr(key: str, value: str) -> float:
    if value == "auto":
        raise InvalidArgument(
            key,
            value,
            # Resolved from Client Hints before compiling (transform/hints.py): this one is in a named
            # transformation, where Cloudinary does not resolve it either.
            "dpr_auto works only in the URL's own components, not in a named transformation; give a "
            "number such as dpr_2.0",
        )
    return args.number(key, value, "device pixel ratio", low=0.1, high=10.0)


def _gravity(key: str, value: str) -> str:
    if value.split(":")[0] in _UNSUPPORTED_GRAVITY:
        raise InvalidArgument(
            key,
            value,
            f"gravity {value} is not supported (text, eye and body detection are not); expected one of "
            f"{', '.join(GRAVITIES)}",
        )
    if value.startswith("custom:") and value not in GRAVITIES:
        raise InvalidArgument(key, value, "g_custom takes face or faces as its fallback (g_custom:face)")
    if value.startswith("auto:") and value not in GRAVITIES:
        raise InvalidArgument(
            key,
            value,
            "g_auto takes face, faces, subject or object (object classes such as g_auto:dog are not "
            "supported)",
        )
    return args.enum_of(*GRAVITIES)(key, value, "gravity")


param(
    ParamSpec(
        "c",
        "crop mode",
        lambda k, v: args.enum_of(*CROP_MODES)(k, v, "crop mode"),
        "crop/resize mode: " + ", ".join(CROP_MODES),
        "resize",
    )
)
param(
    ParamSpec(
        "w",
        "width",
        lambda k, v: args.dimension(k, v, "width"),
        "width in pixels, or a fraction of the current width (w_0.5); w_auto[:<step>[:<fallback>]]: from "
        "the browser's Client Hints, rounded up to the step (100), else the fallback (see Responsive sizes)",
        "resize",
        variables="integer",
    )
)
param(
    ParamSpec(
        "h",
        "height",
        lambda k, v: args.dimension(k, v, "height"),
        "height in pixels, or a fraction of the current height (h_0.5)",
        "resize",
        variables="integer",
    )
)
param(
    ParamSpec(
        "ar", "aspect ratio", _ratio, "aspect ratio for c_ (ar_16:9 or ar_1.5)", "resize", variables="decimal"
    )
)
param(
    ParamSpec(
        "dpr",
        "device pixel ratio",
        _dpr,
        "device pixel ratio (dpr_2.0): multiplies the component's lengths in pixels (w_, h_, x_, y_, r_, "
        "bo_, text sizes, blur strengths...); alone in a component, those of the whole chain measured on an "
        "image at the ratio (not on the original before the chain is sized, nor fractions of an image at "
        "the ratio); dpr_auto: the browser's Client Hint rounded up to a whole number, 1.0 without one",
        "resize",
        args.fmt_float,
    )
)
param(
    ParamSpec(
        "g",
        "gravity",
        _gravity,
        "where to crop, pad or place a layer: compass point, auto, the faces or the subject (a layer on "
        "g_faces gets one copy per face), or the asset's custom coordinates (custom, custom:face, "
        "custom:faces: crops only)",
        "resize",
    )
)
param(
    ParamSpec(
        "z",
        "zoom",
        lambda k, v: args.number(k, v, "zoom", low=0.1, high=10.0),
        "zoom of c_thumb, c_crop (with ar_ or one side) and c_auto around the face or subject: above 1.0 "
        "closer, below 1.0 more of the surroundings",
        "resize",
        args.fmt_float,
        variables="decimal",
    )
)
param(
    ParamSpec(
        "x",
        "x offset",
        lambda k, v: args.offset(k, v, "x"),
        "horizontal offset in pixels or a fraction, for c_crop, fl_layer_apply, e_shadow and e_gradient_fade",
        "resize",
        dpr=args.offset_at_dpr,
        variables="integer",
    )
)
param(
    ParamSpec(
        "y",
        "y offset",
        lambda k, v: args.offset(k, v, "y"),
        "vertical offset in pixels or a fraction, for c_crop, fl_layer_apply, e_shadow and e_gradient_fade",
        "resize",
        dpr=args.offset_at_dpr,
        variables="integer",
    )
)


@dataclass(frozen=True)
class Resize:
    mode: str
    w: Dim | None = None
    h: Dim | None = None
    ar: Ratio | None = None
    dpr: float = 1.0
    gravity: str | None = None
    x: Dim | None = None
    y: Dim | None = None
    #: b_: a colour, b_auto (measured on the image padded), b_blurred (the image padded, blurred), or what
    #: b_auto measured on an animation's first frame (a colour or a gradient), given to every frame.
    background: Color | AutoBackground | BlurredBackground | Gradient | None = None
    zoom: float | None = None
    #: The box a face or subject gravity found (fractions of the image) and how much room a region
    #: around it gets (focus.FACE_CONTEXT, SUBJECT_CONTEXT), set by ``apply``.
    focus: Face | None = None
    spread: float = 1.0
    #: c_crop with no w_, h_ or ar_ on a custom region: that region's own shape (exactly the region).
    region_shape: bool = False
    #: What the component's effect does to the image before the pad (c_pad, c_lpad, c_mpad) is laid
    #: around it (EffectSpec.before_pad: e_gradient_fade:symmetric_pad fades the image into the pad).
    before_pad: Before | None = field(default=None, compare=False)

    def apply(
        self,
        image: pyvips.Image,
        limits: Limits,
        reference: tuple[int, int] | None = None,
        found: Face | None = None,
    ) -> pyvips.Image:
        """``reference``: what fractions are relative to (the image itself unless a layer says otherwise);
        ``found``: the face or subject box a content gravity found in ``image`` (None: none was).
        Sizes are checked against ``limits`` before libvips is asked for them."""
        iw, ih = image.width, image.height
        width, height = self.box(iw, ih, reference or (iw, ih), outside=reference is not None)
        check_sides(width, height)  # the box itself may stay a description (c_limit, c_mpad, c_crop)
        spec = self
        if self.gravity in focus.CONTENT_GRAVITIES:
            gravity = focus.FOCUS if found is not None else focus.fallback(self.gravity)
            spec = replace(self, gravity=gravity, focus=found, spread=focus.context(self.gravity),
                           region_shape=self.gravity in focus.CUSTOM_GRAVITIES)  # fmt: skip
        run = _MODES[spec.mode]
        return run(spec, image, width, height, limits)

    @property
    def content(self) -> bool:
        """Whether the crop centres on faces or the subject (found at render time)."""
        return self.gravity in focus.CONTENT_GRAVITIES

    def box(self, iw: int, ih: int, reference: tuple[int, int], *, outside: bool = False) -> tuple[int, int]:
        """The target box in pixels; a missing side follows ar_, else the image's own aspect ratio
        (or, for c_crop, the image's own side). ``outside``: ``reference`` is another image's size (the
        base of a fl_relative layer, a face's box): its fractions are not multiplied by dpr_, that image
        being at its own ratio already (transform/ratio.py)."""
        w = self._px(self.w, reference[0], outside) if self.w else None
        h = self._px(self.h, reference[1], outside) if self.h else None
        if self.ar and w is None and h is None:
            r = self.ar.value
            if self.mode == "scale":
                w, h = iw, iw / r
            elif self.mode in _PAD:
                w, h = max(iw, ih * r), max(ih, iw / r)
            else:
                w, h = min(iw, ih * r), min(ih, iw / r)
        elif self.ar:
            w, h = (w, w / self.ar.value) if w is not None else (h * self.ar.value, h)  # type: ignore[operator]
        elif self.mode == "crop":
            w, h = w or iw, h or ih
        elif w is None:
            w = h * iw / ih  # type: ignore[operator]
        elif h is None:
            h = w * ih / iw
        return max(1, round(w)), max(1, round(h))  # type: ignore[arg-type]

    def _px(self, side: Dim, reference: int, outside: bool) -> float:
        return side.px(reference) * (1.0 if outside and side.relative else self.dpr)

    def scaled_size(self, width: int, height: int) -> tuple[int, int] | None:
        if self.mode not in ("scale", "fit", "limit", "mfit"):
            return None
        return _fit_size(self.mode, width, height, *self.box(width, height, (width, height)))

    def offsets(self, outer: tuple[int, int]) -> tuple[int, int]:
        return (self.x.px(outer[0]) if self.x else 0, self.y.px(outer[1]) if self.y else 0)


def _fit_size(mode: str, iw: int, ih: int, width: int, height: int) -> tuple[int, int]:
    if mode == "scale":
        return width, height
    fitted = min(width / iw, height / ih)
    scale = min(fitted, 1.0) if mode == "limit" else max(fitted, 1.0) if mode == "mfit" else fitted
    w, h = max(1, round(iw * scale)), max(1, round(ih * scale))
    if scale == fitted:
        # Rounded from the scale, the side of the box the image fits can come out a pixel short of it: a
        # box from one side has the other rounded (c_fit,w_645 of a 640x427 image: 645x430), and 430/427
        # gives 644.5, which rounds to 644. That side is the box's, as c_scale,w_645 makes it.
        if h == height and w == width - 1:
            w = width
        elif w == width and h == height - 1:
            h = height
    return w, h


def _fit(spec: Resize, image: pyvips.Image, width: int, height: int, limits: Limits) -> pyvips.Image:
    size = _fit_size(spec.mode, image.width, image.height, width, height)
    check_output(*size, limits)
    return pixels.scale_to(image, *size)


def _fill(spec: Resize, image: pyvips.Image, width: int, height: int, limits: Limits) -> pyvips.Image:
    scale = max(width / image.width, height / image.height)
    if spec.mode == "lfill":
        scale = min(scale, 1.0)
    scaled = round(image.width * scale), round(image.height * scale)
    if spec.gravity == "auto":
        check_output(*scaled, limits, "Image to smart-crop")  # smartcrop reads all of it
    else:
        check_sides(*scaled)  # only the part cut out is ever computed
        check_output(min(width, scaled[0]), min(height, scaled[1]), limits)
    image = pixels.scale_to(image, *scaled)
    width, height = min(width, image.width), min(height, image.height)
    return _cut(image, width, height, spec.gravity or "center", (0, 0), spec.focus)


def _cut(
    image: pyvips.Image,
    width: int,
    height: int,
    gravity: str,
    delta: tuple[int, int],
    found: Face | None = None,
) -> pyvips.Image:
    if (width, height) == (image.width, image.height):
        return image
    if gravity == focus.FOCUS and found is not None:
        region = focus.window((image.width, image.height), found, width, height, delta)
        return image.extract_area(region.left, region.top, region.width, region.height)
    if gravity == "auto":
        return image.smartcrop(width, height, interesting="attention")
    left, top = pixels.place((image.width, image.height), (width, height), gravity, *delta)
    left = min(max(left, 0), image.width - width)
    top = min(max(top, 0), image.height - height)
    return image.extract_area(left, top, width, height)


def _crop(spec: Resize, image: pyvips.Image, width: int, height: int, limits: Limits) -> pyvips.Image:
    if spec.focus is not None and spec.w is None and spec.h is None:
        # c_crop around a face with only ar_: the thumbnail's region (z_ zooms), not scaled; around a
        # custom region with no ar_ either, that region itself (Cloudinary's c_crop,g_custom).
        aspect = spec.ar.value if spec.ar else image.width / image.height
        if spec.region_shape and not spec.ar:
            aspect = (spec.focus.width * image.width) / max(spec.focus.height * image.height, 1e-9)
        region = _region(spec, image, aspect)
        return image.extract_area(region.left, region.top, region.width, region.height)
    width, height = min(width, image.width), min(height, image.height)
    dx, dy = spec.offsets((image.width, image.height))
    if spec.gravity is None and (spec.x or spec.y):
        left = min(max(dx, 0), image.width - width)
        top = min(max(dy, 0), image.height - height)
        return image.extract_area(left, top, width, height)
    return _cut(image, width, height, spec.gravity or "center", (dx, dy), spec.focus)


def _region(
    spec: Resize, image: pyvips.Image, aspect: float, at_least: tuple[float, float] = (0, 0)
) -> focus.Region:
    assert spec.focus is not None
    return focus.around((image.width, image.height), spec.focus, aspect, spread=spec.spread,
                        zoom=spec.zoom or 1.0, at_least=at_least)  # fmt: skip


def _thumb(spec: Resize, image: pyvips.Image, width: int, height: int, limits: Limits) -> pyvips.Image:
    """c_thumb: around the face or subject, scaled to exactly w x h; otherwise a fill (z_ above 1 zooms
    into the fill's window; below 1 there is nothing beyond the largest w:h window to show)."""
    check_output(width, height, limits)
    if spec.focus is not None:
        region = _region(spec, image, width / height)
    elif (spec.zoom or 1.0) <= 1.0:
        return _fill(spec, image, width, height, limits)
    else:
        # No focus: the largest w:h window at the gravity, made smaller (closer) by z_ above 1.
        scale = min(image.width / width, image.height / height) / (spec.zoom or 1.0)
        side = (max(1, min(image.width, round(width * scale))),
                max(1, min(image.height, round(height * scale))))  # fmt: skip
        if spec.gravity == "auto":
            check_output(image.width, image.height, limits, "Image to smart-crop")
        cut = _cut(image, side[0], side[1], spec.gravity or "center", (0, 0))
        return pixels.scale_to(cut, width, height)
    cut = image.extract_area(region.left, region.top, region.width, region.height)
    return pixels.scale_to(cut, width, height)


def _auto(spec: Resize, image: pyvips.Image, width: int, height: int, limits: Limits) -> pyvips.Image:
    """c_auto: the region around the subject or faces, at least w x h of the image where it has them
    (so it only scales down unless the image is smaller), scaled to exactly w x h; with nothing found,
    the automatic fill."""
    check_output(width, height, limits)
    if spec.focus is None:
        return _fill(replace(spec, gravity="auto"), image, width, height, limits)
    region = _region(spec, image, width / height, at_least=(width, height))
    cut = image.extract_area(region.left, region.top, region.width, region.height)
    return pixels.scale_to(cut, width, height)


def _pad(spec: Resize, image: pyvips.Image, width: int, height: int, limits: Limits) -> pyvips.Image:
    colour = autopad.resolve(spec.background, image)  # b_auto: measured on the image before scaling
    if spec.mode == "mpad" and (image.width > width or image.height > height):
        image = spec.before_pad(image) if spec.before_pad else image
        if colour is None:
            return image
        return autopad.pad_to(image, image.width, image.height, 0, 0, colour)  # fills transparent areas
    check_output(width, height, limits)
    if spec.mode != "mpad":
        scale = min(width / image.width, height / image.height)
        if spec.mode == "lpad":
            scale = min(scale, 1.0)
        image = pixels.scale_to(image, round(image.width * scale), round(image.height * scale))
    if spec.before_pad is not None:
        image = spec.before_pad(image)
    # The pad colour also fills transparent areas: Cloudinary's recommended way to put a background
    # under a cut-out is b_<colour>,c_pad,w_1.0 (a pad that adds nothing).
    left, top = pixels.place((width, height), (image.width, image.height), spec.gravity or "center")
    return autopad.pad_to(image, width, height, left, top, colour)


_MODES = {
    "scale": _fit,
    "fit": _fit,
    "limit": _fit,
    "mfit": _fit,
    "fill": _fill,
    "lfill": _fill,
    "thumb": _thumb,
    "crop": _crop,
    "pad": _pad,
    "lpad": _pad,
    "mpad": _pad,
    "fill_pad": autopad.fill_pad,
    "auto": _auto,
}
_KEYS = ("ar", "c", "dpr", "g", "h", "w", "x", "y", "z")
_NEEDS = {
    "dpr": "dpr_ needs w_ or h_ in the same component",
    "g": "g_ needs c_fill, c_lfill, c_pad, c_lpad, c_mpad, c_crop or c_thumb, or a fl_layer_apply component",
    "x": "x_ needs c_crop, e_shadow, e_gradient_fade or a fl_layer_apply component",
    "y": "y_ needs c_crop, e_shadow, e_gradient_fade or a fl_layer_apply component",
    "z": "z_ needs c_thumb, c_crop or c_auto",
}


def sized_as_is(params: Mapping[str, Any]) -> bool:
    """A crop mode with no w_, h_ or ar_ (``c_fill,g_face``, ``c_pad,b_auto:predominant``): Cloudinary
    delivers the image at its own size, so the mode has nothing to do. Its own console apps write such URLs
    (``c_pad,b_auto:predominant,fl_preserve_transparency``), and sites use them (tests/transform/corpus)."""
    return "c" in params and not any(k in params for k in ("w", "h", "ar"))


def _default_gravity(params: Mapping[str, Any]) -> bool:
    """g_center with a mode that crops nothing (c_scale, c_fit, c_limit, c_mfit): it is where such a mode
    leaves the image anyway, so Cloudinary takes it (``c_fit,f_auto,g_center,q_60,w_645`` on real sites);
    any other gravity there is a 400, as it would move nothing."""
    return params.get("g") == "center" and params.get("c", "scale") not in _GRAVITY_MODES


def sizing_params(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """``params`` as the resize reads them: with w_ and h_ both given, ar_ is left out, as Cloudinary
    sizes by the two (next-cloudinary's CldImage writes ``c_fill,ar_16:9,w_3840,h_3000``; sites write
    ``ar_16:11,c_fill,h_600,w_800``); g_center is left out where it is the mode's own placement."""
    dropped = {"ar"} if {"ar", "w", "h"} <= params.keys() else set()
    dropped |= {"g"} if _default_gravity(params) else set()
    return {k: v for k, v in params.items() if k not in dropped} if dropped else params


def resize_from(params: Mapping[str, Any], *, placing: bool = False) -> Resize | None:
    """The Resize a component's params ask for, with qualifier checks; None when there is nothing to size.
    ``placing``: in a fl_layer_apply component g_, x_ and y_ place the layer instead."""
    mode = params.get("c")
    sizes = [k for k in ("w", "h", "ar") if k in params]
    if mode is None and not sizes:
        for key in ("dpr",) if placing else ("dpr", "g", "x", "y", "z"):
            if key in params:
                raise BadRequest(
                    f"Invalid transformation parameter - {render_param(key, params[key])}: {_NEEDS[key]}"
                )
        return None
    mode = mode or "scale"
    # c_crop,g_custom alone cuts the custom region out (its size is the region's).
    if not sizes and not (mode == "crop" and not placing and params.get("g") in focus.CUSTOM_GRAVITIES):
        if any(key in params for key in ("dpr", "x", "y", "z")):
            raise BadRequest(f"Invalid transformation parameter - c_{mode}: c_{mode} needs w_, h_ or ar_")
        return None  # (sized_as_is: the image's own size, so nothing to do)
    params = sizing_params(params)
    if "dpr" in params and "w" not in params and "h" not in params:
        raise BadRequest(
            f"Invalid transformation parameter - {render_param('dpr', params['dpr'])}: {_NEEDS['dpr']}"
        )
    gravity = None if placing or _default_gravity(params) else params.get("g")
    if mode == "auto":
        if gravity is not None and gravity not in ("auto", *focus.CONTENT_GRAVITIES):
            raise BadRequest(
                f"Invalid transformation parameter - g_{gravity}: c_auto takes g_auto, g_auto:subject, "
                "g_auto:face or another face gravity, not a compass point"
            )
        gravity = "auto:subject" if gravity in (None, "auto") else gravity
    if gravity in focus.CONTENT_GRAVITIES and mode not in _CONTENT_MODES:
        kind = "custom" if gravity in focus.CUSTOM_GRAVITIES else "face or subject"
        raise BadRequest(
            f"Invalid transformation parameter - g_{gravity}: a {kind} gravity needs c_fill, c_lfill, "
            f"c_crop, c_thumb or c_auto (not c_{mode})"
        )
    if "z" in params and not placing and mode not in _ZOOM_MODES:
        zoom = render_param("z", params["z"])
        raise BadRequest(f"Invalid transformation parameter - {zoom}: {_NEEDS['z']} (not c_{mode})")
    if "z" in params and not placing and mode == "crop" and gravity not in focus.CONTENT_GRAVITIES:
        zoom = render_param("z", params["z"])
        raise BadRequest(f"Invalid transformation parameter - {zoom}: z_ with c_crop needs a face or "
                         "subject gravity (g_face, g_faces, g_auto:subject...)")  # fmt: skip
    if gravity == "auto" and mode not in _AUTO_MODES:
        raise BadRequest("Use auto gravity only with crop, fill, lfill, fill_pad or thumb")
    if mode == "fill_pad" and gravity != "auto":
        raise BadRequest(
            "Invalid transformation parameter - c_fill_pad: c_fill_pad needs g_auto "
            "(it pads only where automatic cropping would cut the content)"
        )
    if gravity is not None and mode not in _GRAVITY_MODES:
        raise BadRequest(f"Invalid transformation parameter - g_{gravity}: {_NEEDS['g']} (not c_{mode})")
    offsets = [key for key in ("x", "y") if key in params]
    if not placing and offsets and (mode != "crop" or gravity == "auto"):
        key = offsets[0]
        why = _NEEDS[key] if mode != "crop" else f"{key}_ cannot be combined with g_auto"
        raise BadRequest(f"Invalid transformation parameter - {render_param(key, params[key])}: {why}")
    return Resize(
        mode=mode,
        w=params.get("w"),
        h=params.get("h"),
        ar=params.get("ar"),
        dpr=params.get("dpr", 1.0),
        gravity=gravity,
        x=None if placing else params.get("x"),
        y=None if placing else params.get("y"),
        background=params.get("b") if mode in _PADDED else None,
        zoom=None if placing else params.get("z"),
    )


@builder("resize")
def build(params: Mapping[str, Any], claimed: set[str], prefix: str) -> Action | None:
    given = params
    # x_/y_ (and co_) may belong to the component's effect (co_red,e_shadow:50,x_-15,y_15).
    params = {k: v for k, v in params.items() if k not in effect_claims(params)}
    spec = resize_from(params)
    if spec is None:
        if sized_as_is(params):  # the mode, its gravity and pad colour: nothing to do (sized_as_is)
            claimed.update(k for k in ("c", "g", "b") if k in params and (k != "b" or params["c"] in _PADDED))
        return None
    ignored = params.keys() - sizing_params(params).keys()  # ar_ beside w_ and h_; g_center (sizing_params)
    claimed.update(ignored)
    params = sizing_params(params)
    before, effect_keys = _before_pad(given, spec)
    if before is not None:
        spec = replace(spec, before_pad=before)
        params = {**params, **{k: given[k] for k in effect_keys}}
    # fl_relative reaches here only inside a layer (the plan compiler checks): fractions of the base;
    # fl_region_relative inside a layer placed on a face or the subject: fractions of that box; on a face
    # or subject crop outside layers, of the box the crop found.
    region = "region_relative" in params.get("fl", ())
    relative = region or "relative" in params.get("fl", ())
    keys = [k for k in _KEYS if k in params] + (["b"] if spec.background else []) + effect_keys
    keys += ["fl"] if relative else []
    claimed.update(keys)
    turn = _auto_turn(params)
    if turn is not None:
        claimed.add("a")

    centred = _centred(spec)
    gravity = spec.gravity or ""
    custom = focus.needs_asset(gravity)
    measured = object()  # b_auto's colour on an animation's first frame, this step's in Ctx.measured

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        reference = (ctx.layer_region if region else ctx.layer_base) if relative else None
        seen = prefix
        if turn is not None and _turns(spec, image, reference):
            image = image.rot("d90" if turn == "auto_right" else "d270")
            # What a detector reads is the image turned, not the original's preview: keyed as such.
            seen = f"{prefix}/a_{turn}" if prefix else f"a_{turn}"
        if ctx.animated and centred is not None:
            return centred.apply(image, ctx.limits)  # (never inside a layer: a layer's image is a still)
        if ctx.animated and isinstance(spec.background, AutoBackground):
            # One pad colour for every frame, as g_auto is one centre: measured on each frame, it would
            # flicker from one frame to the next. The frames run each step in order: the first measures.
            if measured not in ctx.measured:
                ctx.measured[measured] = autopad.resolve(spec.background, image)
            return replace(spec, background=ctx.measured[measured]).apply(image, ctx.limits)
        # The detector reads a shrink-on-load preview of the original (a first step) or this image (after
        # other steps); a cached detection reads no pixels at all. So no copy_memory to share them.
        # g_custom: the asset's region, or (none in its record) the gravity Cloudinary falls back to.
        now = spec if not custom else replace(spec, gravity=focus.resolve_custom(gravity, ctx))
        found = focus.find(now.gravity, ctx, image, seen) if now.content and now.gravity else None
        if region and ctx.layer_region is None:
            # Not in a layer on a face: a crop with fl_region_relative, fractions of the box it found (of
            # the image when none was found, as without the flag).
            box = (found.width * image.width, found.height * image.height) if found is not None else None
            reference = (max(1, round(box[0])), max(1, round(box[1]))) if box is not None else None
        return now.apply(image, ctx.limits, reference=reference, found=found)

    sequential = spec.gravity != "auto" and spec.mode not in _PADDED and not spec.content and turn is None
    canonical = ",".join(render_param(k, params[k]) for k in sorted(keys))
    if turn is not None:  # (a_ sorts first; the rest of a_ is the angle step's, after the resize)
        canonical = f"a_{turn},{canonical}"
    return Action(
        canonical,
        run,
        sequential=sequential,
        scaler=None if relative or turn is not None else spec,
        segmentation=focus.needs_mask(spec.gravity),
        faces=focus.needs_faces(spec.gravity),
        still_only=f"g_{spec.gravity}" if spec.content and centred is None else None,
        reads=frozenset({"custom"}) if custom else frozenset(),
    )


def _auto_turn(params: Mapping[str, Any]) -> str | None:
    """a_auto_right or a_auto_left of the component, once checked that its resize gives an aspect ratio
    to compare the image's with: w_ and h_, or ar_ (with one side alone the box takes the image's own
    shape, which always matches, so the turn could never happen). None when there is none."""
    turn = next((t for t in params.get("a", ()) if t in AUTO_TURNS), None)
    if turn is not None and "ar" not in params and not ("w" in params and "h" in params):
        raise BadRequest(
            f"Invalid transformation parameter - a_{turn}: it needs a box with an aspect ratio, w_ and h_ "
            "or ar_ (with one side the box takes the image's own shape, which always matches)"
        )
    return turn


def _turns(spec: Resize, image: pyvips.Image, reference: tuple[int, int] | None) -> bool:
    """Whether a_auto_right / a_auto_left turn ``image``: the requested box and the image are one
    landscape (wider than high), the other portrait. Cloudinary does not document when two aspect ratios
    "match": orientation is what a quarter turn can change, so that is what is compared; a square box or
    image matches either (a turn would make it no closer to the box)."""
    iw, ih = image.width, image.height
    width, height = spec.box(iw, ih, reference or (iw, ih), outside=reference is not None)
    return (width > height and ih > iw) or (width < height and iw > ih)


def _before_pad(params: Mapping[str, Any], spec: Resize) -> tuple[Before | None, list[str]]:
    """The component's effect when it acts on the image before this pad (EffectSpec.before_pad), and the
    keys the resize then claims for it (e, and its qualifiers: they are rendered with the resize)."""
    chosen = params.get("e")
    if chosen is None or chosen.spec.before_pad is None or spec.mode not in _PAD:
        return None, []
    hook = chosen.spec.before_pad
    extra = {k: params[k] for k in chosen.spec.qualifiers if k in params}
    before = hook((chosen.arguments, extra) if chosen.spec.qualifiers else chosen.arguments)
    return (before, ["e", *extra]) if before is not None else (None, [])


def _centred(spec: Resize) -> Resize | None:
    """What g_auto (and its g_auto:subject, g_auto:face... focal forms) is on an animated image: the
    centre, as Cloudinary documents, so that no two frames are cut at different places. c_auto is then
    the centred fill its g_auto falls back to, and so is c_fill_pad (which pads only where g_auto would
    cut the content: with the centre there is no such content). None for other gravities."""
    if spec.gravity is None or not (spec.gravity == "auto" or spec.gravity.startswith("auto:")):
        return None
    return replace(spec, gravity="center", mode="fill" if spec.mode in ("auto", "fill_pad") else spec.mode)
