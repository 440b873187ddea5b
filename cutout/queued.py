"""Background removal by `cutout worker` processes (``CUTOUT_BACKGROUND_REMOVAL=queue``): the servers
claim and enqueue, the workers generate. Same claim, same 423, same stores as the in-process
``Generator``; only who runs the job differs.

The claim on a key is owned by the job (``job:<id>``), not by the server that queued it: the worker
that takes the job renews it while it works and releases it when the result is stored, so a server may
stop meanwhile. If the worker dies, the claim lapses with its lease and the stream hands the job to the
next worker (``cache.redis_queue``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from cache import BlobStore, Coordinator, Entry
from cutout import metrics
from cutout.settings import Settings
from grammar.errors import NotAvailable, OriginError, Overloaded
from transform.seam import Mask

if TYPE_CHECKING:  # redis-py is the `cutout[scale]` extra: imported only when a queue is made
    from cache.redis_queue import ModelQueue

#: How long a server trusts the model id the workers announced before it reads it again.
MODEL_ID_SECONDS = 5.0


class QueuedGenerator:
    def __init__(self, settings: Settings, blobs: BlobStore, coordinator: Coordinator) -> None:
        assert settings.state is not None
        from cache.redis_queue import ModelQueue

        self.queue = ModelQueue(settings.state, lease=settings.lease_seconds,
                                retry_after=settings.retry_after)
        self.blobs, self.coordinator = blobs, coordinator
        self.lease, self.limit = settings.lease_seconds, settings.queue_size

    def submit(self, key: str, job: Callable[[], Entry | None], *, request: object = None) -> bool:
        """Claim ``key`` for a new job and enqueue it (``job``, the in-process way, is not run here)."""
        assert isinstance(request, tuple), "a queued generation needs the request that names it"
        # A job still waiting for ``key`` (queued, and its claim lapsed: no worker took it in a lease)
        # stands for this request too: its claim is taken again under its owner, nothing is queued.
        waiting = self.queue.waiting(key)
        owner = waiting or f"job:{uuid.uuid4().hex}"
        if not self.coordinator.claim(key, owner, lease=self.lease):
            return False
        if self.blobs.get(key) is not None or self.coordinator.failure(key) is not None:
            self.coordinator.release(key, owner)
            return False
        if waiting is not None:
            return True
        if self.queue.depth() >= self.limit:
            self.coordinator.release(key, owner)
            raise Overloaded(public="Background-removal queue is full; retry later")
        path, accept = request
        self.queue.enqueue(key, path, accept, owner)
        metrics.jobs_queued_total.inc()
        return True

    def when_done(self, key: str, callback: Callable[[OriginError | None], None]) -> bool:
        """Never: the jobs run in `cutout worker` processes, so waiters poll the shared store."""
        return False

    def close(self) -> None:
        self.queue.close()


class QueuedModel:
    """The ``Segmenter`` of a server without the model: its id is the one the workers announced (it is
    in every cut-out's key, so server and worker agree on keys); it never segments here."""

    def __init__(self, queue: ModelQueue) -> None:
        self.queue = queue
        self._known: tuple[str, float] | None = None

    @property
    def model_id(self) -> str:
        now = time.monotonic()
        if self._known is None or now - self._known[1] > MODEL_ID_SECONDS:
            from cache.redis_state import StateUnavailable  # redis-py: here only with a queue

            try:
                announced = self.queue.model()
            except StateUnavailable:
                if self._known is None:
                    raise
                # Redis is away: the id announced last still names the cut-outs already made, so the
                # cached ones keep being served (new ones wait for Redis, as their queue does). Kept for
                # another period: a Redis that times out (paused, partitioned) instead of refusing would
                # otherwise cost every cut-out served meanwhile the whole timeout.
                self._known = (self._known[0], now)
                return self._known[0]
            if announced is None:
                raise Overloaded(5, public="No background-removal worker has started yet; retry later")
            self._known = (announced, now)
        return self._known[0]

    def workers_alive(self) -> int:
        """`cutout worker` processes whose heartbeat has not lapsed (Redis, read each time)."""
        return self.queue.alive()

    def segment(self, image: object, *, fine_edges: bool) -> Mask:
        raise NotAvailable("Background removal runs in `cutout worker` processes here")
