"""Per-process memory in front of the disk cache, for the hottest URLs.

Derivative keys include the original's content fingerprint, so a remembered entry can never be
stale; it only has to stay within its byte budget.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

from cache import Entry, FileStamp, file_stamp

K = TypeVar("K")
V = TypeVar("V")

#: (path, file_stamp) per file; a changed or replaced file changes its stamp.
Stamps = tuple[tuple[str, FileStamp], ...]


def stamps(paths: Iterable[str]) -> Stamps:
    """The files' stamps now; empty when one is gone (so it never equals a remembered one)."""
    try:
        return tuple((path, file_stamp(os.stat(path))) for path in paths)
    except OSError:
        return ()


def unchanged(remembered: Stamps) -> bool:
    return bool(remembered) and stamps(path for path, _ in remembered) == remembered


class BoundedDict(Generic[K, V]):
    """A small least-recently-used dict, safe to share between threads."""

    def __init__(self, max_entries: int) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)


#: What an entry costs besides its bytes (key, Entry, metadata, the table's own slot), measured at about
#: 700-800 bytes: without it, tiny derivatives filled a 1 MiB budget with 11 MiB.
ENTRY_OVERHEAD = 1024


class MemoryEntries:
    """Entries by cache key within ``budget`` bytes, least recently used out first."""

    def __init__(self, budget: int) -> None:
        self._data: OrderedDict[str, tuple[Entry, float]] = OrderedDict()  # entry, when last told to disk
        self._budget = budget
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            held = self._data.get(key)
            if held is None:
                return None
            self._data.move_to_end(key)
            return held[0]

    def due(self, key: str, every: float = 60.0) -> bool:
        """True at most once per ``every`` seconds per entry: time to tell the disk cache it is used."""
        now = time.monotonic()
        with self._lock:
            held = self._data.get(key)
            if held is None or now - held[1] < every:
                return False
            self._data[key] = (held[0], now)
            return True

    def put(self, key: str, entry: Entry) -> None:
        size = _cost(key, entry)
        if size > self._budget // 8:  # large images would push out many small hot ones
            return
        with self._lock:
            if key in self._data:
                return
            self._data[key] = (entry, time.monotonic())
            self._used += size
            while self._used > self._budget:
                old_key, (old, _) = self._data.popitem(last=False)
                self._used -= _cost(old_key, old)


def _cost(key: str, entry: Entry) -> int:
    return len(entry.data) + len(key) + ENTRY_OVERHEAD
