"""Derivatives and masks on disk: diskcache, size-limited, least recently used out first.

diskcache writes a large value to its own file and only then commits the row that points to it,
and small values go into SQLite in one transaction, so a reader sees a complete value or nothing.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diskcache

_MAGIC = b"CUT1"
_HEADER = struct.Struct(">4sI")


@dataclass(frozen=True)
class Entry:
    """One cached value: the bytes and what the server needs to answer with them."""

    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        return str(self.meta["etag"])

    @classmethod
    def of(cls, data: bytes, **meta: Any) -> Entry:
        return cls(data, {**meta, "etag": hashlib.sha256(data).hexdigest()[:32], "size": len(data)})

    def pack(self) -> bytes:
        head = json.dumps(self.meta, separators=(",", ":"), sort_keys=True).encode()
        return _HEADER.pack(_MAGIC, len(head)) + head + self.data

    @classmethod
    def unpack(cls, raw: bytes) -> Entry | None:
        """Decode a stored value; None for anything that is not a complete entry."""
        if len(raw) < _HEADER.size:
            return None
        magic, head_len = _HEADER.unpack_from(raw)
        start = _HEADER.size + head_len
        if magic != _MAGIC or start > len(raw):
            return None
        try:
            meta = json.loads(raw[_HEADER.size : start])
        except ValueError:  # garbled header (bad JSON or bad UTF-8): a miss, not a 500
            return None
        data = raw[start:]
        if not isinstance(meta, dict) or meta.get("size") != len(data):
            return None
        return cls(data, meta)


class DiskBlobs:
    """The ``BlobStore`` of one cache folder (``<directory>/blobs``), shared by every process."""

    def __init__(self, directory: str | Path, *, size_limit: int = 2 << 30) -> None:
        # cull_limit=0: diskcache's own cull drops a fixed 10 rows after a write, however far over the
        # limit the cache is (8x after a run of large entries); put() culls down to the limit instead.
        self.blobs = diskcache.Cache(
            str(Path(directory) / "blobs"), size_limit=size_limit, eviction_policy="least-recently-used",
            cull_limit=0,
        )

    def close(self) -> None:
        self.blobs.close()

    def get(self, key: str) -> Entry | None:
        """The entry under ``key``; None for a miss. An unreadable value is deleted, so that it counts
        as absent everywhere (``in``, a new claim) and gets generated again instead of blocking the key."""
        raw = self.blobs.get(key)
        if raw is None:
            return None
        entry = Entry.unpack(raw) if isinstance(raw, bytes) else None
        if entry is None:
            self._drop(key, raw)
        return entry

    def _drop(self, key: str, unreadable: object) -> None:
        # Only if it is still the value we read: a writer may have stored a good one meanwhile.
        with self.blobs.transact():
            if self.blobs.get(key) == unreadable:
                self.blobs.delete(key)

    def put(self, key: str, entry: Entry) -> None:
        self.blobs.set(key, entry.pack())
        self._shrink(keep=key)

    def _shrink(self, keep: str) -> None:
        """Least recently used entries out, one at a time, until the cache is within its limit; never the
        entry just written (diskcache's cull takes ten at a time, which with a few large entries is the
        whole cache, the new entry with it: generated again and again)."""
        while self.blobs.volume() > self.blobs.size_limit:
            oldest = self.blobs._sql(  # diskcache keeps access_time indexed for this policy
                "SELECT key FROM Cache WHERE key != ? ORDER BY access_time LIMIT 1", (keep,)
            ).fetchall()
            if not oldest:
                return
            self.blobs.delete(oldest[0][0])

    def mark_used(self, key: str) -> None:
        """Record a use of ``key`` for the least-recently-used eviction, without reading its bytes (for
        hits served from a process's memory, which the disk cache would otherwise never hear of)."""
        value = self.blobs.get(key, read=True)  # a file handle, or the bytes of a value kept inline
        if hasattr(value, "close"):
            value.close()

    def __contains__(self, key: str) -> bool:
        return key in self.blobs
