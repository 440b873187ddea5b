"""What the processes serving one cache agree on, in diskcache (``<directory>/state``): generation
claims with a lease, remembered failures with a short expiry (and how many in a row), and the strict-mode
allow-list of eager-generated transformations. Never evicted by size, so a busy cache cannot drop a claim
or forget that a strict-mode derivative was pre-generated."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import diskcache

_CLAIM = "claim:"


@dataclass(frozen=True)
class Failure:
    status: int
    message: str
    #: Seconds it was remembered for, the Retry-After of a 503 answering it (None: written by a version
    #: that did not say).
    retry_after: int | None = None


def failure_of(value: object) -> Failure | None:
    """A stored failure record, ``[status, message, seconds]`` (or without the seconds: older writers)."""
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        return None
    seconds = int(value[2]) if len(value) == 3 else None
    return Failure(int(value[0]), str(value[1]), seconds)


class DiskCoordinator:
    def __init__(self, directory: str | Path) -> None:
        self.state = diskcache.Cache(str(Path(directory) / "state"), eviction_policy="none")

    def close(self) -> None:
        self.state.close()

    # -- generation claims -----------------------------------------------------------------------
    def claim(self, key: str, owner: str, *, lease: float) -> bool:
        """Atomically become the one generator of ``key``, across threads and processes.

        diskcache documents ``Cache.add`` as atomic: only one concurrent add for a key succeeds.
        The lease makes a claim of a dead process expire instead of blocking the key forever.
        """
        return bool(self.state.add(_CLAIM + key, owner, expire=lease))

    def renew(self, key: str, owner: str, *, lease: float) -> bool:
        with self.state.transact():
            if self.state.get(_CLAIM + key) != owner:
                return False
            self.state.set(_CLAIM + key, owner, expire=lease)
            return True

    def release(self, key: str, owner: str) -> None:
        with self.state.transact():
            if self.state.get(_CLAIM + key) == owner:
                self.state.delete(_CLAIM + key)

    def claimed(self, key: str) -> bool:
        return self.state.get(_CLAIM + key) is not None

    def depth(self) -> int:
        # Expired claims stay as rows until read or culled; they are no longer claims, so not counted.
        # The key range (not LIKE, which would treat '_' in keys as a wildcard) uses the key index.
        rows = self.state._sql(
            "SELECT COUNT(*) FROM Cache WHERE key >= ? AND key < ?"
            " AND (expire_time IS NULL OR expire_time > ?)",
            (_CLAIM, _CLAIM[:-1] + chr(ord(_CLAIM[-1]) + 1), time.time()),
        ).fetchall()
        return int(rows[0][0])

    # -- failures --------------------------------------------------------------------------------
    def remember_failure(self, key: str, status: int, message: str, *, ttl: float) -> None:
        self.state.set("fail:" + key, (status, message, math.ceil(ttl)), expire=ttl)

    def failure(self, key: str) -> Failure | None:
        return failure_of(self.state.get("fail:" + key))

    def failed_again(self, key: str, *, keep: float) -> int:
        with self.state.transact():
            count = int(self.state.get("streak:" + key, 0)) + 1
            self.state.set("streak:" + key, count, expire=keep)
        return count

    def succeeded(self, key: str) -> None:
        self.state.delete("streak:" + key)

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
