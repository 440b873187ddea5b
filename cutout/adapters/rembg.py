"""rembg's HTTP server (``rembg s``): ``GET /api/remove?url=...`` and ``POST /api/remove`` (multipart
``file``), so a client of a self-hosted rembg keeps its code.

Source of the rules: rembg's own server, rembg/commands/s_command.py (2.0.x). Its options: ``model``
(one of rembg's model names), ``a`` alpha matting with ``af`` (foreground threshold, 0-255, default 240),
``ab`` (background threshold, 0-255, default 10) and ``ae`` (erode size, >= 0, default 10), ``om`` only
the mask, ``ppm`` post-process the mask, ``bgc`` a background colour ``r,g,b,a``, ``extras`` JSON for the
model session. On GET they are query parameters; on POST ``bgc`` and ``extras`` stay in the query and the
rest are form fields, as rembg reads them. The answer is always a PNG, RGBA even when opaque (one band for
``om``); a bad value is FastAPI's 422 ``{"detail": [{"loc", "msg", "type"}]}``, other errors
``{"detail": "..."}``.

How they land on cutout: ``a`` asks for refined edges, which is cutout's ``fine_edges``; the thresholds,
``ppm``, ``model`` and ``extras`` tune rembg's own models and matting and are listed in
X-Cutout-Ignored-Hints when they differ from rembg's defaults (the result is cutout's model's)."""

from __future__ import annotations

import anyio.to_thread
import pyvips
from cachetools import LRUCache
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cutout.adapters import base
from cutout.api import Api, front
from cutout.api.errors import ApiError, invalid, unknown_parameter
from cutout.api.intake import Intake, limit_body
from cutout.api.options import flag
from cutout.api.remover import Job, Result
from cutout.formbody import read_form
from transform.formats import encode
from transform.ops.args import integer

#: rembg's model names (rembg/sessions, 2.0.x): any is accepted; cutout runs its own model.
MODELS = ("u2net", "u2netp", "u2net_human_seg", "u2net_cloth_seg", "silueta", "isnet-general-use",
          "isnet-anime", "sam", "birefnet-general", "birefnet-general-lite", "birefnet-portrait",
          "birefnet-dis", "birefnet-hrsod", "birefnet-cod", "birefnet-massive", "bria-rmbg",
          "ben2-base", "u2net_custom", "dis_custom", "birefnet_custom")  # fmt: skip
#: name -> (default, upper bound or None) of rembg's integer options.
INTEGERS = {"af": (240, 255), "ab": (10, 255), "ae": (10, None)}
FORM = ("model", "a", "af", "ab", "ae", "om", "ppm")  # POST: form fields; bgc and extras stay in the query


def error(exc: ApiError, get: bool = False) -> Response:
    """A bad value as FastAPI's validation error (422, ``detail`` a list naming it); the rest as
    ``{"detail": "..."}`` with cutout's status (rembg itself would answer 500 for an unreadable image).
    ``get``: every option of a GET is a query parameter, and FastAPI's ``loc`` says so."""
    if exc.code in ("invalid_parameter", "missing_source"):
        # The native store names its own field for a bad URL: rembg's client sent it as the query's url.
        name = "url" if exc.parameter == "image_url" else exc.parameter
        where = "query" if get or name in ("url", "bgc", "extras") else "body"
        if name in _KEYS:  # two different keys (``base.HeaderKey``)
            where = "header"
        detail = [{"loc": [where, name or "file"], "msg": exc.detail, "type": "value_error"}]
        return JSONResponse({"detail": detail}, 422, headers={"Cache-Control": "no-store"})
    text = exc.detail
    if exc.parameter is None and text.startswith("the body"):
        # The native API's name for a carried image; rembg's client sent it as the multipart part file.
        text = "file" + text.removeprefix("the body")
    return JSONResponse({"detail": text}, exc.status, headers={"Cache-Control": "no-store", **exc.headers})


def translate(values: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """rembg's options -> (native fields, hints not acted on)."""
    native = {"format": "png"}  # rembg answers PNG whatever the background
    ignored: list[str] = []
    model = values.pop("model", "u2net")
    if model not in MODELS:
        raise invalid("model", f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if model != "u2net":
        ignored.append(f"model={model}")
    if flag("a", values.pop("a", "false")):
        native["fine_edges"] = "true"
    for name, (default, top) in INTEGERS.items():
        text = values.pop(name, str(default))
        number = _count(text, top)
        if number is None:
            bound = f"from 0 to {top}" if top is not None else "0 or more"
            raise invalid(name, f"{name} must be an integer {bound}, got {text[:40]!r}")
        if number != default:
            ignored.append(f"{name}={number}")
    if flag("om", values.pop("om", "false")):
        native["channels"] = "alpha"
    if flag("ppm", values.pop("ppm", "false")):
        ignored.append("ppm=true")
    if "extras" in values:
        values.pop("extras")
        ignored.append("extras")
    bgc = values.pop("bgc", "")
    if bgc:
        parts = bgc.split(",")
        channels = [_count(p, 255) for p in parts]
        if len(parts) != 4 or None in channels:
            raise invalid("bgc", f"bgc must be r,g,b,a with each from 0 to 255, got {bgc[:60]!r}")
        native["bg_color"] = "#" + "".join(f"{c:02x}" for c in channels if c is not None)
    for name in values:
        raise invalid(name, unknown_parameter(name, (*FORM, "bgc", "extras")))
    return native, ignored


def _count(text: str, top: int | None) -> int | None:
    """A whole number from 0 to ``top`` (or below 10**18), else None. ASCII digits only: str.isdigit()
    takes '²', and int() refuses more than 4300 digits, each a 500 before."""
    number = integer(text.strip())
    if number is None or text.strip().startswith(("-", "+")) or number >= 10**18:
        return None
    return number if top is None or number <= top else None


async def remove_get(request: Request, api: Api) -> Response:
    try:
        values = base.query(request)
        url = values.pop("url", None)
        if not url:
            raise ApiError("missing_source", "url is required", parameter="url")
        native, ignored = translate(values)
    except ApiError as exc:  # a GET's options are its query's (was loc ["body", ...], as on POST)
        return error(exc, get=True)
    return await _answer(api, await base.job(api, await base.store(api, url=url), native), native, ignored)


async def remove_post(request: Request, api: Api) -> Response:
    data, native, ignored = await _posted(request, api)
    return await _answer(api, await base.carried_job(api, data, native), native, ignored)


async def _posted(request: Request, api: Api) -> tuple[bytes, dict[str, str], list[str]]:
    """A POST's image, native fields and hints, read as rembg reads them (its errors raised)."""
    limit_body(request, api.settings.max_upload_bytes)
    values = base.query(request)
    misplaced = [name for name in values if name in FORM]
    if misplaced:  # rembg reads these from the form on POST: in the query they would do nothing
        raise invalid(misplaced[0], f"on POST, {misplaced[0]} is a form field, not a query parameter")
    data: bytes | None = None
    try:
        limit = api.settings.max_upload_bytes
        form = await read_form(request, max_files=1, max_fields=16, max_part_size=limit)
    except (MultiPartException, HTTPException) as exc:
        raise ApiError("invalid_body", f"Malformed form body: {exc}") from None
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name != "file":
                    raise invalid(name, f"only file may be a file, not {name}")
                data = await value.read()
            elif name in values:
                raise invalid(name, f"{name} is given more than once")
            elif name not in FORM:
                raise invalid(
                    name,
                    f"unknown parameter {name!r} (rembg reads it from the query)" if name in ("bgc", "extras")
                    else unknown_parameter(name, FORM),
                )
            else:
                values[name] = value
    finally:
        await form.close()
    if not data:
        raise ApiError("missing_source", "file is required", parameter="file")
    native, ignored = translate(values)
    return data, native, ignored


async def _answer(api: Api, job: Job, native: dict[str, str], ignored: list[str]) -> Response:
    data = (await base.make(api, job)).data
    if not _as_rembg(data, native):
        rgba = _known_rgba(data)
        if rgba is None:
            rgba = await anyio.to_thread.run_sync(_with_alpha, data)
            _RGBA[_shape(data)] = (data, rgba)
        data = rgba
    return _png(data, ignored)


def _as_rembg(data: bytes, native: dict[str, str]) -> bool:
    """Whether the engine's PNG is what rembg answers: RGBA (PNG colour type 6, in the IHDR chunk's
    byte 25), or the one-band mask for ``om``. The engine drops an alpha band that is opaque everywhere
    (an opaque ``bgc``, a foreground that fills the image); rembg's clients unpack four channels."""
    return native.get("channels") == "alpha" or data[25:26] == b"\x06"


#: The engine's opaque results with their RGBA re-encoding, so that a repeat (the ASGI front's too) does
#: not decode and encode again: by a sample of the bytes, checked against them in full. Bounded by bytes.
_RGBA: LRUCache[tuple[int, bytes, bytes], tuple[bytes, bytes]] = LRUCache(
    16 << 20, getsizeof=lambda value: len(value[0]) + len(value[1])
)


def _shape(data: bytes) -> tuple[int, bytes, bytes]:
    return len(data), data[:64], data[-64:]


def _known_rgba(data: bytes) -> bytes | None:
    """The RGBA re-encoding of ``data`` made before (None: not yet)."""
    made = _RGBA.get(_shape(data))
    return made[1] if made is not None and made[0] == data else None


def _with_alpha(data: bytes) -> bytes:
    image = pyvips.Image.new_from_buffer(data, "").colourspace("srgb")
    if not image.hasalpha():
        image = image.bandjoin(255)
    return encode(image, "png", None)


def _png(data: bytes, ignored: list[str]) -> Response:
    headers = {"Cache-Control": "no-store", **base.hints(ignored)}
    return Response(data, media_type="image/png", headers=headers)


_KEYS = ("X-Api-Key",)
_KEY = base.header_key(*_KEYS, bearer=True)
ROUTES = (
    Route("/api/remove", base.endpoint(remove_get, _KEY, error), methods=["GET"]),
    Route("/api/remove", base.endpoint(remove_post, _KEY, error), methods=["POST"]),
)


# -- a repeated POST answered by the ASGI front (cutout.api.front), with the route's own functions ---------
async def _front_intake(api: Api, request: Request, headers: front.Headers, body: bytes) -> base.Read | None:
    try:
        data, native, ignored = await _posted(request, api)
    except ApiError:
        return None  # the route's error
    return base.Read(native, "body", data, context=ignored)


def _front_respond(api: Api, job: Job, result: Result, request: Request, received: Intake) -> Response:
    assert isinstance(received, base.Read)
    data = result.entry.data
    if not _as_rembg(data, received.fields):
        rgba = _known_rgba(data)
        if rgba is None:
            raise ValueError("an opaque result not seen yet: the route adds its alpha band (in a thread)")
        data = rgba
    return _png(data, received.context)


FACE = front.Face(
    path="/api/remove",
    reads=base.key_headers(*_KEYS, bearer=True),
    key=base.raw_key(*_KEYS, bearer=True),
    intake=_front_intake,
    respond=_front_respond,
)
