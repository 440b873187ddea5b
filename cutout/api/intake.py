"""Reading a request: its fields (query and body: multipart, form-urlencoded or JSON) and its one image
(raw body, ``image_file``, ``image_file_b64``, ``image_url``, ``public_id`` or ``task_id``), and the file
parts of other fields (``bg_image_file``).

The body is counted while it streams and refused past ``CUTOUT_MAX_UPLOAD_BYTES`` (413), so nothing
beyond the limit is ever buffered, whatever Content-Length claims."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Message

from cutout import jsonbody
from cutout.api.errors import ApiError, unknown_parameter
from cutout.api.options import CONTROL, FILES, OPTION_DOCS, SOURCES, check_sources
from cutout.formbody import read_form

_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.ASCII)
_RAW_TYPES = ("application/octet-stream",)
#: The sources that name an image (rather than carry it): empty, they name nothing.
_NAMED = ("image_url", "public_id", "task_id")


@dataclass(frozen=True)
class Intake:
    fields: dict[str, str]
    source: str  # which one of SOURCES, or "body"
    data: bytes | None  # the image's bytes, unless it comes by image_url, public_id or task_id
    #: Multipart file parts other than the image (bg_image_file), by field name.
    files: dict[str, bytes] = field(default_factory=dict)


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header, lower case, without parameters."""
    return content_type.split(";")[0].strip().lower()


def is_raw(media: str) -> bool:
    """Whether a body of this media type is the image itself."""
    return media.startswith("image/") or media in _RAW_TYPES


def limit_body(request: Request, limit: int) -> None:
    """Make the request's body stream fail with 413 once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    receive = request._receive
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise _too_large(limit)
        return message

    request._receive = counted


def _too_large(limit: int) -> ApiError:
    return ApiError("file_too_large", f"The request body is larger than the limit of {limit} bytes")


#: The native API's field names: a null field by another name is refused as unknown, as it is with a value.
NATIVE_FIELDS = frozenset((*SOURCES, *CONTROL, *OPTION_DOCS))


async def read(request: Request, limit: int, known: Collection[str] = NATIVE_FIELDS) -> Intake:
    """``known``: the field names of the face that reads it (a vendor's own), which may come as JSON
    ``null`` (not given); any other name is refused, with a null too, as a misspelt name with a value is."""
    limit_body(request, limit)
    fields: dict[str, str] = {}
    merge(fields, request.query_params.multi_items(), "query")
    media = media_type(request.headers.get("content-type", ""))
    body: bytes | None = None
    upload: bytes | None = None
    files: dict[str, bytes] = {}
    nulled: list[str] = []
    if media == "multipart/form-data" or media == "application/x-www-form-urlencoded":
        files = await _files(request, fields, limit)
        upload = files.pop("image_file", None)
    elif media == "application/json":
        nulled = _json(await _body(request), fields)
        for name in nulled:
            if name not in known:
                raise ApiError("invalid_parameter", unknown_parameter(name, known), parameter=name)
    elif is_raw(media):
        body = await _body(request)
    else:
        body = await _body(request)
        if body:
            raise ApiError(
                "invalid_file_type",
                f"Content-Type {media or '(none)'} is not an image, multipart, form or JSON body",
            )
        body = None
    if "image_file" in fields:  # text (query, form or JSON), not a file part: it was passed over unread
        raise ApiError(
            "invalid_parameter",
            "image_file must be a multipart file part; send base64 or a data URI as image_file_b64",
            parameter="image_file",
        )
    given = (["body"] if body else []) + (["image_file"] if upload is not None else [])
    given += [name for name in SOURCES if name in fields and name != "image_file"]
    if not given:
        for name in SOURCES:
            if name in nulled:  # the one required field (one of them): null is not an image
                raise ApiError(
                    "missing_source",
                    f"{name} is null, which is as not given: send the image as the body, image_file, "
                    "image_file_b64, image_url, public_id or task_id",
                    parameter=name,
                )
    source = check_sources(given)
    if source in _NAMED and not fields[source].strip():
        # An empty identifier is the client's mistake, not an unknown image: "No original ''" (404) read
        # as if the server had lost it.
        raise ApiError("invalid_parameter", f"{source} is empty", parameter=source)
    if source == "body":
        return Intake(fields, source, body, files)
    if source == "image_file":
        return Intake(fields, source, upload, files)
    if source == "image_file_b64":
        return Intake(fields, source, decode_b64(fields["image_file_b64"]), files)
    return Intake(fields, source, None, files)


async def _body(request: Request) -> bytes:
    """The body, read from the stream rather than with ``request.body()``, which keeps a copy on the
    request: the Intake is then the one holder of the image, and a handler that lets go of it (once
    the image is stored) frees it while it waits for the result."""
    chunks = [chunk async for chunk in request.stream()]
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def merge(fields: dict[str, str], items: Any, where: str) -> None:
    """``items`` (name, value) into ``fields``; a name given twice, here or before, is a 400 naming it
    (a dict would keep the last value and drop the other unseen)."""
    for name, value in items:
        if name in fields:
            raise ApiError("invalid_parameter", f"{name} is given more than once", parameter=name)
        fields[name] = value


async def _form(request: Request, fields: dict[str, str], limit: int) -> bytes | None:
    """The form's fields into ``fields``; the image_file part's bytes (kept for callers of old)."""
    return (await _files(request, fields, limit)).get("image_file")


async def _files(request: Request, fields: dict[str, str], limit: int) -> dict[str, bytes]:
    """The form's text fields into ``fields``; its file parts (only those of FILES) by name."""
    try:
        form = await read_form(request, max_files=2, max_fields=64, max_part_size=limit)
    except MultiPartException as exc:
        raise ApiError("invalid_body", f"Malformed form body: {exc.message}") from None
    except HTTPException as exc:  # starlette's own wrapping of a MultiPartException (no boundary, ...)
        raise ApiError("invalid_body", f"Malformed form body: {exc.detail}") from None
    files: dict[str, bytes] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name not in FILES:
                    raise ApiError(
                        "invalid_parameter",
                        f"only {' and '.join(FILES)} may be files, not {name}",
                        parameter=name,
                    )
                if name in files or name in fields:
                    code = "multiple_sources" if name == "image_file" else "invalid_parameter"
                    raise ApiError(code, f"{name} is given more than once", parameter=name)
                files[name] = await value.read()
            else:
                if name in files:
                    raise ApiError("invalid_parameter", f"{name} is given more than once", parameter=name)
                merge(fields, [(name, value)], "body")
    finally:
        await form.close()
    return files


def _json(raw: bytes, fields: dict[str, str]) -> list[str]:
    """The JSON object's fields into ``fields``; the names sent as ``null``, which are left out: a null
    is "not given" (the default), as generated SDKs and JavaScript clients write an optional field they
    do not set. Returned so that a null image can be named when no image is given."""
    try:
        data = jsonbody.loads(raw) if raw else {}
    except jsonbody.JsonBodyError as exc:
        raise ApiError("invalid_body", f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError("invalid_body", "The JSON body must be an object")
    items = []
    nulled = []
    for name, value in data.items():
        if value is None:
            nulled.append(name)
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        elif not isinstance(value, str):
            raise ApiError(
                "invalid_parameter", f"{name} must be a string, number, boolean or null", parameter=name
            )
        items.append((name, value))
    merge(fields, items, "body")
    return nulled


def decode_b64(text: str, name: str = "image_file_b64") -> bytes:
    """Bare base64 or a ``data:`` URI (the field ``name``); whitespace (line breaks of MIME encoders) is
    allowed."""
    text = text.strip()
    if text.startswith("data:"):
        match = _DATA_URI.match(text)
        if match is None:
            raise ApiError(
                "invalid_parameter",
                f"{name}: a data URI must be data:<type>;base64,<data>",
                parameter=name,
            )
        text = text[match.end() :]
    compact = "".join(text.split())  # 20x faster than re.sub on a photo's worth of base64
    try:
        data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("invalid_parameter", f"{name} is not valid base64", parameter=name) from None
    if not data:
        raise ApiError("invalid_parameter", f"{name} is empty", parameter=name)
    return data
