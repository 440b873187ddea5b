"""The generation queue for slow derivatives (background removal): claim, queue, 423 until done.

Exactly one generation per derivative, across threads and worker processes: the first request claims
the key in the shared cache (atomic ``add`` with a lease) and queues the job on this process's bounded
model pool; everybody else sees the claim and answers 423. The owner renews the lease while the job
runs, so only a dead process's claim expires and lets a later request claim again.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cache import DerivativeCache, Entry
from cutout import metrics
from grammar.errors import OriginError, Overloaded

log = logging.getLogger("cutout.generate")


class Generator:
    def __init__(
        self,
        cache: DerivativeCache,
        *,
        workers: int,
        queue_size: int,
        lease: float,
        failure_ttl: float,
    ) -> None:
        self.cache = cache
        self.lease = lease
        self.failure_ttl = failure_ttl
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cutout-model")
        self._slots = threading.BoundedSemaphore(queue_size)
        self._active: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_loop, name="cutout-lease", daemon=True)
        self._renewer.start()

    def submit(self, key: str, job: Callable[[], Entry]) -> bool:
        """Start generating ``key`` unless somebody already is. True when this call queued it.

        Raises Overloaded (503) at once when the queue is full; memory stays bounded.
        """
        if not self.cache.claim(key, self.owner, lease=self.lease):
            return False
        # The previous owner may have stored the result and released its claim after our cache lookup.
        if key in self.cache:
            self.cache.release(key, self.owner)
            return False
        if not self._slots.acquire(blocking=False):
            self.cache.release(key, self.owner)
            raise Overloaded(public="Background-removal queue is full; retry later")
        with self._lock:
            self._active.add(key)
        metrics.queue_depth.inc()
        try:
            self._pool.submit(self._run, key, job)
        except RuntimeError:  # pool shut down
            self._finish(key)
            raise Overloaded(public="Server is shutting down; retry later") from None
        return True

    def _run(self, key: str, job: Callable[[], Entry]) -> None:
        try:
            self.cache.put(key, job())
        except OriginError as exc:
            log.info("generation of %s failed: %s (%s)", key, exc.public, exc.detail)
            self.cache.remember_failure(key, exc.status, exc.public, ttl=self.failure_ttl)
        except Exception:
            log.exception("generation of %s crashed", key)
            self.cache.remember_failure(key, 500, OriginError.default_public, ttl=self.failure_ttl)
        finally:
            self._finish(key)

    def _finish(self, key: str) -> None:
        with self._lock:
            self._active.discard(key)
        self.cache.release(key, self.owner)
        self._slots.release()
        metrics.queue_depth.dec()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease / 3):
            with self._lock:
                active = list(self._active)
            for key in active:
                self.cache.renew(key, self.owner, lease=self.lease)

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
