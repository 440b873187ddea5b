"""Per-process memory for the hottest URLs, on ``cachetools`` (least recently used out first).

cachetools' caches are not thread-safe, and these are shared by the event loop and the thread pool, so
each sits behind a lock. Derivative keys include the original's version, so a remembered entry can never
be stale; it only has to stay within its byte budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

from cache import Entry

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _get(cache: LRUCache[K, V], key: K) -> V | None:
    # cachetools' ``get`` looks the key up twice (``in``, then ``[]``); on the hot path a miss is rare.
    try:
        return cache[key]
    except KeyError:
        return None


class BoundedDict(Generic[K, V]):
    """A least-recently-used dict of at most ``max_entries``, safe to share between threads."""

    def __init__(self, max_entries: int) -> None:
        self._data: LRUCache[K, V] = LRUCache(max_entries)
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return _get(self._data, key)

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._data


#: What an entry costs besides its bytes (key, Entry, metadata, the table's own slot), measured at about
#: 700-800 bytes: without it, tiny derivatives filled a 1 MiB budget with 11 MiB.
ENTRY_OVERHEAD = 1024


def _cost(held: tuple[Entry, float, int]) -> int:
    return held[2]


class MemoryEntries:
    """Entries by cache key within ``budget`` bytes, least recently used out first."""

    def __init__(self, budget: int) -> None:
        # key -> (entry, when last told to the disk cache, cost)
        self._data: LRUCache[str, tuple[Entry, float, int]] = LRUCache(max(budget, 1), getsizeof=_cost)
        self._budget = budget
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            held = _get(self._data, key)
        return None if held is None else held[0]

    def get_due(self, key: str, every: float = 60.0) -> tuple[Entry | None, bool]:
        """``get``, and whether the entry is ``due`` (one look-up while it is not: the hot path)."""
        with self._lock:
            held = _get(self._data, key)
        if held is None:
            return None, False
        if time.monotonic() - held[1] < every:
            return held[0], False
        return held[0], self.due(key, every)

    def due(self, key: str, every: float = 60.0) -> bool:
        """True at most once per ``every`` seconds per entry: time to tell the disk cache it is used."""
        now = time.monotonic()
        with self._lock:
            held = self._data.get(key)
            if held is None or now - held[1] < every:
                return False
            self._data[key] = (held[0], now, held[2])
            return True

    def put(self, key: str, entry: Entry) -> None:
        size = len(entry.data) + len(key) + ENTRY_OVERHEAD
        if size > self._budget // 8:  # large images would push out many small hot ones
            return
        with self._lock:
            if key not in self._data:
                self._data[key] = (entry, time.monotonic(), size)
