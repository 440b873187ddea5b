"""What a fetch can fail with: one class per stable code, each an ``OriginError`` with its HTTP status.

The codes are the ones the HTTP API's error table uses (issue 12); ``/image/fetch/`` renders them
through the app's one ``OriginError`` handler like any other client error. The public message names the
problem and the URL's host, never a resolved internal address's neighbours or a stack trace.
"""

from __future__ import annotations

from grammar.errors import OriginError


class FetchError(OriginError):
    """Base of every fetch failure; ``code`` is stable and machine-readable."""

    code = "failed_image_download"
    status = 400
    default_public = "The image could not be downloaded"


class ForbiddenUrl(FetchError):
    """Refused by policy before (or instead of) connecting: scheme, allow-list, address, credentials."""

    code = "forbidden_url"
    status = 403
    default_public = "This URL may not be fetched"


class InvalidUrl(ForbiddenUrl):
    """Not a URL at all (no scheme or host, a host that is no name or address, ``0177.0.0.1``): the
    client's mistake, a 400 naming the parameter; still refused before connecting, as ForbiddenUrl is."""

    code = "invalid_parameter"
    status = 400
    default_public = "Not a valid URL"


class FailedDownload(FetchError):
    """The server could not be reached, answered an error, redirected too often or in a loop."""

    code = "failed_image_download"
    status = 400

    def __init__(self, public: str, *, upstream_status: int | None = None, detail: str | None = None) -> None:
        super().__init__(public, detail=detail)
        self.upstream_status = upstream_status


class DownloadTimeout(FailedDownload):
    """Connecting took longer than the connect timeout, or the whole fetch longer than the total one."""

    code = "download_timeout"
    status = 504


class FileTooLarge(FetchError):
    code = "file_too_large"
    status = 413
    default_public = "The image is larger than the download limit"


class InvalidFileType(FetchError):
    """The Content-Type is not an image's, or the first bytes are not a known image format."""

    code = "invalid_file_type"
    status = 415
    default_public = "The URL does not point to a supported image"
