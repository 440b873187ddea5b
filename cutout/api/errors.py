"""The API's one error shape: ``{"errors": [{"code", "title", "detail", "parameter"}]}`` with stable codes.

Every failure a client can cause becomes an ``ApiError`` with one of ``CODES``; the engine's and the
fetcher's ``OriginError``s are translated here, in one place, so the delivery URLs keep their plain-text
errors while the API answers JSON."""

from __future__ import annotations

import difflib
from collections.abc import Collection
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from cutout import public_url
from cutout.fetch import FetchError
from grammar.errors import OriginError

#: code -> (HTTP status, title). The OpenAPI document lists these; a test checks it lists them all.
CODES: dict[str, tuple[int, str]] = {
    "missing_source": (400, "No image given"),
    "multiple_sources": (400, "More than one image given"),
    "invalid_parameter": (400, "Invalid parameter"),
    "invalid_body": (400, "Malformed request body"),
    "failed_image_download": (400, "The image could not be downloaded"),
    "auth_failed": (401, "Missing or invalid API key"),
    "forbidden_url": (403, "This URL may not be fetched"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "task_not_finished": (409, "The task to chain onto has not finished"),
    "file_too_large": (413, "File too large"),
    "resolution_too_high": (413, "Resolution too high"),
    "invalid_file_type": (415, "Unsupported file type"),
    "failed_to_read_image": (422, "The image cannot be read"),
    "rate_limited": (429, "Too many requests"),
    "internal_error": (500, "Internal error"),
    "model_unavailable": (501, "Background removal is not available"),
    "queue_full": (503, "Queue full"),
    "still_processing": (503, "Still processing"),
    "download_timeout": (504, "The image download timed out"),
}


#: The longest ``detail`` and ``parameter`` an error carries. They quote what the client sent (an unknown
#: field's name, a malformed value), and a JSON body may send megabytes of either: it was sent back whole
#: (twice, for a name), the answer to a 5 MB key being 10 MB.
MAX_DETAIL = 1000
MAX_PARAMETER = 100


def bounded(text: str, limit: int) -> str:
    """``text``, or its start and end around a note of what was left out: the start says what is wrong,
    the end often how to put it right."""
    if len(text) <= limit:
        return text
    tail = limit // 4
    head = limit - tail - 40  # the note's room: 32 characters and the count's digits
    note = f" [... {len(text) - head - tail} characters left out ...] "
    return text[:head] + note + text[-tail:]


def unknown_parameter(name: str, known: Collection[str]) -> str:
    """The message for a field by an unknown name, with the known name it is closest to, if one is close
    (``chanels``: a typo, which the client otherwise has to find by reading the whole list)."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return f"unknown parameter {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


class ApiError(Exception):
    def __init__(
        self, code: str, detail: str, *, parameter: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        detail = bounded(detail, MAX_DETAIL)
        super().__init__(detail)
        self.code = code
        self.status, self.title = CODES[code]
        self.detail = detail
        self.parameter = None if parameter is None else bounded(parameter, MAX_PARAMETER)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error = {"code": self.code, "title": self.title, "detail": self.detail, "parameter": self.parameter}
        return {"errors": [error]}

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", **self.headers}
        return JSONResponse(self.body(), self.status, headers=headers)


def invalid(parameter: str, detail: str) -> ApiError:
    return ApiError("invalid_parameter", detail, parameter=parameter)


_BY_STATUS = {
    400: "invalid_parameter", 401: "auth_failed", 404: "not_found", 413: "resolution_too_high",
    415: "invalid_file_type", 422: "failed_to_read_image", 501: "model_unavailable", 503: "queue_full",
}  # fmt: skip


def from_origin(exc: OriginError, *, parameter: str | None = None) -> ApiError:
    """The engine's or the fetcher's error in the API's shape (its public message as the detail)."""
    if isinstance(exc, FetchError):
        return ApiError(exc.code, exc.public, parameter=parameter or "image_url", headers=dict(exc.headers))
    code = _BY_STATUS.get(exc.status, "internal_error")
    return ApiError(
        code,
        exc.public,
        parameter=parameter if code == "invalid_parameter" else None,
        headers=dict(exc.headers),
    )


def public_base(conn: HTTPConnection, public: str | None) -> str:
    """``cutout.public_url.public_base`` with a bad ``Host`` as the API's 400: where clients reach delivery,
    for every delivery URL an API answer carries (the vendor adapters' result URLs too)."""
    try:
        return public_url.public_base(conn, public)
    except public_url.BadHost as exc:
        raise ApiError("invalid_parameter", str(exc), parameter="Host") from None


def request_base(conn: HTTPConnection) -> str:
    """Where this request came to, for URLs that must reach this server rather than a CDN in front of
    delivery (an upload URL); a bad ``Host`` as ``public_base``'s."""
    return public_base(conn, None)
