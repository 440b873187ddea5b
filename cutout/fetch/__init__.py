"""The guarded fetcher: download an image by URL safely by construction (issue 12).

Shared by everything that reaches out by URL: ``image_url`` and background images of the HTTP API,
``file=<url>`` uploads, ``/image/fetch/``, and webhook targets (``cutout.webhooks``). See
``policy`` (what is allowed), ``guard`` (resolve once, pin the connection), ``fetcher`` (redirects,
limits, type checks) and ``errors`` (the stable codes).
"""

from cutout.fetch.errors import (
    DownloadTimeout,
    FailedDownload,
    FetchError,
    FileTooLarge,
    ForbiddenUrl,
    InvalidFileType,
    InvalidUrl,
)
from cutout.fetch.fetcher import Fetched, NotModified, Validators, fetch, revalidate
from cutout.fetch.guard import GuardedClient, PinnedTransport, Resolver, resolve
from cutout.fetch.policy import (
    FetchPolicy,
    IPAddress,
    check_address,
    check_url,
    host_allowed,
    parse_url,
    refusal,
)

__all__ = [
    "DownloadTimeout",
    "FailedDownload",
    "FetchError",
    "FetchPolicy",
    "Fetched",
    "FileTooLarge",
    "ForbiddenUrl",
    "GuardedClient",
    "IPAddress",
    "InvalidFileType",
    "InvalidUrl",
    "NotModified",
    "PinnedTransport",
    "Resolver",
    "Validators",
    "check_address",
    "check_url",
    "fetch",
    "host_allowed",
    "parse_url",
    "refusal",
    "resolve",
    "revalidate",
]
