"""The store facade: hit or miss for a key, across this process's memory and the shared blob store,
and the remembered failure of a key that was tried recently."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping

import anyio.to_thread

from cache import BlobStore, Coordinator, Entry
from cutout.memory import MemoryEntries
from grammar.errors import (
    BadRequest,
    NotAvailable,
    NotFound,
    OriginError,
    Overloaded,
    RenderTimeout,
    TooLarge,
    Unauthorized,
    Undecodable,
)

log = logging.getLogger("cutout.store")

_BY_STATUS: Mapping[int, type[OriginError]] = {
    400: BadRequest, 401: Unauthorized, 404: NotFound, 413: TooLarge, 422: Undecodable, 501: NotAvailable,
}


def failure_error(status: int, message: str, retry_after: int = 1) -> OriginError:
    """The error a remembered failure answers with again; a 503 (a render past its time budget, a
    storage that did not answer) says when to retry: ``retry_after``, how long failures are kept."""
    if status == 503:
        return Overloaded(retry_after, public=message)
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls(message)
    error = OriginError(message)
    error.status = status
    return error


def remembered(error: OriginError) -> bool:
    """Whether ``error`` is the URL's own failure, answered again for ``CUTOUT_FAILURE_SECONDS``: what the
    client's image or URL caused (bad, missing, too large, undecodable; a render past its time budget,
    which the same URL would meet again). Never what the infrastructure did (a storage or Redis that did
    not answer, a full queue, a crash): remembered, that answered 503 for the whole period after the
    storage was back, and a failure is never a result to keep."""
    return isinstance(error, RenderTimeout) or (error.status < 500 and error.status in _BY_STATUS)


def again(error: OriginError) -> OriginError:
    """A fresh copy of ``error`` for one more request (an error object raised in several requests would
    collect all their tracebacks)."""
    retry = error.headers.get("Retry-After", "")
    return failure_error(error.status, error.public, int(retry) if retry.isdigit() else 1)


class Store:
    def __init__(
        self, blobs: BlobStore, coordinator: Coordinator, *, memory_budget: int, failure_seconds: float = 1.0
    ) -> None:
        self.blobs = blobs
        self.coordinator = coordinator
        self.retry_after = math.ceil(failure_seconds)  # a remembered 503 says when it is forgotten
        self.memory = MemoryEntries(memory_budget)
        #: Seconds between two uses of one memory entry told to the blob store.
        self.use_period = 60.0
        self._uses: deque[str] = deque()

    def cached(self, key: str) -> Entry | None:
        """The entry if this process holds it in memory (never blocks). A use due to be told to the blob
        store is noted for ``record_uses``."""
        entry, due = self.memory.get_due(key, self.use_period)
        if due:
            self._uses.append(key)
        return entry

    @property
    def uses_pending(self) -> bool:
        return bool(self._uses)

    def record_uses(self) -> None:
        """Tell the blob store the uses noted by ``cached`` (blocking)."""
        while self._uses:
            try:
                key = self._uses.popleft()
            except IndexError:  # taken by another thread meanwhile
                return
            self._mark_used(key)

    def lookup(self, key: str) -> Entry | None:
        """Memory, then the blob store; None for a miss. A failure remembered for ``key`` raises it
        (blocking: run it in a thread from async code, or use ``fetch``)."""
        entry, due = self.memory.get_due(key, self.use_period)
        if entry is not None:
            if due:
                self._mark_used(key)
            return entry
        entry = self.blobs.get(key)
        if entry is not None:
            self.memory.put(key, entry)
            return entry
        failure = self.coordinator.failure(key)
        if failure is not None:
            raise failure_error(failure.status, failure.message, self.retry_after)
        return None

    async def fetch(self, key: str) -> Entry | None:
        """``lookup`` without blocking the event loop: a memory hit answers at once."""
        entry = self.cached(key)
        if entry is None:
            return await anyio.to_thread.run_sync(self.lookup, key)
        if self.uses_pending:
            await anyio.to_thread.run_sync(self.record_uses)
        return entry

    def _mark_used(self, key: str) -> None:
        # The shared blob store evicts least recently used first; hits served from memory must count
        # there too (about once a minute), or the hottest derivatives are the first evicted.
        try:
            self.blobs.mark_used(key)
        except Exception:  # noqa: BLE001 - bookkeeping: it must never fail the hit it rides on
            log.exception("recording a use of %s in the disk cache failed", key)

    def keep(self, key: str, entry: Entry) -> None:
        """Store a derivative for every process (blocking)."""
        self.blobs.put(key, entry)
