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
from collections.abc import Mapping
from dataclasses import dataclass

from cutout.api.errors import ApiError, invalid
from grammar.errors import InvalidArgument
from transform.ops import args

#: Fields that name the image (exactly one of them) or steer the request rather than the result.
SOURCES = ("image_file", "image_file_b64", "image_url", "public_id")
CONTROL = ("async", "webhook_url")
#: In the issue, not built yet: refused by name rather than ignored.
NOT_YET = ("bg_image_file", "bg_image_url", "bg_public_id", "shadow", "roi", "task_id")
PREVIEW_MEGAPIXELS = 0.25
MAX_MEGAPIXELS = 1000.0

_BOOL: dict[str, object] = {"type": "string", "enum": ["true", "false", "1", "0"]}
_TEXT: dict[str, object] = {"type": "string"}
#: name -> (JSON schema of the field's text, what it means): the OpenAPI document and docs page.
SOURCE_DOCS: dict[str, tuple[dict[str, object], str]] = {
    "image_file": ({"type": "string", "format": "binary"}, "the image, as a multipart file part"),
    "image_file_b64": (_TEXT, "the image in base64, bare or as a data URI"),
    "image_url": (_TEXT, "the image's http(s) URL, fetched by the server (CUTOUT_FETCH_ALLOW)"),
    "public_id": (_TEXT, "an original the server already has"),
}
OPTION_DOCS: dict[str, tuple[dict[str, object], str]] = {
    "channels": ({"type": "string", "enum": ["rgba", "alpha"]},
                 "rgba: the cut-out; alpha: a one-band mask the size of the input"),
    "fine_edges": (_BOOL, "finer hair and fur"),
    "bg_color": (_TEXT, "background colour: hex (#f00, ff0000, ff000080), a colour name, or r,g,b[,a]"),
    "crop": (_BOOL, "crop to the foreground"),
    "crop_margin": (_TEXT, "space kept around the cropped foreground: 1, 2 or 4 values in px or %"),
    "size": (_TEXT, "full (default), auto, preview (0.25 megapixels at most) or <width>x<height> to fit in"),
    "max_megapixels": ({"type": "string", "pattern": "^[0-9.]+$"}, "scale the result down to at most this"),
    "format": ({"type": "string", "enum": ["auto", "png", "jpg", "webp"]},
               "auto: JPEG when bg_color is opaque, else PNG"),
    "output": ({"type": "string", "enum": ["binary", "json"]}, "the image itself, or JSON describing it"),
    "encoding": ({"type": "string", "enum": ["base64", "data_uri"]}, "the image's encoding in JSON output"),
    "async": (_BOOL, "answer 202 with a task at once"),
    "webhook_url": (_TEXT, "notified (Standard Webhooks) when the task ends"),
}  # fmt: skip

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_HEX = re.compile(r"#?([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_SIZE = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")
_MARGIN = re.compile(r"([0-9]{1,4})(px|%)?")


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


def flag(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word not in _TRUE + _FALSE:
        raise invalid(name, f"{name} must be true or false, got {value!r}")
    return word in _TRUE


def _choice(name: str, value: str, *choices: str) -> str:
    if value not in choices:
        raise invalid(name, f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _colour(value: str) -> tuple[str, bool]:
    """``#rgb[a]``, ``rrggbb[aa]``, a colour name, or ``r,g,b[,a]`` (0-255; a may be 0-1) -> engine text."""
    text = value.strip()
    if "," in text:
        parts = [p.strip() for p in text.split(",")]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) == 4 and 0 <= numbers[3] <= 1 and "." in parts[3]:
            numbers[3] *= 255
        if len(numbers) not in (3, 4) or not all(0 <= n <= 255 for n in numbers):
            raise invalid(
                "bg_color", f"bg_color as r,g,b[,a] needs 3 or 4 numbers from 0 to 255, got {value!r}"
            )
        text = "rgb:" + "".join(f"{round(n):02x}" for n in numbers)
    elif _HEX.fullmatch(text):
        text = "rgb:" + text.removeprefix("#")
    try:
        colour = args.color("b", text, "bg_color")
    except InvalidArgument:
        raise invalid(
            "bg_color", f"bg_color must be a hex colour, a colour name or r,g,b[,a], got {value!r}"
        ) from None
    return str(colour), colour.a == 255


def _margin(value: str) -> str:
    parts = [p.strip() for p in value.split(",")]
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


def parse_options(fields: Mapping[str, str]) -> Options:
    """Every field that is not a source or a control field must be an option; unknown ones are refused."""
    values: dict[str, object] = {}
    for name, value in fields.items():
        if name in SOURCES or name in CONTROL:
            continue
        if name in NOT_YET:
            raise invalid(name, f"{name} is not supported by this server yet")
        if name == "channels":
            values[name] = _choice(name, value, "rgba", "alpha")
        elif name in ("fine_edges", "crop"):
            values[name] = flag(name, value)
        elif name == "bg_color":
            values["bg_color"], values["bg_opaque"] = _colour(value)
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
            values[name] = _choice(name, value, "base64", "data_uri")
        else:
            raise invalid(name, f"unknown parameter {name!r}")
    options = Options(**values)  # type: ignore[arg-type]
    _check_together(options, fields)
    return options


def _size(value: str) -> dict[str, object]:
    if value in ("full", "auto"):
        return {}
    if value == "preview":
        return {"max_megapixels": PREVIEW_MEGAPIXELS}
    match = _SIZE.fullmatch(value)
    if not match:
        raise invalid("size", f"size must be full, auto, preview or <width>x<height>, got {value!r}")
    return {"size": (int(match.group(1)), int(match.group(2)))}


def _check_together(options: Options, fields: Mapping[str, str]) -> None:
    if options.crop_margin is not None and not options.crop:
        raise invalid("crop_margin", "crop_margin needs crop=true")
    if options.channels == "alpha" and options.bg_color is not None:
        raise invalid(
            "bg_color", "bg_color cannot be combined with channels=alpha (a mask has no background)"
        )
    if options.channels == "alpha" and options.format == "jpg":
        raise invalid("format", "channels=alpha is delivered as png or webp")
    if "encoding" in fields and options.output != "json":
        raise invalid("encoding", "encoding needs output=json")
    if options.size is not None and "max_megapixels" in fields:
        raise invalid("max_megapixels", "give size=<width>x<height> or max_megapixels, not both")


def output_format(options: Options) -> str:
    """auto: PNG when the result can be transparent (or is a mask), else JPEG."""
    if options.format != "auto":
        return options.format
    return "jpg" if options.bg_opaque else "png"


def transformation(options: Options, width: int, height: int) -> str:
    """The engine transformation for ``options`` on a ``width`` x ``height`` original. max_megapixels
    becomes a c_limit box of the original's aspect ratio: a cropped result fits in it too, so it never
    exceeds the limit (it may be scaled a little more than needed when the crop changes the shape)."""
    steps = ["e_background_removal" + (":fineedges_y" if options.fine_edges else "")]
    if options.crop:
        steps.append("e_trim")
        if options.crop_margin is not None:
            steps.append(f"e_margin:{options.crop_margin}")
    if options.channels == "alpha":
        steps.append("e_alpha_mask")
    box = options.size
    if options.max_megapixels is not None and width * height > options.max_megapixels * 1e6:
        scale = math.sqrt(options.max_megapixels * 1e6 / (width * height))
        box = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
    if box is not None:
        steps.append(f"c_limit,h_{box[1]},w_{box[0]}")
    if options.bg_color is not None:
        steps.append(f"b_{options.bg_color}")
    steps.append(f"f_{output_format(options)}")
    return "/".join(steps)


def companion(options: Options, width: int, height: int) -> str:
    """The mask of the same geometry (same trim, margin and scale): where the foreground box is read."""
    mask = Options(
        channels="alpha",
        fine_edges=options.fine_edges,
        crop=options.crop,
        crop_margin=options.crop_margin,
        size=options.size,
        max_megapixels=options.max_megapixels,
        format="png",
    )
    return transformation(mask, width, height)


def check_sources(given: list[str]) -> str:
    if not given:
        raise ApiError(
            "missing_source", "Send the image as the body, image_file, image_file_b64, image_url or public_id"
        )
    if len(given) > 1:
        raise ApiError(
            "multiple_sources", f"Send exactly one image; got {', '.join(given)}", parameter=given[1]
        )
    return given[0]
