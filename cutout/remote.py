"""The ``/image/fetch/`` delivery type: ``/[<cloud_name>/]image/fetch/[<transformations>/]<url>``.

The image at ``url`` is fetched through the guarded fetcher (``CUTOUT_FETCH_ALLOW``), stored by content
as the original ``fetched/<sha256>`` (in a bounded store: ``cache.transient``), and the request is then
an ordinary upload URL for that original: claimed, queued, rendered and cached by the same core, with
``e_background_removal`` too (which Cloudinary refuses on fetched images), and one mask per content
whichever way the image came. The URL's validators (ETag, Last-Modified) are kept, and the copy is
revalidated once it is older than ``CUTOUT_FETCH_TTL``.

The delivery URL's own query string belongs to the remote URL (``/image/fetch/http://h/a.png?token=abc``
fetches ``http://h/a.png?token=abc``; dropping it fetched another image), less the ``_a`` analytics
parameter Cloudinary's JavaScript SDK (@cloudinary/url-gen) appends to every delivery URL. The SDKs
themselves escape a remote URL's ``?`` and ``=`` into the path (``a.png%3Ftoken%3Dabc``), which is read
the same. Cloudinary ignores the query string of a fetch URL; a parameter is never ignored here.

>>> split_fetch_path("/demo/image/fetch/c_scale,w_100/https://example.org/a.jpg")
('/demo', 'c_scale,w_100', 'https://example.org/a.jpg')
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import unquote

import anyio.to_thread
import diskcache

from cache import OriginalsStore
from cache.transient import FETCHED
from cutout.fetch import FetchPolicy, NotModified, Validators, fetch, revalidate
from cutout.image_check import check_image
from grammar.errors import BadRequest, NotFound, Unauthorized
from grammar.path import split_signature
from grammar.signature import verify_fetch

FOLDER = FETCHED
#: The query parameter @cloudinary/url-gen adds to delivery URLs for Cloudinary's analytics.
SDK_ANALYTICS = "_a"
_MARK = "/image/fetch/"
_URL_START = re.compile(r"https?(:|%3A)", re.IGNORECASE)


def split_fetch_path(raw_path: str) -> tuple[str, str, str] | None:
    """(prefix with the cloud name, transformations, the remote URL) of a fetch path, else None."""
    prefix, mark, rest = raw_path.partition(_MARK)
    if not mark or prefix.count("/") > 1:
        return None
    segments = rest.split("/")
    for i, segment in enumerate(segments):
        if _URL_START.match(segment):
            url = unquote("/".join(segments[i:]))
            # A browser or proxy may fold "https://" into "https:/"; Cloudinary accepts both.
            url = re.sub(r"^(https?):/(?!/)", r"\1://", url, flags=re.IGNORECASE)
            return prefix, "/".join(segments[:i]), url
    raise BadRequest("A fetch URL ends with the image's http(s) URL: /image/fetch/[<transformations>/]<url>")


def fetch_query(query_string: str) -> str:
    """The delivery URL's query string, as written, for the remote URL: less the SDK's ``_a``.

    >>> fetch_query("token=abc&_a=BAMAABDE0&v=2")
    'token=abc&v=2'
    """
    return "&".join(p for p in query_string.split("&") if p and p.partition("=")[0] != SDK_ANALYTICS)


def with_query(url: str, query: str) -> str:
    """``url`` with ``query`` (from ``fetch_query``) added to its own.

    >>> with_query("http://h/a.png?x=1", "y=2")
    'http://h/a.png?x=1&y=2'
    """
    if not query:
        return url
    return f"{url}{'&' if '?' in url else '?'}{query}"


def fetch_signed(raw_path: str, components: str, secret: str | None, query: str = "") -> bool:
    """Whether a fetch path carries a good ``s--SIG--`` (checked here, as the path is written: the SDKs
    sign the remote URL, which the upload path it becomes no longer holds); a 401 for a bad one.
    ``query`` (``fetch_query``'s) is part of the remote URL, so of what must be signed: a signature of
    the path alone does not vouch for ``?anything`` added to it."""
    raw_url = with_query(raw_path.partition(_MARK)[2][len(components) + 1 :], query)
    signature, rest = split_signature([*components.split("/"), raw_url] if components else [raw_url])
    if signature is None:
        return False
    if not secret:
        raise Unauthorized(f"Signature s--{signature}-- cannot be checked: no API secret configured")
    transformation = "/".join(rest[:-1])
    # as signed, and as a browser or proxy may have folded its "//" (accepted as Cloudinary accepts it)
    written = {raw_url, re.sub(r"^(https?(?::|%3A))/(?!/)", r"\1//", raw_url, flags=re.IGNORECASE)}
    if not any(verify_fetch(signature, transformation, url, secret) for url in written):
        raise Unauthorized(f"Invalid signature s--{signature}-- for {transformation or 'no transformation'} "
                           f"of {raw_url[:200]}")  # fmt: skip
    return True


class RemoteOriginals:
    """Fetched images as originals, with their validators in a small diskcache beside the cache."""

    def __init__(
        self, originals: OriginalsStore, folder: Path, policy: FetchPolicy, ttl: float, max_pixels: int
    ) -> None:
        self.originals = originals
        self.max_pixels = max_pixels
        self.records = diskcache.Cache(str(folder))
        self.policy = policy
        self.ttl = ttl

    def close(self) -> None:
        self.records.close()

    async def public_id(self, url: str) -> str:
        """The original holding ``url``'s image: fetched now, revalidated, or as stored."""
        if not self.policy.allow:
            raise NotFound("Fetch URLs are off on this server (CUTOUT_FETCH_ALLOW)")
        key = hashlib.sha256(url.encode()).hexdigest()
        record = await anyio.to_thread.run_sync(self._held, key)
        now = time.time()
        if isinstance(record, dict):
            if now - record["checked_at"] < self.ttl:
                return str(record["public_id"])
            validators = Validators(record["etag"], record["last_modified"])
            fresh = await revalidate(url, validators, self.policy)
            if isinstance(fresh, NotModified):
                await self._remember(key, str(record["public_id"]), fresh.validators, now)
                return str(record["public_id"])
        else:
            fresh = await fetch(url, self.policy)
        public_id = await anyio.to_thread.run_sync(self._store, fresh.content)
        await self._remember(key, public_id, fresh.validators, now)
        return public_id

    def _held(self, key: str) -> object:
        """The URL's record while its image is still held (blocking): a fetched image is dropped from
        its bounded store (``cache.transient``) when room is needed, and is then fetched again."""
        record = self.records.get(key)
        if isinstance(record, dict):
            try:
                self.originals.locate(str(record["public_id"]))
            except NotFound:
                return None
        return record

    async def _remember(self, key: str, public_id: str, validators: Validators, now: float) -> None:
        record = {"public_id": public_id, "checked_at": now, **asdict(validators)}
        await anyio.to_thread.run_sync(self.records.set, key, record)

    def _store(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        public_id = f"{FOLDER}/{digest}"
        try:
            self.originals.locate(public_id)
        except NotFound:  # new content; stored content is never rewritten (renders in flight keep theirs)
            # Checked before the write (413 past CUTOUT_MAX_PIXELS, 422 truncated): never kept when refused.
            checked = check_image(data, self.max_pixels)
            self.originals.write(public_id, checked.format, data, version=digest)
        return public_id
