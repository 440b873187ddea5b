"""Per-process memory in front of the disk cache, for the hottest URLs.

Derivative keys include the original's content fingerprint, so a remembered entry can never be
stale; it only has to stay within its byte budget.
"""

from __future__ import annotations

import os
import threading
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


class MemoryEntries:
    """Entries by cache key within ``budget`` bytes, least recently used out first."""

    def __init__(self, budget: int) -> None:
        self._data: OrderedDict[str, Entry] = OrderedDict()
        self._budget = budget
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is not None:
                self._data.move_to_end(key)
            return entry

    def put(self, key: str, entry: Entry) -> None:
        size = len(entry.data)
        if size > self._budget // 8:  # large images would push out many small hot ones
            return
        with self._lock:
            if key in self._data:
                return
            self._data[key] = entry
            self._used += size
            while self._used > self._budget:
                _, old = self._data.popitem(last=False)
                self._used -= len(old.data)
