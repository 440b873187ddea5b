"""The store facade: hit or miss for a key, across this process's memory and the shared blob store,
and the remembered failure of a key that was tried recently."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import anyio.to_thread

from cache import BlobStore, Coordinator, Entry
from cutout.memory import MemoryEntries
from grammar.errors import (
    BadRequest,
    NotAvailable,
    NotFound,
    OriginError,
    TooLarge,
    Unauthorized,
    Undecodable,
)

log = logging.getLogger("cutout.store")

_BY_STATUS: Mapping[int, type[OriginError]] = {
    400: BadRequest, 401: Unauthorized, 404: NotFound, 413: TooLarge, 422: Undecodable, 501: NotAvailable,
}


def failure_error(status: int, message: str) -> OriginError:
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls(message)
    error = OriginError(message)
    error.status = status
    return error


class Store:
    def __init__(self, blobs: BlobStore, coordinator: Coordinator, *, memory_budget: int) -> None:
        self.blobs = blobs
        self.coordinator = coordinator
        self.memory = MemoryEntries(memory_budget)

    def cached(self, key: str) -> Entry | None:
        """The entry if this process holds it in memory (never blocks)."""
        return self.memory.get(key)

    def lookup(self, key: str) -> Entry | None:
        """Memory, then the blob store; None for a miss. A failure remembered for ``key`` raises it
        (blocking: run it in a thread from async code, or use ``fetch``)."""
        entry = self.memory.get(key)
        if entry is not None:
            self.tell_used(key)
            return entry
        entry = self.blobs.get(key)
        if entry is not None:
            self.memory.put(key, entry)
            return entry
        failure = self.coordinator.failure(key)
        if failure is not None:
            raise failure_error(failure.status, failure.message)
        return None

    async def fetch(self, key: str) -> Entry | None:
        """``lookup`` without blocking the event loop: a memory hit answers at once."""
        entry = self.memory.get(key)
        if entry is None:
            return await anyio.to_thread.run_sync(self.lookup, key)
        await self.told_used(key)
        return entry

    async def told_used(self, key: str) -> None:
        """For a memory hit: ``tell_used`` when it is due (about once a minute a key), in a thread."""
        if self.memory.due(key):
            await anyio.to_thread.run_sync(self._mark_used, key)

    def tell_used(self, key: str) -> None:
        # The shared blob store evicts least recently used first; hits served from memory must count
        # there too (about once a minute), or the hottest derivatives are the first evicted.
        if self.memory.due(key):
            self._mark_used(key)

    def _mark_used(self, key: str) -> None:
        try:
            self.blobs.mark_used(key)
        except Exception:  # noqa: BLE001 - bookkeeping: it must never fail the hit it rides on
            log.exception("recording a use of %s in the disk cache failed", key)

    def keep(self, key: str, entry: Entry) -> None:
        """Store a derivative for every process (blocking)."""
        self.blobs.put(key, entry)
