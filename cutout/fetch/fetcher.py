"""Fetch one image by URL: every redirect re-checked, the body bounded while it streams, and its type
checked twice (the declared Content-Type, then the first bytes).

>>> import asyncio
>>> asyncio.run(fetch("http://example.org/a.jpg", FetchPolicy()))
Traceback (most recent call last):
...
cutout.fetch.errors.ForbiddenUrl: Fetching URLs is turned off on this server (CUTOUT_FETCH_ALLOW is empty)
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

import anyio
import httpx

from cutout.fetch.errors import DownloadTimeout, FailedDownload, FileTooLarge, InvalidFileType
from cutout.fetch.guard import GuardedClient, Resolver, resolve, timeout_error, transport_error
from cutout.fetch.policy import FetchPolicy, parse_url
from transform.decode import sniff

REDIRECTS = (301, 302, 303, 307, 308)
#: Enough for every signature ``sniff`` knows (AVIF/HEIC brands end at byte 12).
SNIFF_BYTES = 16


@dataclass(frozen=True)
class Validators:
    """What a later conditional request sends to ask "changed?"; store them with the image."""

    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def of(cls, headers: httpx.Headers) -> Validators:
        return cls(headers.get("etag"), headers.get("last-modified"))

    def conditional_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class Fetched:
    url: str  # the final URL, after redirects
    content: bytes
    format: str  # as sniffed from the bytes: jpg, png, gif, webp, avif, heic, tiff
    content_type: str  # as declared by the server (its media type, lower case)
    validators: Validators
    redirects: tuple[str, ...] = field(default=())  # the URLs redirected through, in order
    address: str = ""  # the address connected to for the final URL


@dataclass(frozen=True)
class NotModified:
    """A revalidation's answer when the stored copy is still current (HTTP 304)."""

    url: str
    validators: Validators  # the ones asked with, updated by any the server sent


async def fetch(
    url: str, policy: FetchPolicy, *, resolver: Resolver = resolve, verify: ssl.SSLContext | bool = True
) -> Fetched:
    """The image at ``url``, or a FetchError subclass saying why not."""
    result = await _get(url, policy, None, resolver, verify)
    assert isinstance(result, Fetched)  # no validators were sent, so no 304 is accepted
    return result


async def revalidate(
    url: str,
    validators: Validators,
    policy: FetchPolicy,
    *,
    resolver: Resolver = resolve,
    verify: ssl.SSLContext | bool = True,
) -> Fetched | NotModified:
    """A conditional re-fetch: NotModified when the server says the copy with ``validators`` is current,
    else the new image (checked like any fetch)."""
    return await _get(url, policy, validators, resolver, verify)


async def _get(
    url: str,
    policy: FetchPolicy,
    validators: Validators | None,
    resolver: Resolver,
    verify: ssl.SSLContext | bool,
) -> Fetched | NotModified:
    current = parse_url(url)
    try:
        # The total deadline covers DNS, every redirect and the body: read timeouts alone never end a
        # server that sends a byte every few seconds.
        with anyio.fail_after(policy.timeout):
            async with GuardedClient(policy, resolver=resolver, verify=verify) as client:
                return await _follow(client, current, policy, validators)
    except TimeoutError:
        raise DownloadTimeout(
            f"Downloading from {current.host} took longer than {policy.timeout:g} s"
        ) from None


async def _follow(
    client: GuardedClient, url: httpx.URL, policy: FetchPolicy, validators: Validators | None
) -> Fetched | NotModified:
    headers = {"Accept": "image/*", "Accept-Encoding": "identity"}
    if validators is not None:
        headers.update(validators.conditional_headers())
    visited: list[str] = []
    while True:
        visited.append(str(url))
        response = await client.open("GET", url, headers=headers)
        try:
            if response.status_code in REDIRECTS and "location" in response.headers:
                url = _next_hop(url, response.headers["location"], visited, policy)
                continue
            if response.status_code == 304 and validators is not None:
                fresh = Validators.of(response.headers)  # a 304 may refresh one validator, or none
                kept = Validators(
                    fresh.etag or validators.etag, fresh.last_modified or validators.last_modified
                )
                return NotModified(str(url), kept)
            if response.status_code != 200:
                raise FailedDownload(
                    f"{url.host} answered {response.status_code} {response.reason_phrase}".rstrip(),
                    upstream_status=response.status_code,
                )
            content_type = _check_headers(response, url.host, policy)
            content, fmt = await _read_body(response, url.host, policy)
            return Fetched(
                url=str(url),
                content=content,
                format=fmt,
                content_type=content_type,
                validators=Validators.of(response.headers),
                redirects=tuple(visited[:-1]),
                address=client.address(url),
            )
        finally:
            await response.aclose()


def _next_hop(url: httpx.URL, location: str, visited: list[str], policy: FetchPolicy) -> httpx.URL:
    if len(visited) > policy.max_redirects:
        raise FailedDownload(f"Too many redirects (more than {policy.max_redirects}) from {visited[0]}")
    try:
        target = url.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise FailedDownload(f"{url.host} redirected to an invalid URL", detail=str(exc)) from None
    if str(target) in visited:
        raise FailedDownload(f"Redirect loop: {target} redirects back to itself")
    return target  # checked by GuardedClient.open like the first URL: scheme, allow-list, address


def _check_headers(response: httpx.Response, host: str, policy: FetchPolicy) -> str:
    declared = str(response.headers.get("content-type", ""))
    media = declared.split(";")[0].strip().lower()
    if not (media.startswith("image/") or media == "application/octet-stream"):
        raise InvalidFileType(
            f"{host} sent {media or 'no Content-Type'}, not an image (image/* or application/octet-stream)"
        )
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Asked for identity; decoding a compressed body would let a few KB expand past the limit.
        raise InvalidFileType(f"{host} sent a {encoding}-encoded body; images are fetched unencoded")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > policy.max_bytes:
        raise FileTooLarge(_too_large(host, policy, f"{int(length)} bytes declared"))
    return media


async def _read_body(response: httpx.Response, host: str, policy: FetchPolicy) -> tuple[bytes, str]:
    body = bytearray()
    fmt: str | None = None
    try:
        async for chunk in response.aiter_raw():
            if len(body) + len(chunk) > policy.max_bytes:
                raise FileTooLarge(_too_large(host, policy, "the body went past it"))
            body += chunk
            if fmt is None and len(body) >= SNIFF_BYTES:
                fmt = _sniffed(bytes(body[:SNIFF_BYTES]), host)  # refuse a non-image before the rest
    except httpx.TimeoutException as exc:
        raise timeout_error(host, exc) from None
    except httpx.HTTPError as exc:
        raise transport_error(host, exc) from None
    if not body:
        raise InvalidFileType(f"{host} sent an empty body, not an image")
    return bytes(body), fmt or _sniffed(bytes(body), host)


def _sniffed(head: bytes, host: str) -> str:
    fmt: str | None = sniff(head)
    if fmt is None:
        raise InvalidFileType(
            f"{host} sent data that is not a JPEG, PNG, GIF, WebP, AVIF, HEIC or TIFF image"
        )
    return fmt


def _too_large(host: str, policy: FetchPolicy, how: str) -> str:
    return f"The image at {host} is larger than the download limit of {policy.max_bytes} bytes ({how})"
