"""Per-process memory for the hottest URLs, on ``cachetools`` (least recently used out first).

cachetools' caches are not thread-safe, and these are shared by the event loop and the thread pool, so
each sits behind a lock. Derivative keys include the original's version, so a remembered entry can never
be stale; it only has to stay within its byte budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

from cache import Entry

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
C = TypeVar("C", bytes, str)


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


class ByContent(Generic[C, V]):
    """Values computed from large contents (an image's bytes, its base64 text), found again for equal
    content without computing them again: a repeated request carries the same image in a new body (a new
    multipart boundary, Runware's new taskUUID), so nothing keyed by the body finds it. An entry is
    sampled by the content's length and its first and last 64 characters, and used only when the content
    is equal in full (``==``, a memcmp: about 2 us for 47 KB, against 28 us for its sha256 or 200 us for
    decoding its base64), so a look-alike is merely computed. Bounded by ``budget`` (``cost`` of each
    content and value; the content's length by default); contents over ``largest`` are not kept."""

    def __init__(self, budget: int, largest: int, cost: Callable[[C, V], int] | None = None) -> None:
        if largest > budget:
            raise ValueError(f"largest ({largest}) must fit the budget ({budget})")
        weigh = cost if cost is not None else (lambda content, value: len(content))
        self.largest = largest
        self._known: LRUCache[tuple[int, C, C], tuple[C, V]] = LRUCache(
            budget, getsizeof=lambda held: weigh(*held)
        )
        self._lock = threading.Lock()

    def get(self, content: C, make: Callable[[C], V]) -> V:
        """``make(content)``, or what it gave for an equal content before. What ``make`` raises is
        raised, and nothing is kept."""
        sample = (len(content), content[:64], content[-64:])
        with self._lock:
            known = _get(self._known, sample)
        if known is not None and known[0] == content:
            return known[1]
        value = make(content)
        if len(content) <= self.largest:
            with self._lock:
                self._known[sample] = (content, value)
        return value


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
