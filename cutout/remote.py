"""The ``/image/fetch/`` delivery type: ``/[<cloud_name>/]image/fetch/[<transformations>/]<url>``.

The image at ``url`` is fetched through the guarded fetcher (``CUTOUT_FETCH_ALLOW``), stored by content
as the original ``fetched/<sha256>`` (in a bounded store: ``cache.transient``), and the request is then
an ordinary upload URL for that original: claimed, queued, rendered and cached by the same core, with
``e_background_removal`` too (which Cloudinary refuses on fetched images), and one mask per content
whichever way the image came. The URL's validators (ETag, Last-Modified) are kept, and the copy is
revalidated once it is older than ``CUTOUT_FETCH_TTL``. An image that cannot be downloaded is a missing
original: a default image (``d_``) stands in for it, as on upload URLs (``upload_request``).

The delivery URL's own query string is ignored, as Cloudinary ignores it on fetch URLs (a cache-busting
``?v=2`` or @cloudinary/url-gen's ``_a`` changes nothing, and a signed URL stays valid with one): a remote
URL's own query is escaped into the path, as the SDKs write it (``a.png%3Ftoken%3Dabc``).

>>> split_fetch_path("/demo/image/fetch/c_scale,w_100/https://example.org/a.jpg")
('/demo', 'c_scale,w_100', 'https://example.org/a.jpg')
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio.to_thread
import diskcache

from cache import OriginalsStore
from cache.transient import FETCHED
from cutout.fetch import FailedDownload, FetchPolicy, NotModified, Validators, fetch, revalidate
from cutout.image_check import check_image
from cutout.resolve import Parsed, Resolver
from grammar.errors import BadRequest, NotFound, Unauthorized
from grammar.path import is_control, plain_component, split_signature, versioned_source
from grammar.signature import verify_fetch
from transform.ops.flags import MAX_FILENAME

FOLDER = FETCHED
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


async def upload_request(
    raw_path: str, resolver: Resolver, remote: RemoteOriginals, secret: str | None
) -> tuple[str, bool, Parsed] | None:
    """A fetch path as the upload request that delivers its image, else None (not a fetch path): the
    upload path, whether the fetch path's signature was checked, and the path parsed and compiled.

    The URL's signature, cloud name and transformation (and strict mode) are checked before anything is
    fetched. A download that fails (unreachable, timed out, or answered 404 or another error) leaves a
    URL with a default image (d_) the request of a missing original: the default is delivered, with the
    failure in X-Cld-Error; without d_ the failure is the answer.
    """
    fetched = split_fetch_path(raw_path)
    if fetched is None:
        return None
    prefix, components, url = fetched
    vouched = fetch_signed(raw_path, components, secret)
    checked = resolver.check_fetch(prefix, components, signed=vouched)
    name = download_name(url)
    try:
        public_id = await remote.public_id(url)
        parsed = checked.of(public_id, name=name)
    except FailedDownload as failed:
        if checked.plan.default_image is None:
            raise
        public_id = unavailable_id(url)
        parsed = checked.of(public_id, missing=failed, name=name)
    source = versioned_source(public_id)  # v1: the folder is never read as a component
    return f"{prefix}/image/upload/{components}{'/' if components else ''}{source}", vouched, parsed


def download_name(url: str) -> str:
    """What a download of a fetched image (fl_attachment without a name) is called: the remote file's
    name, the last segment of its URL's path without extension, as Cloudinary names a fetched asset after
    its URL (not the content hash the copy is stored under); "image" when the path has none.

    >>> download_name("https://example.org/photos/caf%C3%A9.large.jpg?size=2")
    'café.large'
    >>> download_name("https://example.org/")
    'image'
    """
    segment = unquote(urlsplit(url).path.rpartition("/")[2])
    stem = segment.rpartition(".")[0] if "." in segment else segment
    # What an fl_attachment:<name> may not hold (transform/ops/flags.py) is not taken from a URL either.
    stem = "".join("_" if is_control(c) or c in "/\\" else c for c in stem)[:MAX_FILENAME].strip()
    return stem if stem not in ("", ".", "..") else "image"


def unavailable_id(url: str) -> str:
    """The public id a fetch URL whose image could not be downloaded is delivered under: an original that
    never exists (fetched images are named by their content's hash, not a URL's), so the request resolves
    as an upload URL whose original is missing: its default image (d_) stands in, as Cloudinary delivers
    the default when a fetched image is missing, and a queued job (a worker prepares the request again)
    finds the same."""
    return f"{FOLDER}/unavailable/{hashlib.sha256(url.encode()).hexdigest()}"


def fetch_signed(raw_path: str, components: str, secret: str | None) -> bool:
    """Whether a fetch path carries a good ``s--SIG--`` (checked here, as the path is written: the SDKs
    sign the remote URL, which the upload path it becomes no longer holds); a 401 for a bad one."""
    raw_url = raw_path.partition(_MARK)[2][len(components) + 1 :]
    signature, rest = split_signature([*components.split("/"), raw_url] if components else [raw_url])
    if signature is None:
        return False
    if not secret:
        raise Unauthorized(f"Signature s--{signature}-- cannot be checked: no API secret configured")
    transformation = "/".join(rest[:-1])
    # as signed, and as a browser or proxy may have folded its "//" (accepted as Cloudinary accepts it)
    written = {raw_url, re.sub(r"^(https?(?::|%3A))/(?!/)", r"\1//", raw_url, flags=re.IGNORECASE)}
    # the transformation as written, and as its components are read (grammar/path.py plain_component:
    # a proxy that encodes the $ of an SDK-signed $w_300 asks for the same thing)
    plain = "/".join(plain_component(segment) for segment in rest[:-1])
    readings = dict.fromkeys([transformation, plain])
    if not any(verify_fetch(signature, form, url, secret) for form in readings for url in written):
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
