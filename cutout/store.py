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
    storage was back, and a failure is never a result to keep. A generation backs off from those
    instead (``Failures``)."""
    return isinstance(error, RenderTimeout) or (error.status < 500 and error.status in _BY_STATUS)


#: The back-off after a first crash (``Failures``), doubled with each crash in a row.
FIRST_BACKOFF = 1.0


class Failures:
    """What a generation's failure leaves for the next request, one policy for every process that runs
    the model (a server's model pool, `cutout worker`). The image's own failure (``remembered``) is
    answered again for ``CUTOUT_FAILURE_SECONDS``. A crash, or a storage or Redis that did not answer, is
    not the image's, so it is remembered only for a back-off: 1 s after the first in a row, doubling up to
    ``CUTOUT_CRASH_BACKOFF_SECONDS``, from 1 s again after a success. Without it an original that crashes
    the pipeline every time (or a worker's storage that is down) ran the model for every request, a
    queued one for every poll of every waiting request. A failure is never stored as a result."""

    def __init__(self, coordinator: Coordinator, *, failure_seconds: float, backoff_seconds: float) -> None:
        self.coordinator = coordinator
        self.failure_seconds = failure_seconds
        self.backoff_seconds = backoff_seconds

    def failed(self, key: str, error: OriginError) -> None:
        """Remember ``error`` for ``key`` (best effort: a store that cannot is logged, never raised, as
        the job's claim must still be given back)."""
        try:
            if remembered(error):
                ttl = self.failure_seconds
            else:
                # The count outlives the longest back-off, so the next crash after one backs off longer.
                count = self.coordinator.failed_again(key, keep=2 * self.backoff_seconds)
                ttl = min(self.backoff_seconds, FIRST_BACKOFF * 2.0 ** min(count - 1, 30))
                log.info("%s failed %d time(s) in a row (%s); tried again after %g s", key, count,
                         error.public, ttl)
            self.coordinator.remember_failure(key, error.status, error.public, ttl=ttl)
        except Exception:  # noqa: BLE001 - the next request tries again, as without it
            log.exception("remembering the failure of %s failed", key)

    def succeeded(self, key: str) -> None:
        try:
            self.coordinator.succeeded(key)
        except Exception:  # noqa: BLE001 - the count lapses on its own; the result is what matters
            log.exception("forgetting the failures of %s failed", key)


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
        self.retry_after = math.ceil(failure_seconds)  # for a failure remembered without its seconds
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
        if failure is not None:  # a 503 says when it is forgotten: a back-off's seconds, or the period's
            raise failure_error(failure.status, failure.message, failure.retry_after or self.retry_after)
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
