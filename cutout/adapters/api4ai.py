"""API4AI Background Removal (seed 001, on RapidAPI): ``GET /v1/version``, ``GET /v1/modes`` and
``POST /v1/results?mode=fg-image|fg-mask|fg-image-shadow`` with multipart ``image`` or ``url`` and an
optional background ``image-bg`` / ``url-bg``.

Everything here is from the seed unless a comment says otherwise: the JSON of ``results[]`` (status,
name, md5, width, height, the base64 PNG ``image`` entity named ``general-<mode>`` and the ``objects``
entity with a relative ``[x, y, width, height]`` box classed ``opaque-content``); JPEG and PNG only,
under 16 MB and 4096x4096, a request under about 32 MB (413); a bad image answered 200 with
``status.code: failure``; a missing image 422 ``{"detail": "Missing image or url field."}``. The key is
RapidAPI's ``X-RapidAPI-Key`` (RapidAPI's gateway answers a bad key 401 ``{"message": ...}``)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cutout.adapters import base
from cutout.api import Api, front
from cutout.api.errors import ApiError
from cutout.api.intake import Intake
from cutout.api.options import parse_options
from cutout.api.remover import Job, Result
from cutout.formbody import read_form
from transform.decode import sniff

VERSION = "v1.3.0"  # the seed's example answer
MODES = ("fg-image", "fg-image-shadow", "fg-mask")
MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MAX_SIDE = 4096
#: Errors about the image itself: API4AI answers them 200 with a failure status, not an HTTP error.
IMAGE_ERRORS = ("invalid_file_type", "failed_to_read_image", "resolution_too_high", "failed_image_download",
                "download_timeout", "file_too_large")  # fmt: skip
_FIELDS = ("image", "url", "image-bg", "url-bg")


class Failure(Exception):
    """An image that cannot be processed: 200 with ``status.code: failure``."""

    def __init__(self, message: str, name: str, data: bytes | None) -> None:
        super().__init__(message)
        self.message, self.name, self.data = message, name, data


def modes() -> list[str]:
    """The seed's modes; fg-image-shadow only where the native API has its ``shadow`` option (asked of
    its own parser, so this follows the API as it grows)."""
    try:
        parse_options({"shadow": "true"})
    except ApiError:
        return [mode for mode in MODES if mode != "fg-image-shadow"]
    return list(MODES)


def error(exc: ApiError) -> Response:
    headers = {"Cache-Control": "no-store", **exc.headers}
    if exc.code in ("auth_failed", "rate_limited"):
        return JSONResponse({"message": exc.detail}, exc.status, headers=headers)  # RapidAPI's gateway
    if exc.code == "file_too_large":
        return PlainTextResponse("Error: Request Entity Too Large\n\nYour client issued a request that was "
                                 "too large.\n", 413, headers=headers)  # fmt: skip
    status = 422 if exc.status < 500 else exc.status  # the service's own errors are FastAPI's {"detail"}
    return JSONResponse({"detail": exc.detail}, status, headers=headers)


async def version(request: Request, api: Api) -> Response:
    return PlainTextResponse(VERSION)


async def list_modes(request: Request, api: Api) -> Response:
    return JSONResponse(modes())


async def results(request: Request, api: Api) -> Response:
    mode = _mode(request)
    given = await _given(request, api)
    name, data = given.get("image") or given["url"]
    ignored: list[str] = []
    try:
        result = await _process(api, mode, name, data, given, ignored)
    except Failure as failed:
        result = _status(failed.message, failed.name, _md5(failed.data), code="failure")
        result["entities"] = []
    return _answer(result, ignored)


def _mode(request: Request) -> str:
    query = base.query(request)
    mode = query.get("mode", "fg-image")
    if mode not in MODES:
        raise ApiError("invalid_parameter", f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    extra = [name for name in query if name != "mode"]
    if extra:
        raise ApiError("invalid_parameter", f"unknown query parameter {extra[0]!r}")
    return mode


async def _given(request: Request, api: Api) -> dict[str, tuple[str, bytes | None]]:
    """The form's fields (``_form``), with one image, as a file or a URL."""
    base.limited(request, api, MAX_REQUEST_BYTES)
    given = await _form(request)
    if "image" in given and "url" in given:
        raise ApiError("invalid_parameter", "Send the image as image or url, not both.")
    if "image" not in given and "url" not in given:
        raise ApiError("invalid_parameter", "Missing image or url field.")
    return given


def _answer(result: dict[str, Any], ignored: list[str]) -> Response:
    headers = {"Cache-Control": "no-store", **base.hints(ignored)}
    return JSONResponse({"results": [result]}, headers=headers)


async def _form(request: Request) -> dict[str, tuple[str, bytes | None]]:
    """field -> (name, bytes): a file part's file name and content, or a URL and None."""
    try:
        form = await read_form(request, max_files=2, max_fields=8, max_part_size=MAX_REQUEST_BYTES)
    except (MultiPartException, HTTPException) as exc:
        raise ApiError("invalid_body", f"Malformed form body: {exc}") from None
    given: dict[str, tuple[str, bytes | None]] = {}
    try:
        for field, value in form.multi_items():
            if field not in _FIELDS:
                raise ApiError("invalid_parameter", f"unknown field {field!r}; expected {', '.join(_FIELDS)}")
            if field in given:
                raise ApiError("invalid_parameter", f"{field} is given more than once")
            if isinstance(value, UploadFile) != (field in ("image", "image-bg")):
                kind = "a file" if field in ("image", "image-bg") else "a URL text field"
                raise ApiError("invalid_parameter", f"{field} must be {kind}")
            if isinstance(value, UploadFile):
                given[field] = (value.filename or field, await value.read())
            else:
                given[field] = (value, None)
    finally:
        await form.close()
    return given


async def _process(
    api: Api,
    mode: str,
    name: str,
    data: bytes | None,
    given: dict[str, tuple[str, bytes | None]],
    ignored: list[str],
) -> dict[str, Any]:
    url = None if data is not None else name
    label = name if data is not None else _url_name(name)
    native = _native(mode)
    # The native POST's hot path for a carried image without a background (the job, by the image's hash
    # and the options, in memory, after this vendor's own checks of the bytes).
    carried = data is not None and not any(field in given for field in ("image-bg", "url-bg"))
    known = base.known_job(api, _checked(data, label), native) if carried and data is not None else None
    if known is not None:
        public_id = known.public_id
    else:
        public_id, data = await _image(api, data, url, label)
    try:
        width, height = await base.dimensions(api, public_id)
    except ApiError as exc:
        raise Failure(f"Can not load image. {exc.detail}", label, data) from None
    if not _fits(width, height):
        raise Failure(f"Resolution is too big: {width}x{height}. Max allowed resolution: "
                      f"{MAX_SIDE}x{MAX_SIDE}.", label, data)  # fmt: skip
    for field, option in (("image-bg", "bg_public_id"), ("url-bg", "bg_image_url")):
        if field not in given:
            continue
        if mode == "fg-mask":  # the seed: "Meaningless if the mode is fg-mask"
            ignored.append(field)
        elif option == "bg_image_url":
            native[option] = given[field][0]
        else:
            try:
                native[option], _ = await _image(api, given[field][1], None, given[field][0])
            except Failure as failed:  # the result still describes the image, not its background
                raise Failure(_background(field, failed.message), label, data) from None
    try:
        job = known
        if job is None:
            job = await base.job(api, public_id, native)
            if carried and data is not None:
                base.remember(api, data, native, job)
        made = await base.make(api, job)
    except ApiError as exc:  # a file that only fails when decoded in full (a truncated JPEG)
        if exc.code in IMAGE_ERRORS:
            message = f"Can not load image. {exc.detail}"
            if exc.parameter == "bg_image_url":  # was told as the image's own fault
                message = _background("url-bg", message)
            raise Failure(message, label, data) from None
        raise
    return _success(mode, label, _md5(data), made.data, made.meta)


def _background(field: str, message: str) -> str:
    """A background's failure, named as the background's: "Can not load image." read as the image's own
    (and an ``image-bg`` failure was reported under the background's file name and md5)."""
    return f"Can not load background image ({field}).{message.removeprefix('Can not load image.')}"


def _url_name(url: str) -> str:
    """The file name a URL ends in (the result's ``name``), else the URL. A URL that does not parse
    (``http://[::1``: urlsplit raises) was a 500 here; the download names what is wrong with it."""
    try:
        return PurePosixPath(urlsplit(url).path).name or url
    except ValueError:
        return url


def _native(mode: str) -> dict[str, str]:
    native = {"format": "png"}
    if mode == "fg-mask":
        native["channels"] = "alpha"
    elif mode == "fg-image-shadow":
        native["shadow"] = "true"  # the native option (a 422 naming it where the server has none)
    return native


def _success(mode: str, label: str, md5: str, data: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    result = _status("Success", label, md5, code="ok")
    result.update(width=meta["width"], height=meta["height"])
    result["entities"] = [
        {"kind": "image", "name": f"general-{mode}", "image": base64.b64encode(data).decode("ascii"),
         "format": "PNG", "representation": "base64"},
        {"kind": "objects", "name": "objects", "objects": _objects(meta)},
    ]  # fmt: skip
    return result


def _fits(width: int, height: int) -> bool:
    return width <= MAX_SIDE and height <= MAX_SIDE


async def _image(api: Api, data: bytes | None, url: str | None, label: str) -> tuple[str, bytes]:
    """The image stored as an original, with its bytes (for md5); its faults as the seed's failures."""
    try:
        if data is None:
            assert url is not None
            data = await base.download(api, url)
        return await base.store(api, data=_checked(data, label)), data
    except ApiError as exc:
        if exc.code in IMAGE_ERRORS:
            raise Failure(f"Can not load image. {exc.detail}", label, data) from None
        raise


def _checked(data: bytes, label: str) -> bytes:
    """``data`` if it is a JPEG or PNG within the seed's size; else the seed's failure."""
    if len(data) >= MAX_IMAGE_BYTES:
        raise Failure("Image file is too big. Max allowed size: 16Mb.", label, data)
    if sniff(data[:16]) not in ("jpg", "png"):
        raise Failure("Can not load image.", label, data)
    return data


def _md5(data: bytes | None) -> str:
    return hashlib.md5(data or b"", usedforsecurity=False).hexdigest()


def _status(message: str, name: str, md5: str, *, code: str) -> dict[str, Any]:
    return {"status": {"code": code, "message": message}, "name": name, "md5": md5}


def _objects(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The foreground's box relative to the result, ``[x, y, width, height]``; none when it is empty."""
    box, width, height = meta["foreground"], meta["width"], meta["height"]
    if box["width"] == 0:
        return []
    relative = [box["left"] / width, box["top"] / height, box["width"] / width, box["height"] / height]
    classes = {"kind": "classes", "name": "classes", "classes": {"opaque-content": 1}}
    return [{"box": relative, "entities": [classes]}]


_KEYS = ("X-RapidAPI-Key", "X-Api-Key")
_KEY = base.header_key(*_KEYS, bearer=True)
ROUTES = (
    Route("/v1/version", base.endpoint(version, _KEY, error), methods=["GET"]),
    Route("/v1/modes", base.endpoint(list_modes, _KEY, error), methods=["GET"]),
    Route("/v1/results", base.endpoint(results, _KEY, error), methods=["POST"]),
)


# -- a repeat answered by the ASGI front (cutout.api.front), with the route's own functions ----------------
async def _front_intake(api: Api, request: Request, headers: front.Headers, body: bytes) -> base.Read | None:
    try:
        mode = _mode(request)
        given = await _given(request, api)
    except ApiError:
        return None  # the route's error
    if set(given) != {"image"}:
        return None  # by URL (fetched), or with a background: the route's
    name, data = given["image"]
    if data is None:
        return None
    try:
        _checked(data, name)
    except Failure:
        return None  # the route's 200 with a failure status, never the front's
    return base.Read(_native(mode), "image_file", data, context=(mode, name, _md5(data)))


def _front_fits(api: Api, job: Job, received: Intake, owner: str) -> bool:
    size = base.known_size(api, job.public_id)  # known once the route has checked this image
    return size is not None and _fits(*size)


def _front_respond(api: Api, job: Job, result: Result, request: Request, received: Intake) -> Response:
    assert isinstance(received, base.Read)
    mode, name, md5 = received.context
    return _answer(_success(mode, name, md5, result.entry.data, result.meta), [])


FACE = front.Face(
    path="/v1/results",
    reads=base.key_headers(*_KEYS, bearer=True),
    key=base.raw_key(*_KEYS, bearer=True),
    intake=_front_intake,
    respond=_front_respond,
    fits=_front_fits,
)
