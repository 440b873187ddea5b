"""The three storage seams under the origin. Each is a small protocol with today's implementation
behind it (a folder of originals, and diskcache for the rest); other backends (object storage, Redis)
implement the same calls, and nothing above ``cache/`` knows which one it talks to.

Calls marked *blocking* may touch a disk or a network: the server runs them in its thread pool.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cache.blobs import Entry
from cache.coordinator import Failure


@dataclass(frozen=True)
class Located:
    """One original, as found: ``stamp`` is a cheap token that changes whenever the content may have
    (for a folder: size, times and inode; for object storage: key and ETag), ``path`` the local file the
    renderer opens once ``OriginalsStore.local`` has made sure it is there."""

    public_id: str
    path: Path
    stamp: Hashable


class OriginalsStore(Protocol):
    def locate(self, public_id: str, *, what: str = "Resource not found - {}") -> Located:
        """One lookup (blocking); ``NotFound(what.format(public_id))`` when there is none. An id stored in
        several formats is the file in the format its asset record names, else the first in the extension
        order (``cache.folder.pick``), the same in every store."""
        ...

    def forget(self, public_id: str) -> None:
        """Drop whatever an earlier ``locate`` of ``public_id`` remembers, so that the next one asks the
        storage: a replica that learns from the asset's record that another wrote the id a moment ago."""
        ...

    def version(self, found: Located) -> str:
        """A token that changes when the content does (blocking: a new original is hashed)."""
        ...

    def current(self, found: Sequence[Located]) -> bool:
        """Whether every one still holds what it held when located: cheap enough for a cached hit."""
        ...

    def modified(self, found: Located) -> float:
        """When the original was last written, as a POSIX time, the same wherever it is asked (a folder:
        the file's mtime; object storage: the object's LastModified, not the local copy's time): the
        version and dates the Admin API gives an original placed without the Upload API (blocking)."""
        ...

    def fingerprint(self, data: bytes, *, md5: str | None = None) -> str:
        """The ``version`` these bytes have once written here, computed from the bytes alone (the Upload
        API records it, to know later whether the stored original is still the one it wrote). ``md5``:
        the bytes' hex MD5 when the caller has it already (the Upload API's ``etag``), for a store whose
        version is that digest, so that a 50 MB upload is not hashed twice."""
        ...

    def local(self, found: Located) -> Path:
        """``found.path`` holding ``found``'s content, fetched first where the store is remote (blocking;
        only renders call it, so a cached hit never reads an original)."""
        ...

    def read(self, public_id: str) -> bytes: ...

    def write(
        self,
        public_id: str,
        extension: str,
        data: bytes,
        *,
        replacing: bool = True,
        version: str | None = None,
    ) -> Located:
        """Store an original atomically: readers see the old content or the new, never a part. The same
        id in another format is removed after the new one is in place (an upload that becomes a PNG).
        ``replacing=False``: the caller has just looked this id up under its asset lock and found no
        original and no record, so there is no other format to remove and none is looked for (a
        folder: 21 names unlinked in vain on every new upload; object storage: a LIST request).
        ``version``: ``fingerprint(data)`` when the caller has it (the Upload API's record), so that a
        store that hashes its files (a folder) knows the written file's ``version`` without reading it
        back (an upload's eager transformations, its background removal and its first delivery)."""
        ...

    def writable(self, public_id: str) -> bool:
        """Whether an original under this id would be inside the store (a folder: no symbolic link on
        the way leads out of it; ``write`` refuses the others with a 400), so that a caller can refuse
        the id before writing anything else about it (a record). Cheap: it runs on every upload."""
        ...

    def delete(self, public_id: str) -> bool:
        """Remove an original, in every format it has; False when there was none."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Public ids starting with ``prefix``, in no particular order."""
        ...

    # Records: small named objects kept beside the originals, never served as originals (the Upload
    # API's asset records, backups and unfinished jobs), so that they live wherever the originals do.
    # ``name`` is a relative path whose parts are valid public-id parts.

    def put_record(self, name: str, data: bytes) -> None:
        """Store atomically (blocking): readers see the old bytes or the new, never a part."""
        ...

    def get_record(self, name: str) -> bytes | None: ...

    def delete_record(self, name: str) -> None: ...

    def list_records(self, prefix: str) -> Iterator[str]:
        """Names of records under the folder ``prefix`` (recursively), in no particular order."""
        ...


class BlobStore(Protocol):
    """Derivatives and masks by key, bounded (least recently used out first)."""

    def get(self, key: str) -> Entry | None: ...

    def put(self, key: str, entry: Entry) -> None: ...

    def mark_used(self, key: str) -> None:
        """Count a use served from elsewhere (a process's memory) for the eviction order."""
        ...


class Coordinator(Protocol):
    """What every process serving one cache agrees on: who generates what, recent failures, the
    strict-mode allow-list. Claims carry a lease so that a dead process's claim expires."""

    def claim(self, key: str, owner: str, *, lease: float) -> bool: ...

    def renew(self, key: str, owner: str, *, lease: float) -> bool: ...

    def release(self, key: str, owner: str) -> None: ...

    def claimed(self, key: str) -> bool: ...

    def depth(self) -> int:
        """Generations claimed now, by every process: the shared queue's depth."""
        ...

    def remember_failure(self, key: str, status: int, message: str, *, ttl: float) -> None: ...

    def failure(self, key: str) -> Failure | None: ...

    def failed_again(self, key: str, *, keep: float) -> int:
        """Count one more failure of ``key`` in a row and return the count, this one included; the count
        is forgotten ``keep`` seconds after the last failure, or at ``succeeded``. Best effort: a store
        that cannot count says 1."""
        ...

    def succeeded(self, key: str) -> None:
        """``key`` was made: its failures in a row start again from none (best effort)."""
        ...

    def allow(self, name: str) -> None: ...

    def allowed(self, name: str) -> bool: ...

    def writable(self) -> bool: ...
