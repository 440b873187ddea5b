"""The options of ``POST /v1/remove-background``: validated one by one (a bad value is a 400 naming it),
then compiled onto the engine's own operations, so the API and the delivery URLs share one renderer, one
canonical form and one mask cache.

>>> options = parse_options({"bg_color": "#ff0000", "crop": "true", "crop_margin": "10"})
>>> transformation(options, 640, 480)
'e_background_removal/e_trim/e_margin:10/b_rgb:ff0000/f_jpg'
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from cutout.api.errors import ApiError, invalid, unknown_parameter
from grammar.errors import InvalidArgument
from transform.ops import EFFECTS, args
from transform.ops.effects import Removal
from transform.seam import SEGMENT_MAX_SIDE

#: Fields that name the image (exactly one of them) or steer the request rather than the result.
SOURCES = ("image_file", "image_file_b64", "image_url", "public_id", "task_id")
CONTROL = ("async", "webhook_url")
#: Fields that name one background image (at most one of them, and not with bg_color). The Remover
#: stores it like an input and puts it under the cut-out (``u_``).
BACKGROUNDS = ("bg_image_file", "bg_image_url", "bg_public_id")
#: Fields that may come as multipart file parts.
FILES = ("image_file", "bg_image_file")
PREVIEW_MEGAPIXELS = 0.25
MAX_MEGAPIXELS = 1000.0

_BOOL: dict[str, object] = {"type": "string", "enum": ["true", "false", "1", "0"]}
#: A true/false field, as text (a query, a form); JSON may send true and false (``openapi``).
FLAG = _BOOL
_TEXT: dict[str, object] = {"type": "string"}
#: name -> (JSON schema of the field's text, what it means): the OpenAPI document and docs page.
SOURCE_DOCS: dict[str, tuple[dict[str, object], str]] = {
    "image_file": ({"type": "string", "format": "binary"}, "the image, as a multipart file part"),
    "image_file_b64": (_TEXT, "the image in base64, bare or as a data URI"),
    "image_url": (_TEXT, "the image's http(s) URL, fetched by the server (CUTOUT_FETCH_ALLOW)"),
    "public_id": (_TEXT, "an original the server already has"),
    "task_id": (_TEXT, "the result of an earlier task (finished): chains another request onto it"),
}
OPTION_DOCS: dict[str, tuple[dict[str, object], str]] = {
    "channels": ({"type": "string", "enum": ["rgba", "alpha"]},
                 "rgba: the cut-out; alpha: a one-band mask the size of the input"),
    "fine_edges": (_BOOL, "finer hair and fur"),
    "bg_color": (_TEXT, "background colour: hex (#f00, ff0000, ff000080), a colour name, or r,g,b[,a] "
                        "(a: 0-255, or 0.0-1.0 with a decimal point; a bare 1 is refused as ambiguous)"),
    "bg_image_file": ({"type": "string", "format": "binary"},
                      "a background image, cover-fitted behind the cut-out: a multipart file part, or base64 "
                      "(bare or a data URI) in a form or JSON field"),
    "bg_image_url": (_TEXT, "a background image's http(s) URL, fetched by the server (CUTOUT_FETCH_ALLOW)"),
    "bg_public_id": (_TEXT, "an original the server has, as the background image"),
    "shadow": (_TEXT, "a drop shadow under the cut-out: true, false, or e_dropshadow's arguments "
                      "(azimuth_<0-360>;elevation_<0-90>;spread_<0-100>)"),
    "roi": (_TEXT, "only this region may be foreground: x1 y1 x2 y2 (corners; px or %, separated by spaces "
                   "or commas), e.g. 10% 0% 90% 100%"),
    "crop": (_BOOL, "crop to the foreground"),
    "crop_margin": (_TEXT, "space kept around the cropped foreground: 1, 2 or 4 values in px or %"),
    "size": (_TEXT, "full (default), auto, preview (0.25 megapixels at most) or <width>x<height> to fit in"),
    "max_megapixels": ({"type": "string", "pattern": "^[0-9.]+$"}, "scale the result down to at most this"),
    "format": ({"type": "string", "enum": ["auto", "png", "jpg", "webp"]},
               "auto: JPEG when the background (bg_color or the background image) is opaque, else PNG"),
    "output": ({"type": "string", "enum": ["binary", "json"]}, "the image itself, or JSON describing it"),
    "encoding": ({"type": "string", "enum": ["base64", "data_uri", "url"]},
                 "the image's encoding in JSON output; url: a delivery URL that GETs it without a key"),
    "async": (_BOOL, "answer 202 with a task at once"),
    "webhook_url": (_TEXT, "notified (Standard Webhooks) when the task ends"),
}  # fmt: skip

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_HEX = re.compile(r"#?([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_SIZE = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")
_MARGIN = re.compile(r"([0-9]{1,4})(px|%)?")
_CORNER = re.compile(r"([0-9]{1,5})(px|%)?")
#: A corner of a region: (amount, whether it is a percentage).
Corner = tuple[int, bool]


@dataclass(frozen=True)
class Options:
    channels: str = "rgba"
    fine_edges: bool = False
    bg_color: str | None = None  # the engine's colour text (rgb:rrggbbaa or a name)
    bg_opaque: bool = False
    crop: bool = False
    crop_margin: str | None = None  # e_margin's arguments
    size: tuple[int, int] | None = None
    max_megapixels: float | None = None
    format: str = "auto"
    output: str = "binary"
    encoding: str = "base64"
    #: Which of BACKGROUNDS names the background image; ``bg_image`` is its public id once stored.
    bg_source: str | None = None
    bg_image: str | None = None
    shadow: str | None = None  # e_dropshadow's canonical text
    roi: tuple[Corner, Corner, Corner, Corner] | None = None


def flag(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word not in _TRUE + _FALSE:
        raise invalid(name, f"{name} must be true or false, got {value!r}")
    return word in _TRUE


def _choice(name: str, value: str, *choices: str) -> str:
    if value not in choices:
        raise invalid(name, f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _colour(value: str) -> tuple[str, int]:
    """``#rgb[a]``, ``rrggbb[aa]``, a colour name, or ``r,g,b[,a]`` -> engine text, and its alpha (0-255).

    remove.bg's bg_color is a hex code or a colour name only; ``r,g,b[,a]`` is this server's own form, so
    its alpha scale is ours to define, and it must not be guessed: with a decimal point it is a fraction
    (CSS's ``rgba``: ``0.5``, ``1.0``), without one a whole number from 0 to 255 (as the 8-digit hex and
    rembg's ``bgc``). A bare ``1`` is both opaque (CSS) and 1/255 (the other scale), so it is refused."""
    text = value.strip()
    if "," in text:
        parts = [p.strip() for p in text.split(",")]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) not in (3, 4) or not all(0 <= n <= 255 for n in numbers):
            raise invalid(
                "bg_color", f"bg_color as r,g,b[,a] needs 3 or 4 numbers from 0 to 255, got {value!r}"
            )
        if len(numbers) == 4:
            numbers[3] = _alpha(parts[3], numbers[3], value)
        text = "rgb:" + "".join(f"{round(n):02x}" for n in numbers)
    elif _HEX.fullmatch(text):
        text = "rgb:" + text.removeprefix("#")
    try:
        colour = args.color("b", text, "bg_color")
    except InvalidArgument:
        raise invalid(
            "bg_color", f"bg_color must be a hex colour, a colour name or r,g,b[,a], got {value!r}"
        ) from None
    return str(colour), colour.a


def _alpha(written: str, number: float, value: str) -> float:
    """The alpha of ``r,g,b,a`` on the 0-255 scale: a fraction from 0.0 to 1.0 when written with a decimal
    point, else a whole number from 0 to 255; 400 for ``1`` (which scale?) and for a point above 1."""
    if "." in written:
        if number > 1:
            raise invalid(
                "bg_color",
                f"bg_color alpha {written!r} has a decimal point, so it is a fraction from 0.0 to 1.0 "
                f"(or write a whole number from 0 to 255), got {value!r}",
            )
        return number * 255
    if number == 1:
        raise invalid(
            "bg_color",
            f"bg_color alpha 1 is ambiguous (opaque as a fraction, 1/255 as a whole number): write 1.0 or "
            f"255 for opaque, got {value!r}",
        )
    return number


def _margin(value: str) -> str:
    parts = value.replace(",", " ").split()  # "10,20" or remove.bg's "10px 20px", as roi takes both
    sides = [_MARGIN.fullmatch(p) for p in parts]
    if len(parts) not in (1, 2, 4) or not all(sides):
        raise invalid("crop_margin", f"crop_margin must be 1, 2 or 4 values in px or %, got {value!r}")
    rendered = []
    for side in sides:
        assert side is not None
        amount, unit = int(side.group(1)), side.group(2)
        if unit == "%" and amount > 100 or amount > 4096:
            raise invalid("crop_margin", f"crop_margin: at most 4096 px or 100 %, got {value!r}")
        rendered.append(f"{amount}p" if unit == "%" else str(amount))
    return ":".join(rendered)


def _megapixels(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (0 < number <= MAX_MEGAPIXELS):  # also false for nan
        raise invalid(
            "max_megapixels", f"max_megapixels must be a number above 0, at most {MAX_MEGAPIXELS:g}"
        )
    return number


def parse_options(fields: Mapping[str, str], file_fields: Collection[str] = ()) -> Options:
    """Every field that is not a source or a control field must be an option; unknown ones are refused.
    ``file_fields`` names the multipart file parts that came besides the image (bg_image_file)."""
    values: dict[str, object] = {}
    for name in file_fields:
        if name in BACKGROUNDS:
            _background(values, name)
    for name, value in fields.items():
        if name in SOURCES or name in CONTROL:
            continue
        if name == "channels":
            values[name] = _choice(name, value, "rgba", "alpha")
        elif name in ("fine_edges", "crop"):
            values[name] = flag(name, value)
        elif name == "bg_color":
            colour, alpha = _colour(value)
            # The cut-out over a colour with alpha 0 is the cut-out itself (remove.bg's 00000000, rembg's
            # bgc=0,0,0,0); the engine refuses a transparent b_ outside a pad crop, so none is given.
            if alpha > 0:
                values["bg_color"], values["bg_opaque"] = colour, alpha == 255
        elif name == "crop_margin":
            values[name] = _margin(value)
        elif name == "size":
            values.update(_size(value))
        elif name == "max_megapixels":
            values[name] = _megapixels(value)
        elif name == "format":
            values[name] = _choice(name, value, "auto", "png", "jpg", "webp")
        elif name == "output":
            values[name] = _choice(name, value, "binary", "json")
        elif name == "encoding":
            values[name] = _choice(name, value, "base64", "data_uri", "url")
        elif name in BACKGROUNDS:
            if not value.strip():
                raise invalid(name, f"{name} is empty")
            _background(values, name)
            if name == "bg_public_id":
                values["bg_image"] = value
        elif name == "shadow":
            values[name] = _shadow(value)
        elif name == "roi":
            values[name] = _roi(value)
        else:
            raise invalid(name, unknown_parameter(name, (*SOURCES, *CONTROL, *OPTION_DOCS)))
    options = Options(**values)  # type: ignore[arg-type]
    _check_together(options, fields)
    return options


def _background(values: dict[str, object], name: str) -> None:
    if "bg_source" in values:
        raise invalid(name, f"give one background image, not {values['bg_source']} and {name}")
    values["bg_source"] = name


def _shadow(value: str) -> str | None:
    word = value.strip().lower()
    if word in _TRUE:
        return "dropshadow"
    if word in _FALSE:
        return None
    spec = EFFECTS["dropshadow"]
    try:
        return spec.render(spec.parse(f"dropshadow:{value}", value))
    except InvalidArgument as exc:
        raise invalid(
            "shadow",
            f"shadow must be true, false or azimuth_<0-360>;elevation_<0-90>;spread_<0-100>: {exc.expected}",
        ) from None


def _roi(value: str) -> tuple[Corner, Corner, Corner, Corner]:
    """remove.bg's form: ``x1 y1 x2 y2``, the region's corners, each px or % (``0% 0% 100% 100%``)."""
    parts = value.replace(",", " ").split()
    corners = [_CORNER.fullmatch(p) for p in parts]
    if len(parts) != 4 or not all(corners):
        raise invalid("roi", f"roi must be 4 values x1 y1 x2 y2 in px or % (10% 0% 90% 100%), got {value!r}")
    parsed: list[Corner] = []
    for corner in corners:
        assert corner is not None
        amount, percent = int(corner.group(1)), corner.group(2) == "%"
        if amount > (100 if percent else args.MAX_LENGTH):
            raise invalid("roi", f"roi: at most 100 % or {args.MAX_LENGTH} px a value, got {value!r}")
        parsed.append((amount, percent))
    x1, y1, x2, y2 = parsed
    for low, high, axis in ((x1, x2, "x"), (y1, y2, "y")):
        if low[1] == high[1] and low[0] >= high[0]:
            raise invalid("roi", f"roi: {axis}2 must be greater than {axis}1, got {value!r}")
    return x1, y1, x2, y2


def _size(value: str) -> dict[str, object]:
    if value in ("full", "auto"):
        return {}
    if value == "preview":
        return {"max_megapixels": PREVIEW_MEGAPIXELS}
    match = _SIZE.fullmatch(value)
    if not match:
        raise invalid("size", f"size must be full, auto, preview or <width>x<height>, got {value!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if max(width, height) > args.MAX_LENGTH:  # else the engine's 400 about w_<n>, naming no option
        raise invalid("size", f"size: at most {args.MAX_LENGTH} px a side, got {value!r}")
    return {"size": (width, height)}


def _check_together(options: Options, fields: Mapping[str, str]) -> None:
    if options.crop_margin is not None and not options.crop:
        raise invalid("crop_margin", "crop_margin needs crop=true")
    if options.channels == "alpha" and options.bg_color is not None:
        raise invalid(
            "bg_color", "bg_color cannot be combined with channels=alpha (a mask has no background)"
        )
    if options.bg_source is not None and options.bg_color is not None:
        raise invalid(options.bg_source, f"give bg_color or {options.bg_source}, not both")
    if options.channels == "alpha":
        for name in (options.bg_source, "shadow" if options.shadow is not None else None):
            if name is not None:
                raise invalid(name, f"{name} cannot be combined with channels=alpha (a mask is one band)")
    if options.channels == "alpha" and options.format == "jpg":
        raise invalid("format", "channels=alpha is delivered as png or webp")
    if "encoding" in fields and options.output != "json":
        raise invalid("encoding", "encoding needs output=json")
    if options.size is not None and "max_megapixels" in fields:
        raise invalid("max_megapixels", "give size=<width>x<height> or max_megapixels, not both")
    if fields.get("size") == "preview" and "max_megapixels" in fields:
        # preview is max_megapixels=0.25: whichever of the two came last won, the other was dropped
        raise invalid("max_megapixels", "give size=preview (0.25 megapixels) or max_megapixels, not both")


def output_format(options: Options) -> str:
    """auto: PNG when the result can be transparent (or is a mask), else JPEG."""
    if options.format != "auto":
        return options.format
    return "jpg" if options.bg_opaque else "png"


def transformation(options: Options, width: int, height: int) -> str:
    """The engine transformation for ``options`` on a ``width`` x ``height`` original. max_megapixels
    becomes a c_limit box of the original's aspect ratio: a cropped result fits in it too, so it never
    exceeds the limit (it may be scaled a little more than needed when the crop changes the shape).
    The order: the region limits the cut-out before it is cropped; the shadow is cast by the cropped
    cut-out; the background image (``u_``, cover-fitted to the result) goes under the scaled result,
    shadow included, so it is scaled once."""
    box = options.size
    if options.max_megapixels is not None and width * height > options.max_megapixels * 1e6:
        scale = math.sqrt(options.max_megapixels * 1e6 / (width * height))
        box = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
    # An original over SEGMENT_MAX_SIDE keeps its size (fullsize_y) when the result may be larger than
    # that side: the API's "full" is the original's size, as remove.bg's and Azure's are, where a
    # Cloudinary URL scales it to that side first. Named only then, so that every other image's
    # transformation (and cache key) is as it was.
    kept = min(1.0, box[0] / width, box[1] / height) if box is not None else 1.0
    removal = Removal(options.fine_edges, full_size=kept * max(width, height) > SEGMENT_MAX_SIDE)
    steps = ["e_" + removal.render()]
    if options.roi is not None:
        steps.append(roi_effect(options.roi, width, height, removal.full_size))
    if options.crop:
        steps.append("e_trim")
        if options.crop_margin is not None:
            steps.append(f"e_margin:{options.crop_margin}")
    if options.shadow is not None:
        steps.append(f"e_{options.shadow}")
    if options.channels == "alpha":
        steps.append("e_alpha_mask")
    if box is not None:
        steps.append(f"c_limit,h_{box[1]},w_{box[0]}")
    if options.bg_image is not None:
        layer = options.bg_image.replace("/", ":")
        steps.append(f"u_{layer}/c_fill,fl_layer_apply.relative,h_1.0,w_1.0")
    if options.bg_color is not None:
        steps.append(f"b_{options.bg_color}")
    steps.append(f"f_{output_format(options)}")
    return "/".join(steps)


def companion(options: Options, width: int, height: int) -> str:
    """The mask of the same geometry (same trim, margin and scale): where the foreground box is read.
    A cut-out that keeps its transparency (no background, no shadow, PNG or WebP) is its own companion:
    its alpha band is that mask, and rendering the cut-out a second time would double a new image's
    work after the model (the foreground colour estimation and the encoding)."""
    if keeps_mask(options):
        return transformation(options, width, height)
    mask = Options(
        channels="alpha",
        fine_edges=options.fine_edges,
        crop=options.crop,
        crop_margin=options.crop_margin,
        size=options.size,
        max_megapixels=options.max_megapixels,
        format="png",
        roi=options.roi,
    )
    return transformation(mask, width, height)


def keeps_mask(options: Options) -> bool:
    """Whether the result's last band is the foreground mask, unchanged (see ``companion``)."""
    plain = options.bg_color is None and options.bg_source is None and options.shadow is None
    return options.channels == "alpha" or (plain and output_format(options) in ("png", "webp"))


def roi_effect(
    roi: tuple[Corner, Corner, Corner, Corner], width: int, height: int, full_size: bool = False
) -> str:
    """``e_roi`` in pixels of the image the model's cut-out has: the original's, unless it is larger than
    SEGMENT_MAX_SIDE and not kept at ``full_size`` (then scaled like it). Percentages become pixels too,
    so a region written either way is one derivative. A region that holds no pixel of the image is
    refused here, before any work."""
    scale = 1.0 if full_size else min(1.0, SEGMENT_MAX_SIDE / max(width, height))
    cut_w, cut_h = max(1, round(width * scale)), max(1, round(height * scale))

    def px(corner: Corner, extent: int, cut_extent: int) -> int:
        amount, percent = corner
        exact = extent * amount / 100 if percent else amount
        return min(cut_extent, round(exact * scale))

    x1, x2 = px(roi[0], width, cut_w), px(roi[2], width, cut_w)
    y1, y2 = px(roi[1], height, cut_h), px(roi[3], height, cut_h)
    if x2 <= x1 or y2 <= y1:
        raise invalid("roi", f"roi holds no pixel of the {width}x{height} image")
    return f"e_roi:{x1}:{y1}:{x2}:{y2}"


def check_sources(given: list[str]) -> str:
    if not given:
        raise ApiError(
            "missing_source",
            "Send the image as the body, image_file, image_file_b64, image_url, public_id or task_id",
        )
    if len(given) > 1:
        raise ApiError(
            "multiple_sources", f"Send exactly one image; got {', '.join(given)}", parameter=given[1]
        )
    return given[0]
