"""The Upload API's one error shape, Cloudinary's: ``{"error": {"message": "..."}}`` with a status its SDKs
map to their own exceptions (400 BadRequest, 401 AuthorizationRequired, 403 NotAllowed, 404 NotFound,
409 AlreadyExists, 420 RateLimited, 500 GeneralError). A status outside that list would reach the SDK as
a bare ``Error``, so the engine's 413, 415 and 422 are answered as 400 with their message (and the Upload
API's calls answer 403 and 409 as 400 too: ``routes._UPLOAD_AS_400``)."""

from __future__ import annotations

from starlette.responses import JSONResponse

from grammar.errors import OriginError

#: Statuses Cloudinary's SDKs turn into their named exceptions.
MAPPED = frozenset({400, 401, 403, 404, 409, 420, 429, 500, 503})


class UploadError(Exception):
    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status if status in MAPPED else (400 if status < 500 else 500)
        self.message = message
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", **self.headers}
        return JSONResponse({"error": {"message": self.message}}, self.status, headers=headers)


def bad(message: str) -> UploadError:
    return UploadError(400, message)


def unauthorized(message: str) -> UploadError:
    return UploadError(401, message)


def not_found(public_id: str) -> UploadError:
    return UploadError(404, f"Resource not found - {public_id}")


def from_origin(exc: OriginError, parameter: str | None = None) -> UploadError:
    """The engine's or the fetcher's error with its own message (and the parameter it came from)."""
    message = exc.public if parameter is None else f"{parameter}: {exc.public}"
    # A 503's Retry-After goes along (the storage or Redis away): the client is told when to retry.
    retry = {"Retry-After": exc.headers["Retry-After"]} if "Retry-After" in exc.headers else None
    return UploadError(exc.status, message, headers=retry)
