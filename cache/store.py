"""The derivative cache: bytes under keys, plus the small shared state that coordinates generation.

Two diskcache stores under one directory, both shared by every worker process:

- ``blobs``: derivatives and masks, size-limited, least-recently-used eviction.
- ``state``: generation claims (with a lease), remembered failures (with a short expiry) and the
  allow-list of eager-generated transformations. Never evicted by size, so a busy cache cannot
  drop a claim or forget that a strict-mode derivative was pre-generated.

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


@dataclass(frozen=True)
class Failure:
    status: int
    message: str


class DerivativeCache:
    def __init__(self, directory: str | Path, *, size_limit: int = 2 << 30) -> None:
        root = Path(directory)
        self.directory = root
        # cull_limit=0: diskcache's own cull drops a fixed 10 rows after a write, however far over the
        # limit the cache is (8x after a run of large entries); put() culls down to the limit instead.
        self.blobs = diskcache.Cache(
            str(root / "blobs"), size_limit=size_limit, eviction_policy="least-recently-used", cull_limit=0
        )
        self.state = diskcache.Cache(str(root / "state"), eviction_policy="none")

    def close(self) -> None:
        self.blobs.close()
        self.state.close()

    # -- values --------------------------------------------------------------------------------
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

    # -- generation claims -----------------------------------------------------------------------
    def claim(self, key: str, owner: str, *, lease: float) -> bool:
        """Atomically become the one generator of ``key``, across threads and processes.

        diskcache documents ``Cache.add`` as atomic: only one concurrent add for a key succeeds.
        The lease makes a claim of a dead process expire instead of blocking the key forever.
        """
        return bool(self.state.add("claim:" + key, owner, expire=lease))

    def renew(self, key: str, owner: str, *, lease: float) -> bool:
        with self.state.transact():
            if self.state.get("claim:" + key) != owner:
                return False
            self.state.set("claim:" + key, owner, expire=lease)
            return True

    def release(self, key: str, owner: str) -> None:
        with self.state.transact():
            if self.state.get("claim:" + key) == owner:
                self.state.delete("claim:" + key)

    def claimed(self, key: str) -> bool:
        return self.state.get("claim:" + key) is not None

    # -- failures --------------------------------------------------------------------------------
    def remember_failure(self, key: str, status: int, message: str, *, ttl: float) -> None:
        self.state.set("fail:" + key, (status, message), expire=ttl)

    def failure(self, key: str) -> Failure | None:
        value = self.state.get("fail:" + key)
        if value is None:
            return None
        status, message = value
        return Failure(int(status), str(message))

    # -- eager allow-list (strict mode) ----------------------------------------------------------
    def allow(self, name: str) -> None:
        self.state.set("eager:" + name, True)

    def allowed(self, name: str) -> bool:
        return bool(self.state.get("eager:" + name, False))

    def writable(self) -> bool:
        try:
            self.state.set("probe:writable", True, expire=60)
            return True
        except Exception:  # noqa: BLE001 - any failure here means "not writable", which is the answer
            return False
