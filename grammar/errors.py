"""The one error model of cutout.

Every failure a client can cause is an ``OriginError`` subclass carrying an HTTP status and a
public message (sent as ``X-Cld-Error`` and as the body). Lower layers raise these; the app has a
single handler for the base class. Internal details go to ``detail`` (logged, never sent).
"""

from __future__ import annotations

from collections.abc import Mapping


class OriginError(Exception):
    status: int = 500
    default_public: str = "Internal error"

    def __init__(
        self,
        public: str | None = None,
        *,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.public = public or self.default_public
        self.detail = detail or self.public
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.public)


class BadRequest(OriginError):
    status = 400
    default_public = "Invalid transformation"


class TransformationSyntaxError(BadRequest):
    """The path or transformation text does not have Cloudinary's shape."""


class UnknownParameter(BadRequest):
    def __init__(self, key: str, *, hint: str = "") -> None:
        super().__init__(f"Invalid transformation parameter - {key}{hint}")
        self.key = key


class InvalidArgument(BadRequest):
    """A known parameter with a bad value: names the parameter, the value and what was expected."""

    def __init__(self, key: str, value: str, expected: str) -> None:
        super().__init__(f"Invalid transformation parameter - {key}_{value}: {expected}")
        self.key = key
        self.value = value
        self.expected = expected


class Unauthorized(OriginError):
    status = 401
    default_public = "Unauthorized"


class NotFound(OriginError):
    status = 404
    default_public = "Resource not found"


class TooLarge(OriginError):
    status = 413
    default_public = "Image is too large"


class Undecodable(OriginError):
    status = 422
    default_public = "Image cannot be decoded"


class StillGenerating(OriginError):
    status = 423
    default_public = "Derived image is being generated; retry later"

    def __init__(self, retry_after: int = 2, public: str | None = None) -> None:
        super().__init__(public, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class NotAvailable(OriginError):
    """A feature that needs a part this server does not have (for example no segmentation model)."""

    status = 501
    default_public = "Not implemented"


class Overloaded(OriginError):
    status = 503
    default_public = "Server is busy; retry later"

    def __init__(self, retry_after: int = 1, public: str | None = None) -> None:
        super().__init__(public, headers={"Retry-After": str(retry_after)})


class RenderTimeout(OriginError):
    """A render stopped at the per-render time budget (``CUTOUT_RENDER_TIMEOUT``). 503, as imgproxy
    answers its ``IMGPROXY_TIMEOUT``: the limit is this server's capacity, not a mistake in the URL (a 4xx
    would be cached by CDNs and blame the URL, which may render on a faster or idler server), and 504 is
    what a gateway in front says when it gave up waiting for us."""

    status = 503
    default_public = "Rendering took too long and was stopped"

    def __init__(self, seconds: float, retry_after: int) -> None:
        super().__init__(
            f"Rendering stopped at the time limit of {seconds:g} s per image; "
            "a smaller image or lighter effects (a smaller blur) render within it",
            headers={"Retry-After": str(retry_after)},
        )


class ClientGone(OriginError):
    """The client closed the connection while its render ran: the render was abandoned. Nobody receives
    the answer; 499 is nginx's "client closed request", as in the logs and metrics."""

    status = 499
    default_public = "Client closed the request"
