"""The originals store and a second blob tier on S3-compatible object storage (boto3).

``S3Originals`` (``CUTOUT_ORIGINALS=s3://bucket/prefix``): an original is the object
``<prefix><public_id>.<ext>``. A lookup is one listing of ``<prefix><public_id>.`` (every candidate
extension in one request, never one HEAD per extension); the object's ETag is its version, so a
50-megapixel original is fingerprinted without reading it. Its bytes are fetched only when a render needs
them (``local``), with ``If-Match: <etag>``: a replaced object answers 412 instead of new bytes, so a
render never stores the new content under the old content's key. Fetched originals are kept in a bounded
local folder (least recently used out first), named by key and ETag, so a file there never changes.

``S3Blobs`` (``CUTOUT_SHARED_CACHE=s3://bucket/prefix``): derivatives and masks as objects, each a packed
``Entry``; a PUT is atomic, so a reader sees the whole entry or none. ``TieredBlobs`` puts it behind the
local diskcache: a derivative made on one replica is a hit on every other.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from cachetools import LRUCache

from cache.blobs import DiskBlobs, Entry
from cache.folder import (
    _RANK,
    _UNREADABLE,
    ASSET_RECORDS,
    RECORD_SUFFIX,
    RECORDS,
    Warned,
    _valid,
    pick,
    several_formats,
)
from cache.hotfiles import HotFiles
from cache.seams import Located
from cache.transient import is_transient
from grammar.errors import BadRequest, NotFound, Overloaded
from grammar.image_formats import EXTENSIONS
from transform.files import replacing

log = logging.getLogger("cutout.s3")

#: How long a confirmed ETag is trusted by ``current`` (run on every memoised hit): one HEAD per original
#: per second at most, instead of one per request.
RECHECK_SECONDS = 1.0
#: How often /readyz may ask the storage whether it answers (``S3Endpoint.problem``).
PROBE_SECONDS = 5.0
#: An original's version token is this prefix and its ETag, the MD5 of its bytes (one plain PUT):
#: ``version`` and ``fingerprint`` make it, ``write`` reads the MD5 back out of it for Content-MD5.
_VERSION = "s3:"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket/some/prefix`` -> bucket and ``some/prefix/`` (always ending in ``/`` when set)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"expected s3://bucket[/prefix], got {url!r}")
        prefix = parts.path.strip("/")
        return cls(parts.netloc, prefix + "/" if prefix else "")


class StorageUnavailable(Overloaded):
    """503: object storage did not answer in time; the client retries."""

    def __init__(self) -> None:
        super().__init__(2, public="Storage is unavailable; retry later")


def client(endpoint: str | None = None, *, timeout: float = 5.0, pool: int = 32) -> Any:
    """A boto3 S3 client: endpoint from ``endpoint`` (CUTOUT_S3_ENDPOINT) or AWS_ENDPOINT_URL, region and
    credentials from the usual AWS_* variables and files. Timeouts are bounded and retries few, so a
    stalled storage turns into a 503 within about ``2 * timeout`` seconds instead of holding a thread."""
    import boto3
    from botocore.config import Config

    # No CRC32 of every body botocore sends unless an operation requires one: an original written with
    # the MD5 its upload already computed carries it as Content-MD5, which the storage checks (0.6-0.8 ms
    # of CPU less per 2 MB PUT, measured against SeaweedFS); responses are still validated.
    # Two tries in all: botocore's ``max_attempts`` counts the retries after the first (it made three,
    # so a stalled storage held a request for three timeouts), ``total_max_attempts`` the tries.
    config = Config(connect_timeout=timeout, read_timeout=timeout, max_pool_connections=pool,
                    retries={"total_max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"},
                    request_checksum_calculation="when_required")
    return boto3.session.Session().client("s3", endpoint_url=endpoint or None, config=config)


class S3Endpoint:
    """One S3 endpoint's client and whether it answers, shared by every store on it (the originals and
    the shared cache of ``cutout.backends``). A call that got no answer marks the endpoint down for all
    of them: one request then meets at most one failed call (two tries of the timeout), where a down
    state per store let each store's call wait out the whole timeout in turn (the shared cache's GET, the
    original's HEAD, the shared cache's PUT: three in a row)."""

    def __init__(self, s3: Any, *, timeout: float = 5.0) -> None:
        self.s3 = s3
        # Long enough to outlast what a request does after its failed call (at most 2 tries of the
        # timeout): its render, then its second-tier PUT, which is skipped rather than tried again.
        self.pause = 4 * timeout
        self._down_until = 0.0
        self._errors = _errors()
        self._probed: dict[str, tuple[float, str | None]] = {}  # bucket -> when, and what was wrong

    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def failed(self, exc: Exception) -> None:
        """After ``exc`` from a call: no answer at all (refused, timed out), not an error the storage
        sent, marks the endpoint down for ``pause`` seconds."""
        if not _code(exc):
            self._down_until = time.monotonic() + self.pause

    def problem(self, bucket: str, *, every: float = PROBE_SECONDS) -> str | None:
        """What is wrong with reaching ``bucket`` (None: nothing), for /readyz: one HEAD of the bucket at
        most every ``every`` seconds, so a busy health checker never adds load on the storage. While the
        endpoint is marked down it is not asked at all."""
        now = time.monotonic()
        if self.down():
            return "does not answer (skipped for a while after a call timed out)"
        known = self._probed.get(bucket)
        if known is not None and now - known[0] < every:
            return known[1]
        self._probed[bucket] = (now, None)  # at once: concurrent checks meanwhile read this, not S3
        try:
            self.s3.head_bucket(Bucket=bucket)
            found = None
        except self._errors as exc:
            self.failed(exc)
            found = f"does not answer ({exc})" if not _code(exc) else f"answers {_code(exc)}"
        self._probed[bucket] = (time.monotonic(), found)
        return found


# What S3 answers for a key it does not know or a signature made with the wrong secret: no retry and no
# other bucket helps, every request would fail the same way.
_CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch")


def missing_bucket(url: str, endpoint: str | None = None, *, timeout: float = 5.0) -> str | None:
    """The bucket of ``url`` when the storage answers that it does not exist, else None (it exists, or
    the storage does not answer now: a start before the storage is up is not refused for that)."""
    location = S3Location.parse(url)
    try:
        client(endpoint, timeout=timeout).head_bucket(Bucket=location.bucket)
    except _errors() as exc:
        if _missing(exc) or _code(exc) == "NoSuchBucket":
            return location.bucket
    return None


def refused_credentials(url: str, endpoint: str | None = None, *, timeout: float = 5.0) -> str | None:
    """The storage's error code when it refuses the credentials themselves (an unknown access key, a
    wrong secret), else None. A HEAD's 403 has no body to tell that from a policy that only denies the
    HEAD, so this GETs a key that is not there: its error names the cause, and needs only GetObject."""
    location = S3Location.parse(url)
    try:
        client(endpoint, timeout=timeout).get_object(Bucket=location.bucket,
                                                     Key=f"{location.prefix}.cutout-start-check")
    except _errors() as exc:
        if _code(exc) in _CREDENTIAL_CODES:
            return _code(exc)
    return None


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _missing(exc: Exception) -> bool:
    return _code(exc) in ("404", "NoSuchKey", "NotFound")


def _errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError


def _stamp(found: Located) -> tuple[str, str]:
    """An S3 original's stamp: its key and the ETag it had when located."""
    key, etag = cast(tuple[str, str], found.stamp)
    return key, etag


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class S3Originals:
    """The ``OriginalsStore`` of a bucket and prefix."""

    def __init__(self, url: str, cache_dir: str | Path, *, endpoint: str | None = None,
                 cache_size: int = 2 << 30, s3: Any = None, timeout: float = 5.0,
                 at: S3Endpoint | None = None) -> None:
        self.location = S3Location.parse(url)
        # After a request that did not get through, the endpoint counts as down a while (``at``, shared
        # with the shared cache on it): lookups answer from what was located before, or 503 at once,
        # instead of each holding a thread for the whole timeout (that would exhaust the thread pool).
        self.at = at or S3Endpoint(s3 if s3 is not None else client(endpoint, timeout=timeout),
                                   timeout=timeout)
        self.s3 = self.at.s3
        self.hot = HotFiles(Path(cache_dir), cache_size)
        self._checked: LRUCache[str, tuple[str, float]] = LRUCache(65536)  # key -> (etag, when confirmed)
        # public id -> (found, when listed): every size of one original within a second costs one listing,
        # as the folder store's cached directory listings do. Misses are never kept: a new upload is
        # found at once.
        self._located: LRUCache[str, tuple[Located, float]] = LRUCache(65536)
        self._errors = _errors()
        # key -> (etag, LastModified as a POSIX time), from the listing that located it: ``modified``.
        self._modified: LRUCache[str, tuple[str, float]] = LRUCache(65536)
        # public id -> (its objects and ETags, the extension chosen) for an id stored in several formats
        # (``pick``): its record is read once per set of objects, not once per listing.
        self._chosen: LRUCache[str, tuple[tuple[tuple[str, str], ...], str]] = LRUCache(4096)
        self._warned = Warned()

    def _key(self, public_id: str, ext: str) -> str:
        return f"{self.location.prefix}{public_id}.{ext}"

    def forget(self, public_id: str) -> None:
        self._located.pop(public_id, None)
        self._chosen.pop(public_id, None)

    def locate(self, public_id: str, *, what: str = "Resource not found - {}") -> Located:
        missing = partial(NotFound, what.format(public_id))  # made where raised: see FolderOriginals.locate
        if not _valid(public_id):
            raise missing()
        known = self._located.get(public_id)
        if known is not None and time.monotonic() - known[1] <= RECHECK_SECONDS:
            return known[0]
        if self.at.down():
            if known is not None:  # storage away: what was there a moment ago (cached results still serve)
                return known[0]
            raise StorageUnavailable()
        start = f"{self.location.prefix}{public_id}."
        try:
            listed = self.s3.list_objects_v2(Bucket=self.location.bucket, Prefix=start, MaxKeys=100)
        except self._errors as exc:
            if _code(exc) == "NoSuchBucket":
                raise missing() from None
            log.warning("listing %s: %s", start, exc)
            self.at.failed(exc)
            if not _code(exc) and known is not None:  # no answer at all: what was there a moment ago
                return known[0]
            raise StorageUnavailable() from exc
        candidates: list[tuple[int, str, str, Any]] = []
        unreadable = ""
        for item in listed.get("Contents", []):
            ext = item["Key"][len(start):]
            if "/" in ext:
                continue
            if ext.lower() in _UNREADABLE:
                unreadable = ext
            rank = _RANK.get(ext)
            if rank is not None:
                candidates.append((rank, ext, item["ETag"], item.get("LastModified")))
        if not candidates:
            if unreadable:
                raise BadRequest(f"Unsupported original format .{unreadable} - {public_id}: cutout reads "
                                 f"{', '.join(EXTENSIONS)} originals")
            raise missing()
        candidates.sort(key=lambda c: c[0])
        _, ext, etag, modified = candidates[0]
        if len(candidates) > 1 and several_formats([c[1] for c in candidates]):
            ext = self._pick(public_id, candidates)
            _, ext, etag, modified = next(c for c in candidates if c[1] == ext)
        key = start + ext
        now = time.monotonic()
        self._checked[key] = (etag, now)
        if isinstance(modified, datetime):
            self._modified[key] = (etag, modified.timestamp())
        found = Located(public_id, self.hot.path(key, etag, ext), (key, etag))
        self._located[public_id] = (found, now)
        return found

    def _pick(self, public_id: str, candidates: list[tuple[int, str, str, Any]]) -> str:
        """The extension of the object that is the original of an id stored in several formats (``pick``:
        the format its asset record names, else the first in the extension order), as the folder chooses."""
        objects = tuple((ext, etag) for _, ext, etag, _ in candidates)
        known = self._chosen.get(public_id)
        if known is not None and known[0] == objects:
            return known[1]
        try:
            record = self.get_record(f"{ASSET_RECORDS}/{public_id}")
        except ValueError:  # not a name records take: no record
            record = None
        name = pick(public_id, [f"{public_id.rpartition('/')[2]}.{ext}" for ext, _ in objects], record,
                    self._warned)
        ext = name.rpartition(".")[2]
        self._chosen[public_id] = (objects, ext)
        return ext

    def version(self, found: Located) -> str:
        key, etag = _stamp(found)
        return _VERSION + str(etag).strip('"')

    def _head(self, key: str) -> tuple[str, float]:
        """One HEAD of ``key``: its ETag and LastModified, kept for both readers of them, ``current``
        (the ETag, confirmed now) and ``modified`` (the time, under that ETag: an object that changes
        gets another, so the time is never read for content it was not said of). A request that asks
        both then costs one HEAD, not one each. Storage errors are the caller's to handle."""
        head = self.s3.head_object(Bucket=self.location.bucket, Key=key)
        etag, when = str(head["ETag"]), float(head["LastModified"].timestamp())
        self._checked[key] = (etag, time.monotonic())
        self._modified[key] = (etag, when)
        return etag, when

    def modified(self, found: Located) -> float:
        """The object's LastModified, as the listing that located it or the last HEAD gave it (else one
        HEAD): the same on every replica, unlike the time its local copy was fetched."""
        key, etag = _stamp(found)
        known = self._modified.get(key)
        if known is not None and known[0] == etag:
            return known[1]
        if self.at.down():
            raise StorageUnavailable()
        try:
            _, when = self._head(key)
        except self._errors as exc:
            if _missing(exc):
                raise NotFound(f"Resource not found - {found.public_id}") from None
            log.warning("HEAD %s: %s", key, exc)
            self.at.failed(exc)
            raise StorageUnavailable() from exc
        return when

    def fingerprint(self, data: bytes, *, md5: str | None = None) -> str:
        # The ETag of an object stored by one plain PUT (``write``) is the MD5 of its bytes.
        return _VERSION + (md5 or hashlib.md5(data).hexdigest())

    def current(self, found: Sequence[Located]) -> bool:
        """Whether each object still has the ETag it was located with: one HEAD per object at most every
        ``RECHECK_SECONDS`` (a file's local copy never changes: it is named by its ETag)."""
        now = time.monotonic()
        for f in found:
            key, etag = _stamp(f)
            known = self._checked.get(key)
            if known is None or now - known[1] > RECHECK_SECONDS:
                if _on_event_loop():  # a memoised hit: never a request there; the thread path locates again
                    return False
                if self.at.down():  # storage away: the located version stands
                    continue
                try:
                    known = (self._head(key)[0], now)
                except self._errors as exc:
                    if _missing(exc):
                        return False
                    log.warning("HEAD %s: %s", key, exc)
                    if _code(exc):
                        return False
                    self.at.failed(exc)  # no answer: as above, it stands
                    continue
            if known[0] != etag:
                self._located.pop(f.public_id, None)
                return False
        return bool(found)

    def local(self, found: Located) -> Path:
        """The original's bytes as a local file, fetched if needed with ``If-Match`` on its ETag (blocking).
        A 412 means it was replaced since it was located: 503, the retry locates the new one."""
        if self.hot.touch(found.path):
            return found.path
        key, etag = _stamp(found)
        if self.at.down():
            raise StorageUnavailable()
        try:
            got = self.s3.get_object(Bucket=self.location.bucket, Key=key, IfMatch=etag)
            with replacing(found.path) as temp, temp.open("wb") as out:
                for chunk in got["Body"].iter_chunks(1 << 20):
                    out.write(chunk)
        except self._errors as exc:
            if _code(exc) in ("412", "PreconditionFailed"):
                self._checked.pop(key, None)
                self._located.pop(found.public_id, None)
                raise Overloaded(1, public=f"{found.public_id} changed while it was read; retry") from None
            if _missing(exc):
                raise NotFound(f"Resource not found - {found.public_id}") from None
            log.warning("GET %s: %s", key, exc)
            self.at.failed(exc)
            raise StorageUnavailable() from exc
        self.hot.added(found.path)
        return found.path

    def read(self, public_id: str) -> bytes:
        return self.local(self.locate(public_id)).read_bytes()

    def write(
        self,
        public_id: str,
        extension: str,
        data: bytes,
        *,
        replacing: bool = True,
        version: str | None = None,
    ) -> Located:
        if extension not in _RANK:
            raise ValueError(f"not an original's extension: {extension!r}")
        if not _valid(public_id):
            raise NotFound(f"Resource not found - {public_id}")
        # The PUT's answer carries the object's ETag, its version; a ``version`` the caller computed (the
        # MD5 of these bytes, ``fingerprint``) goes along as Content-MD5, so the storage refuses bytes that
        # changed on the way (BadDigest) instead of storing them.
        checked: dict[str, str] = {}
        if version is not None and version.startswith(_VERSION):
            checked["ContentMD5"] = base64.b64encode(bytes.fromhex(version[len(_VERSION) :])).decode()
        key = self._key(public_id, extension)
        try:  # one PUT: readers see the old object or the new one
            put = self.s3.put_object(Bucket=self.location.bucket, Key=key, Body=data, **checked)
            # As the folder does: the same id in another format goes once the new one is in place (an
            # upload that becomes a PNG), so a lookup never finds the older format first.
            if replacing:
                self._remove_formats(public_id, keep=extension)
        except self._errors as exc:
            log.warning("PUT %s: %s", public_id, exc)
            raise StorageUnavailable() from exc
        # The PUT's answer says what a listing would (the key and its ETag): no second request.
        now = time.monotonic()
        found = Located(public_id, self.hot.path(key, put["ETag"], extension), (key, put["ETag"]))
        self._checked[key] = (put["ETag"], now)
        self._located[public_id] = (found, now)
        return found

    def _remove_formats(self, public_id: str, keep: str) -> bool:
        """Delete ``public_id`` in every original format but ``keep`` (one listing); whether any was."""
        start = f"{self.location.prefix}{public_id}."
        listed = self.s3.list_objects_v2(Bucket=self.location.bucket, Prefix=start, MaxKeys=100)
        doomed = [item["Key"] for item in listed.get("Contents", [])
                  if item["Key"][len(start):] in _RANK and item["Key"][len(start):] != keep]
        for key in doomed:
            self.s3.delete_object(Bucket=self.location.bucket, Key=key)
            self._checked.pop(key, None)
        return bool(doomed)

    def writable(self, public_id: str) -> bool:
        return True  # a key is a name: no link can lead it elsewhere

    def delete(self, public_id: str) -> bool:
        if not _valid(public_id):
            return False
        try:
            removed = self._remove_formats(public_id, keep="")
        except self._errors as exc:
            log.warning("DELETE %s: %s", public_id, exc)
            raise StorageUnavailable() from exc
        self._located.pop(public_id, None)
        return removed

    # -- records: objects under <prefix>.cutout/, which no original's key can reach (a public id's parts
    # never start with a dot), as the folder keeps them in <root>/.cutout/ --------------------------------
    def _record_key(self, name: str) -> str:
        if not _valid(name):
            raise ValueError(f"not a record name: {name!r}")
        return f"{self.location.prefix}{RECORDS}/{name}{RECORD_SUFFIX}"

    def put_record(self, name: str, data: bytes) -> None:
        key = self._record_key(name)
        try:  # one PUT is atomic: readers see the old object or the new one
            self.s3.put_object(Bucket=self.location.bucket, Key=key, Body=data)
        except self._errors as exc:
            log.warning("PUT %s: %s", key, exc)
            raise StorageUnavailable() from exc

    def get_record(self, name: str) -> bytes | None:
        key = self._record_key(name)
        try:
            got = self.s3.get_object(Bucket=self.location.bucket, Key=key)
            return cast(bytes, got["Body"].read())
        except self._errors as exc:
            if _missing(exc):
                return None
            log.warning("GET %s: %s", key, exc)
            raise StorageUnavailable() from exc

    def delete_record(self, name: str) -> None:
        key = self._record_key(name)
        try:  # S3 deletes are idempotent: a missing key is not an error
            self.s3.delete_object(Bucket=self.location.bucket, Key=key)
        except self._errors as exc:
            log.warning("DELETE %s: %s", key, exc)
            raise StorageUnavailable() from exc

    def list_records(self, prefix: str) -> Iterator[str]:
        if not _valid(prefix):
            return
        base = f"{self.location.prefix}{RECORDS}/"
        for page in self._pages(f"{base}{prefix}/"):
            for item in page.get("Contents", []):
                name = item["Key"][len(base):]
                if name.endswith(RECORD_SUFFIX) and not name.rpartition("/")[2].startswith("."):
                    yield name.removesuffix(RECORD_SUFFIX)

    def _pages(self, prefix: str) -> Iterator[dict[str, Any]]:
        """The listing of ``prefix``, page by page. A storage that does not answer is a 503 with
        Retry-After, as for a lookup (a listing is the Admin API's and the tag index's), never a 500."""
        if self.at.down():
            raise StorageUnavailable()
        try:
            yield from self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket,
                                                                          Prefix=prefix)
        except self._errors as exc:
            log.warning("listing %s: %s", prefix, exc)
            self.at.failed(exc)
            raise StorageUnavailable() from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        seen: set[str] = set()
        for page in self._pages(self.location.prefix + prefix):
            for item in page.get("Contents", []):
                stem, dot, ext = item["Key"][len(self.location.prefix):].rpartition(".")
                # The server's own images (cache.transient) share the prefix here, but are no assets:
                # a folder of originals keeps them apart and never lists them either.
                if dot and stem and ext in _RANK and stem not in seen and not is_transient(stem):
                    seen.add(stem)
                    yield stem


class S3Blobs:
    """The ``BlobStore`` of a bucket and prefix. Unbounded here: the bucket's lifecycle rules expire
    old objects (README), so ``mark_used`` records nothing. Storage errors are misses and unstored
    writes (logged): this tier only saves work, the local tier and the render still answer."""

    def __init__(self, url: str, *, endpoint: str | None = None, s3: Any = None, timeout: float = 5.0,
                 at: S3Endpoint | None = None) -> None:
        self.location = S3Location.parse(url)
        # As S3Originals: after a call that got no answer the endpoint is skipped a while (``at``).
        self.at = at or S3Endpoint(s3 if s3 is not None else client(endpoint, timeout=timeout),
                                   timeout=timeout)
        self.s3 = self.at.s3
        self._errors = _errors()

    def _failed(self, what: str, key: str, exc: Exception) -> None:
        log.warning("%s %s in the shared cache: %s", what, key, exc)
        self.at.failed(exc)

    def get(self, key: str) -> Entry | None:
        if self.at.down():
            return None
        try:
            got = self.s3.get_object(Bucket=self.location.bucket, Key=self.location.prefix + key)
            raw = got["Body"].read()
        except self._errors as exc:
            if not _missing(exc):
                self._failed("GET", key, exc)
            return None
        return Entry.unpack(raw)

    def put(self, key: str, entry: Entry) -> None:
        if self.at.down():
            log.warning("PUT %s skipped: the shared cache is unavailable", key)
            return
        try:
            self.s3.put_object(Bucket=self.location.bucket, Key=self.location.prefix + key, Body=entry.pack())
        except self._errors as exc:
            self._failed("PUT", key, exc)

    def has(self, key: str) -> bool | None:
        """Whether the object is there; None when the storage did not answer (a HEAD, not the bytes)."""
        if self.at.down():
            return None
        try:
            self.s3.head_object(Bucket=self.location.bucket, Key=self.location.prefix + key)
        except self._errors as exc:
            if _missing(exc):
                return False
            self._failed("HEAD", key, exc)
            return None
        return True

    def mark_used(self, key: str) -> None:
        return None


class TieredBlobs:
    """The local diskcache first (bounded, per replica), the shared store second: a shared hit is copied
    into the local tier (by a background thread, after the answer: the local tier is only a cache, and a
    copy that does not fit the backlog is simply skipped); a put goes to both, the shared one first
    done when ``put`` returns (a claim released after it must find the result from any replica).
    ``on_shared_hit`` counts hits from the second tier."""

    def __init__(self, local: DiskBlobs, shared: S3Blobs, *, on_shared_hit: Callable[[], None] = lambda: None,
                 backlog: int = 64) -> None:
        self.local, self.shared, self.on_shared_hit = local, shared, on_shared_hit
        self._copier = ThreadPoolExecutor(1, thread_name_prefix="cutout-promote")
        self._backlog = threading.BoundedSemaphore(backlog)

    def get(self, key: str) -> Entry | None:
        entry = self.local.get(key)
        if entry is not None:
            return entry
        entry = self.shared.get(key)
        if entry is not None:
            self.on_shared_hit()
            if self._backlog.acquire(blocking=False):
                self._copier.submit(self._promote, key, entry)
        return entry

    def settle(self) -> None:
        """Wait for the copies queued so far (tests; a clean shutdown)."""
        self._copier.submit(lambda: None).result()

    def _promote(self, key: str, entry: Entry) -> None:
        try:
            self.local.put(key, entry)
        except Exception:  # noqa: BLE001 - a copy for speed only: the shared tier still has it
            log.exception("copying %s into the local cache failed", key)
        finally:
            self._backlog.release()

    def put(self, key: str, entry: Entry) -> None:
        self.local.put(key, entry)
        self.shared.put(key, entry)

    def share(self, key: str, entry: Entry) -> None:
        """Put ``entry``, found in the local tier, into the shared one where that lacks it: a put made
        while the shared tier was down reached only the local one, and the replicas look in the shared."""
        if self.shared.has(key) is False:
            self.shared.put(key, entry)

    def mark_used(self, key: str) -> None:
        self.local.mark_used(key)
