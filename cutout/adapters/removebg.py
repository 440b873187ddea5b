"""remove.bg: ``POST /v1.0/removebg``, so a remove.bg client needs only its base URL changed.

Sources of the rules: remove.bg's API reference and OpenAPI file (https://www.remove.bg/api, the
``removebg`` client on PyPI). The request is read by the native intake (multipart, form or JSON with
``image_file``, ``image_file_b64`` or ``image_url``), its fields renamed onto the native options, and the
answer shaped as remove.bg's: the image with ``X-Width``, ``X-Height`` and ``X-Foreground-*`` headers,
``{"data": {"result_b64", "foreground_*"}}`` under ``Accept: application/json``, and errors as
``{"errors": [{"title", "code", "detail"}]}`` with remove.bg's statuses (400 bad input, 403 key, 429), and
remove.bg's 400 ``unknown_foreground`` for an image with nothing to cut out.
"""

from __future__ import annotations

import base64
import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import pyvips
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cutout.adapters import base
from cutout.api import Api, front
from cutout.api.errors import ApiError, invalid, unknown_parameter
from cutout.api.intake import Intake, read
from cutout.api.options import SOURCES, flag
from cutout.api.remover import Job, Result
from grammar.image_formats import MIME
from transform.formats import encode

#: remove.bg's ``size`` -> at most this many megapixels (None: the input's own size). remove.bg: preview
#: (and its old names small, regular) 0.25 MP, medium 1.5 MP, hd 4 MP, full (and 4k) up to 25 MP, 50MP up
#: to 50 MP; auto "the highest resolution available", which is full. Its default is preview.
SIZES: dict[str, float] = {
    "preview": 0.25, "small": 0.25, "regular": 0.25, "medium": 1.5, "hd": 4.0,
    "full": 25.0, "4k": 25.0, "auto": 25.0, "50MP": 50.0,
}  # fmt: skip
#: remove.bg's foreground types: hints to its classifier; cutout's model has one kind (listed as ignored).
TYPES = ("auto", "person", "product", "animal", "car", "car_interior", "car_part", "transportation",
         "graphics", "other")  # fmt: skip
TYPE_LEVELS = ("none", "latest", "1", "2")
#: remove.bg's bounds of ``crop_margin``, each side (``clamped_margin``).
MAX_MARGIN_PX, MAX_MARGIN_PERCENT = 500, 50
_MARGIN_SIDE = re.compile(r"([0-9]+)(px|%)?")
_NO_IMAGE = "Send the image as image_file, image_file_b64 or image_url"
#: The region of interest that is the whole image (what the clients send by default): nothing to do.
_WHOLE = re.compile(r"0(px|%)? 0(px|%)? 100% 100%")
#: remove.bg's 400s are all "invalid parameters or input file unprocessable"; only these keep their own.
_STATUS = {"auth_failed": 403, "rate_limited": 429, "internal_error": 500, "model_unavailable": 503,
           "queue_full": 503, "still_processing": 503, "download_timeout": 400}  # fmt: skip


class NoForeground(ApiError):
    """remove.bg's 400 for an image it finds nothing to cut out of (a plain colour, a 1x1 pixel): its
    code and title word for word, and no detail, as remove.bg sends it. Its clients branch on the code;
    a 200 with an empty cut-out would be charged to their users as a success."""

    def __init__(self) -> None:
        super().__init__("invalid_parameter", "")  # a 400 of the API's; code and title are remove.bg's
        self.code = "unknown_foreground"
        self.title = ("Could not identify foreground in image. For details and recommendations see "
                      "https://www.remove.bg/supported-images.")  # fmt: skip


#: The image fields, named alike in remove.bg's request and the native API's errors.
_IMAGES = ("image_file", "image_file_b64", "image_url", "bg_image_file", "bg_image_url")
#: remove.bg's fields (its OpenAPI file's) and the native public_id: what may come as JSON null, which is
#: "not given" (the field's default), as its generated clients send an optional field they do not set.
#: shadow_type and shadow_opacity are refused with a value, but a null asks for nothing.
FIELDS = frozenset((*_IMAGES, "public_id", "size", "type", "type_level", "semitransparency", "crop",
                    "crop_margin", "roi", "scale", "position", "add_shadow", "channels", "bg_color",
                    "format", "shadow_type", "shadow_opacity"))  # fmt: skip


def error(exc: ApiError) -> Response:
    status = _STATUS.get(exc.code, 400 if exc.status < 500 else exc.status)
    text = exc.detail
    if exc.parameter in _IMAGES and text and exc.parameter not in text:
        # remove.bg's envelope has no ``parameter``: "Redirect loop: ..." did not say whether the image
        # or the background image failed.
        text = f"{exc.parameter}: {text}"
    detail = {"detail": text} if text else {}
    body = {"errors": [{"title": exc.title, "code": exc.code, **detail}]}
    return JSONResponse(body, status, headers={"Cache-Control": "no-store", **exc.headers})


def translate(fields: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """remove.bg's fields -> (native fields, the hints cutout does not act on)."""
    native: dict[str, str] = {}
    ignored: list[str] = []
    values = dict(fields)
    native["max_megapixels"] = str(SIZES[_one_of(values.pop("size", "preview"), "size", tuple(SIZES))])
    kind = _one_of(values.pop("type", "auto"), "type", TYPES)
    if kind != "auto":
        ignored.append(f"type={kind}")
    level = _one_of(values.pop("type_level", "none"), "type_level", TYPE_LEVELS)
    if level != "none":
        ignored.append(f"type_level={level}")  # it only names the class in X-Type, which is not sent
    # remove.bg: semitransparency (default true) keeps glass semi-transparent on cars; cutout's mask is
    # soft everywhere, so only asking for false is a hint not acted on.
    if not flag("semitransparency", values.pop("semitransparency", "true")):
        ignored.append("semitransparency=false")
    crop = flag("crop", values.pop("crop", "false"))
    margin = values.pop("crop_margin", None)
    if crop:
        native["crop"] = "true"
        if margin is not None:
            native["crop_margin"] = clamped_margin(margin)
    elif margin is not None and re.fullmatch(r"0(px|%)?", margin.strip()) is None:
        raise invalid("crop_margin", "crop_margin needs crop=true")
    roi = values.pop("roi", None)
    if roi is not None and _WHOLE.fullmatch(" ".join(roi.split())) is None:
        native["roi"] = roi  # the native option (a 400 naming it where the server has no roi)
    for name, default in (("scale", "original"), ("position", "original")):
        value = values.pop(name, default)
        if value != default:
            raise invalid(name, f"{name}={value!r} is not supported by this server (only {default})")
    if flag("add_shadow", values.pop("add_shadow", "false")):
        native["shadow"] = "true"
    if "bg_image_url" in values:
        native["bg_image_url"] = values.pop("bg_image_url")
    for name in ("channels", "bg_color", "image_url", "image_file_b64", "public_id"):
        if name in values:
            native[name] = values.pop(name)
    if "bg_image_file" in values:  # a text field (or a JSON string) by that name: "unknown" misled
        raise invalid("bg_image_file", "bg_image_file must be a file part of a multipart body "
                      "(or give bg_image_url)")  # fmt: skip
    fmt = values.pop("format", "auto")
    if fmt != "zip":
        native["format"] = _one_of(fmt, "format", ("auto", "png", "jpg", "webp"))
    for name in values:
        raise invalid(name, unknown_parameter(name, FIELDS))
    return native, ignored


def clamped_margin(margin: str) -> str:
    """remove.bg's ``crop_margin`` (separated by spaces) as the native option's text, each side clamped
    as remove.bg documents: "The maximum margin that can be added on each side is 50% of the subject
    dimensions or 500 pixels" (its API reference and OpenAPI file). Read per unit: a relative margin
    (``%``, of the cropped subject, as ``e_margin``'s ``p`` after ``e_trim``) at most 50%, an absolute
    one (``px``, or no unit) at most 500 px; the subject's size is not known before the cut-out, so a
    pixel margin is not also held to half the subject. remove.bg clamps rather than refuses, so a
    client that sends ``600px`` gets a result from both; what is not a margin at all is left to the
    native parser's 400 naming crop_margin."""
    sides = []
    for side in margin.replace(",", " ").split():
        found = _MARGIN_SIDE.fullmatch(side)
        if found is None:
            sides.append(side)
            continue
        digits, unit = found[1], found[2] or ""
        top = MAX_MARGIN_PERCENT if unit == "%" else MAX_MARGIN_PX
        # Compared as text past 9 digits: int() of thousands of digits raises (a 500).
        amount = top if len(digits) > 9 else min(int(digits), top)
        sides.append(f"{amount}{unit}")
    return ",".join(sides)


def _one_of(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise invalid(name, f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class _Asked:
    received: Intake  # the request as the native intake reads it, in remove.bg's names
    native: dict[str, str]  # the native fields, image source included
    options: dict[str, str]  # the native options
    ignored: list[str]
    is_zip: bool


async def _asked(request: Request, api: Api) -> _Asked:
    """The request read and translated as remove.bg's (its errors raised)."""
    try:
        received = await read(request, api.settings.max_upload_bytes, FIELDS)
    except ApiError as exc:
        if exc.code != "missing_source":
            raise
        # The native intake names the HTTP API's own fields (public_id, task_id): a remove.bg client
        # is told remove.bg's.
        # A null image field (``{"image_url": null}``) is named, as the native intake names it.
        said = f"{exc.parameter} is null, which is as not given. " if exc.parameter in _IMAGES else ""
        raise ApiError("missing_source", said + _NO_IMAGE, parameter=exc.parameter) from None
    native, ignored = translate(received.fields)
    is_zip = received.fields.get("format") == "zip"
    if is_zip and native.get("channels") == "alpha":
        raise invalid("format", "format=zip holds the colour image and its alpha: not with channels=alpha")
    options = {k: v for k, v in native.items() if k not in SOURCES}
    return _Asked(received, native, options, ignored, is_zip)


async def remove(request: Request, api: Api) -> Response:
    asked = await _asked(request, api)
    received, native, options = asked.received, asked.native, asked.options
    files = received.files or None  # bg_image_file
    if asked.is_zip:
        public_id = await api.remover.original(Intake(native, received.source, received.data))
        # The matte of the same geometry: what composes the background is not part of it.
        matte = {k: v for k, v in options.items() if k not in ("bg_color", "bg_image_url", "shadow")}
        if matte == options and not files:
            # Nothing goes behind the cut-out: color.jpg is its estimated foreground colours, opaque,
            # so that color x alpha gives the cut-out back. Flattened on white (f_jpg), soft edges
            # would keep part of the white: a light fringe once recombined.
            colour = await base.make(api, await base.job(api, public_id, {**options, "format": "png"}))
            colour_data = await anyio.to_thread.run_sync(_opaque_jpg, colour.data)
        else:  # the composite the options ask for is the colour image
            colour = await base.make(api, await base.job(api, public_id, {**options, "format": "jpg"}, files))
            colour_data = colour.data
        alpha = await base.make(
            api, await base.job(api, public_id, {**matte, "channels": "alpha", "format": "png"})
        )
        data, meta, mime = _zip(colour_data, alpha.data), colour.meta, "application/zip"
    else:
        if received.data is not None:  # the native POST's hot path: a photo seen before, in memory
            job = await base.carried_job(api, received.data, options, files, received.source)
        else:
            public_id = await api.remover.original(Intake(native, received.source, None))
            job = await base.job(api, public_id, options, files)
        made = await base.make(api, job)
        data, meta, mime = made.data, made.meta, MIME[made.meta["format"]]
    return _answer(request, data, meta, mime, asked.ignored)


def _answer(request: Request, data: bytes, meta: dict[str, Any], mime: str, ignored: list[str]) -> Response:
    if meta["foreground"]["width"] == 0:  # no pixel of the mask is half opaque: nothing was found
        raise NoForeground()  # (in the ASGI front too: the route then answers it, in this shape)
    headers = {**_headers(meta), **base.hints(ignored)}
    if "application/json" in request.headers.get("accept", ""):
        box = meta["foreground"]
        body = {"data": {"result_b64": base64.b64encode(data).decode("ascii"),
                         "foreground_top": box["top"], "foreground_left": box["left"],
                         "foreground_width": box["width"], "foreground_height": box["height"]}}  # fmt: skip
        return JSONResponse(body, headers=headers)
    return Response(data, media_type=mime, headers=headers)


def _headers(meta: dict[str, Any]) -> dict[str, str]:
    box = meta["foreground"]
    return {
        "X-Width": str(meta["width"]), "X-Height": str(meta["height"]),
        "X-Foreground-Top": str(box["top"]), "X-Foreground-Left": str(box["left"]),
        "X-Foreground-Width": str(box["width"]), "X-Foreground-Height": str(box["height"]),
        "X-Credits-Charged": "0",  # remove.bg's clients read it; a self-hosted server charges nothing
        "Cache-Control": "no-store",
    }  # fmt: skip


def _opaque_jpg(cut_out: bytes) -> bytes:
    """A cut-out's colours without its alpha (the foreground estimates, edges and background included),
    as a JPEG of the engine's default quality."""
    image = pyvips.Image.new_from_buffer(cut_out, "")
    if image.hasalpha():
        image = image.extract_band(0, n=image.bands - 1)
    return encode(image.colourspace("srgb"), "jpg", None)


def _zip(colour: bytes, alpha: bytes) -> bytes:
    """remove.bg's zip: ``color.jpg`` (the result's colours, opaque) and ``alpha.png`` (its matte), same
    size."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("color.jpg", colour)
        archive.writestr("alpha.png", alpha)
    return out.getvalue()


#: What ``GET /v1.0/account`` reports: a self-hosted server meters nothing, so no balance is true, and
#: JSON has no infinity. Clients call it to check that credits remain before they send images (the
#: ``credits.total > 0`` or ``free_calls > 0`` of remove.bg's own clients); a refusal, or zero, stopped
#: them. A large constant passes any such check, says "unlimited" to a person reading it, and never goes
#: down: every answer's ``X-Credits-Charged`` is 0. Under ``subscription``, the credits remove.bg spends
#: first, the ones a client showing a monthly budget reads.
UNMETERED = 1_000_000_000


async def account(request: Request, api: Api) -> Response:
    """remove.bg's credit balance, in its shape: the unmetered constant (``UNMETERED``)."""
    credits = {"total": UNMETERED, "subscription": UNMETERED, "payg": 0, "enterprise": 0}
    body = {"data": {"attributes": {"credits": credits, "api": {"free_calls": UNMETERED, "sizes": "all"}}}}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


PATH = "/v1.0/removebg"
_KEYS = ("X-Api-Key",)
_KEYED = base.header_key(*_KEYS, bearer=True)
ROUTES = (
    Route(PATH, base.endpoint(remove, _KEYED, error), methods=["POST"]),
    Route("/v1.0/account", base.endpoint(account, _KEYED, error), methods=["GET"]),
)


# -- a repeat answered by the ASGI front (cutout.api.front), with the route's own functions ----------------
async def _front_intake(api: Api, request: Request, headers: front.Headers, body: bytes) -> base.Read | None:
    try:
        asked = await _asked(request, api)
    except ApiError:
        return None  # the route's error
    received = asked.received
    if asked.is_zip or received.data is None:
        return None  # two results in one answer, or an image by URL or id: the route's
    return base.Read(asked.options, received.source, received.data, received.files, context=asked.ignored)


def _front_respond(api: Api, job: Job, result: Result, request: Request, received: Intake) -> Response:
    assert isinstance(received, base.Read)
    meta = result.meta
    return _answer(request, result.entry.data, meta, MIME[meta["format"]], received.context)


FACE = front.Face(
    path=PATH,
    reads=base.key_headers(*_KEYS, bearer=True) | {b"accept"},
    key=base.raw_key(*_KEYS, bearer=True),
    intake=_front_intake,
    respond=_front_respond,
)
