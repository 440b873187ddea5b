"""Azure AI Vision Image Analysis 4.0 segmentation (seed 004; Microsoft retired it in March 2025):
``POST /computervision/imageanalysis:segment?api-version=2023-02-01-preview&mode=...``.

From the seed: ``mode`` backgroundRemoval (a four-channel PNG, at most 16 megapixels, aspect kept) or
foregroundMatting (a one-channel PNG the size of the input); the image as JSON ``{"url": ...}`` or as
the body (``application/octet-stream`` or ``multipart/form-data``); ``Ocp-Apim-Subscription-Key``;
errors as ``{"error": {"code", "message", "innererror": {"code", "message"}}}`` with the seed's codes and
messages (401 for the key, 400 InvalidRequest for the rest, 20971520 bytes at most). From Azure's
Image Analysis 4.0 input requirements (where the seed is silent): JPEG, PNG, GIF, BMP, WEBP, ICO, TIFF or
MPO, larger than 50x50 and smaller than 16000x16000; cutout reads JPEG, PNG, GIF, WebP and TIFF of those,
and answers InvalidImageFormat for the others."""

from __future__ import annotations

import re

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cutout import jsonbody
from cutout.adapters import base
from cutout.api import Api, front, intake
from cutout.api.errors import ApiError
from cutout.api.intake import Intake
from cutout.api.remover import Job, Result
from cutout.formbody import read_form
from transform.decode import sniff

API_VERSIONS = ("2023-02-01-preview",)
MODES = {"backgroundRemoval": {"format": "png", "max_megapixels": "16"},
         "foregroundMatting": {"format": "png", "channels": "alpha"}}  # fmt: skip
MAX_BYTES = 20971520
FORMATS = ("jpg", "png", "gif", "webp", "tiff")
MIN_SIDE, MAX_SIDE = 50, 16000
DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)


class AzureError(Exception):
    def __init__(
        self, message: str, inner: tuple[str, str] | None = None, code: str = "InvalidRequest"
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.inner = code, message, inner

    def response(self, status: int = 400) -> JSONResponse:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.inner is not None:
            error["innererror"] = {"code": self.inner[0], "message": self.inner[1]}
        return JSONResponse({"error": error}, status, headers={"Cache-Control": "no-store"})


_FORMAT = AzureError("Image format is not valid.", ("InvalidImageFormat", "Image format is not valid."))


def _size(limit: int) -> AzureError:
    """Azure's size refusal, naming the limit that holds here (its own, or the server's when lower)."""
    return AzureError(f"The image size is not allowed to be zero or larger than {limit} bytes.")


_LIMIT = re.compile(r"limit of ([0-9]+) bytes")


def error(exc: ApiError) -> Response:
    if exc.code == "auth_failed":
        return AzureError(DENIED, code="401").response(401)
    if exc.code == "rate_limited":
        answer = AzureError(f"Rate limit is exceeded. {exc.detail}.", code="429").response(429)
        answer.headers.update(exc.headers)
        return answer
    if exc.code == "file_too_large":  # the body stopped at the limit (``limit_body`` names it)
        # That limit allows a multipart envelope around the image: the image's own is Azure's (or the
        # server's, when lower), the one the message names (not 21037056, a number of no document).
        found = _LIMIT.search(exc.detail)
        return _size(min(int(found[1]), MAX_BYTES) if found else MAX_BYTES).response()
    if exc.code in ("invalid_file_type", "failed_to_read_image"):
        return _FORMAT.response()
    # A malformed URL ("", no scheme) is the seed's "badly formatted" case too: it was answered with the
    # native message alone, without the documented message or inner error.
    badly_formatted = exc.code == "invalid_parameter" and exc.parameter == "image_url"
    if badly_formatted or exc.code in ("failed_image_download", "forbidden_url", "download_timeout"):
        inner = ("InvalidImageUrl", exc.detail)
        return AzureError("Image URL is badly formatted or not accessible.", inner).response()
    if exc.status >= 500:
        answer = AzureError(exc.detail, code="InternalServerError").response(exc.status)
        answer.headers.update(exc.headers)  # Retry-After, when the result is still being made
        return answer
    return AzureError(exc.detail).response()


async def segment(request: Request, api: Api) -> Response:
    try:
        return await _segment(request, api)
    except AzureError as failed:
        return failed.response()


async def _segment(request: Request, api: Api) -> Response:
    mode = _mode(request)
    base.limited(request, api, MAX_BYTES + 64 * 1024)  # the image and a multipart envelope's headers
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    job: Job | None = None
    data: bytes | None = None
    if media == "application/json":
        public_id = await base.store(api, url=_url(await request.body()))
    elif media in ("application/octet-stream", "multipart/form-data"):
        data = await _carried(request, media, min(MAX_BYTES, api.settings.max_upload_bytes))
        job = base.known_job(api, data, MODES[mode])  # the native POST's hot path: seen before, in memory
        public_id = job.public_id if job is not None else await base.store(api, data=data)
    else:
        raise AzureError(f"The provided image content type {media or '(none)'} is not supported.")
    _check_dimensions(*await base.dimensions(api, public_id))
    if job is None:
        job = await base.job(api, public_id, MODES[mode])
        if data is not None:
            base.remember(api, data, MODES[mode], job)
    made = await base.make(api, job)
    return _answer(made.data)


def _mode(request: Request) -> str:
    """The query's mode, once api-version and the query's names are checked (Azure's 400s)."""
    try:
        query = base.query(request)
    except ApiError as exc:  # a name twice: which value would Azure's client have meant?
        raise AzureError("Analyze query is invalid.", ("InvalidArgument", exc.detail)) from None
    version = query.get("api-version")
    if version not in API_VERSIONS:
        # An absent one was "api-version None is not supported": Python's None, naming nothing sent.
        said = "api-version is missing" if version is None else f"api-version {version!r} is not supported"
        raise AzureError(f"The api-version must be {' or '.join(API_VERSIONS)}.", ("InvalidApiVersion", said))
    mode = query.get("mode")
    if mode not in MODES:
        raise AzureError(
            "Analyze query is invalid.",
            (
                "NotSupportedVisualFeature",
                f"Specified feature type is not valid: mode must be {' or '.join(MODES)}",
            ),
        )
    unknown = sorted(set(query) - {"api-version", "mode"})
    if unknown:
        raise AzureError(
            "Analyze query is invalid.", ("InvalidArgument", f"Unknown query parameter {unknown[0]!r}")
        )
    return mode


async def _carried(request: Request, media: str, limit: int) -> bytes:
    """The image a body carries (raw or the one multipart file), within ``limit`` and Azure's formats."""
    data = await request.body() if media == "application/octet-stream" else await _part(request)
    if not data or len(data) > limit:
        raise _size(limit)
    if sniff(data[:16]) not in FORMATS:
        raise _FORMAT
    return data


def _fits(width: int, height: int) -> bool:
    return MIN_SIDE < width < MAX_SIDE and MIN_SIDE < height < MAX_SIDE


def _check_dimensions(width: int, height: int) -> None:
    if not _fits(width, height):
        raise AzureError(
            "Image dimensions are not valid.",
            (
                "InvalidImageDimension",
                f"The image is {width}x{height}; each side must be over {MIN_SIDE} and under {MAX_SIDE}",
            ),
        )


def _answer(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


def _url(raw: bytes) -> str:
    body, why = None, "Expected one field, url, a string"
    # Microsoft's own curl samples send {'url':'...'} (single quotes), which the service took.
    for text in (raw, raw.replace(b"'", b'"')):
        try:
            body = jsonbody.loads(text)
            break
        except jsonbody.RepeatedKey as exc:  # JSON, but with "url" twice: say so, not "one field"
            why = f"{why}: {exc}"
            break
        except jsonbody.JsonBodyError:
            continue
    if isinstance(body, dict) and "url" in body and body["url"] is None:
        # Azure's one field is required: a null (an SDK's unset field) is named, not "Expected one field".
        why = "url is null: it is required (the image's URL)"
    if not isinstance(body, dict) or not isinstance(body.get("url"), str) or set(body) != {"url"}:
        raise AzureError('The request body must be JSON {"url": "<image URL>"}.', ("InvalidArgument", why))
    return str(body["url"])


async def _part(request: Request) -> bytes:
    """The one file part of a multipart body (Azure names no field)."""
    try:
        form = await read_form(request, max_files=1, max_fields=4, max_part_size=MAX_BYTES + 1)
    except (MultiPartException, HTTPException):
        raise AzureError("The request body is not valid multipart/form-data.") from None
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        return await files[0].read() if files else b""
    finally:
        await form.close()


PATH = "/computervision/imageanalysis:segment"
_KEY = ("Ocp-Apim-Subscription-Key",)
ROUTES = (Route(PATH, base.endpoint(segment, base.header_key(*_KEY), error), methods=["POST"]),)


# -- a repeat answered by the ASGI front (cutout.api.front), with the route's own functions ----------------
async def _front_intake(api: Api, request: Request, headers: front.Headers, body: bytes) -> Intake | None:
    media = intake.media_type(headers.get(b"content-type", b"").decode("latin-1"))
    if media not in ("application/octet-stream", "multipart/form-data"):
        return None  # a URL (fetched, may change), or the route's 400
    try:
        mode = _mode(request)
        data = await _carried(request, media, min(MAX_BYTES, api.settings.max_upload_bytes))
    except AzureError:
        return None  # the route's 400
    return Intake(MODES[mode], "body", data)


def _front_fits(api: Api, job: Job, received: Intake, owner: str) -> bool:
    size = base.known_size(api, job.public_id)  # known once the route has checked this image
    return size is not None and _fits(*size)


def _front_respond(api: Api, job: Job, result: Result, request: Request, received: Intake) -> Response:
    return _answer(result.entry.data)


FACE = front.Face(
    path=PATH,
    reads=base.key_headers(*_KEY),
    key=base.raw_key(*_KEY),
    intake=_front_intake,
    respond=_front_respond,
    fits=_front_fits,
)
