"""The generation queue for slow derivatives (background removal): claim, queue, 423 until done.

Exactly one generation per derivative, across threads and worker processes: the first request claims
the key in the shared cache (atomic ``add`` with a lease) and queues the job on this process's bounded
model pool; everybody else sees the claim and answers 423. The owner renews the lease while the job
runs, so only a dead process's claim expires and lets a later request claim again. A process that stops
cleanly (``close``: SIGTERM, Ctrl-C) gives its claims back at once, queued and running jobs' alike, and
keeps nothing its running jobs make afterwards: the next request, here after a restart or on another
process, generates at once instead of waiting out the lease.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from cache import BlobStore, Coordinator, Entry
from cutout import metrics
from cutout.store import Failures, remembered
from grammar.errors import OriginError, Overloaded

#: What waits on a job in this process: called with the job's failure when it was not remembered (a
#: storage that did not answer, a crash), which its waiters answer with once; else with None.
Waiter = Callable[[OriginError | None], None]

log = logging.getLogger("cutout.generate")


class Generator:
    def __init__(
        self,
        blobs: BlobStore,
        coordinator: Coordinator,
        *,
        workers: int,
        queue_size: int,
        lease: float,
        failure_ttl: float,
        backoff: float = 30.0,
    ) -> None:
        self.blobs = blobs
        self.coordinator = coordinator
        self.lease = lease
        self.failures = Failures(coordinator, failure_seconds=failure_ttl, backoff_seconds=backoff)
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cutout-model")
        self._slots = threading.BoundedSemaphore(queue_size)
        self._active: set[str] = set()
        # Called once the job of a key has stored its result (or failed) and released its claim: a
        # request waiting on it in this process wakes then, not at its next poll.
        self._when_done: dict[str, list[Waiter]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()  # closed: nothing a job makes after it is kept
        self._renewer = threading.Thread(target=self._renew_loop, name="cutout-lease", daemon=True)
        self._renewer.start()

    def submit(self, key: str, job: Callable[[], Entry | None], *, request: object = None) -> bool:
        """Start generating ``key`` unless somebody already is. True when this call queued it.
        (``request`` is for ``cutout.queued.QueuedGenerator``, which sends it to a worker instead.)

        Raises Overloaded (503) at once when the queue is full; memory stays bounded.
        """
        if not self.coordinator.claim(key, self.owner, lease=self.lease):
            return False
        # The previous owner may have stored the result and released its claim after our cache lookup.
        # A readable entry only: an unreadable one is a miss to lookups too (and ``get`` deletes it), so
        # treating it as done would answer 423 forever.
        # Nor run again a job that has just failed: its remembered failure is the answer.
        if self.blobs.get(key) is not None or self.coordinator.failure(key) is not None:
            self.coordinator.release(key, self.owner)
            return False
        if not self._slots.acquire(blocking=False):
            self.coordinator.release(key, self.owner)
            raise Overloaded(public="Background-removal queue is full; retry later")
        with self._lock:
            self._active.add(key)
        metrics.queue_depth.inc()
        try:
            future = self._pool.submit(self._run, key, job)
        except RuntimeError:  # pool shut down
            self._finish(key)
            raise Overloaded(public="Server is shutting down; retry later") from None
        future.add_done_callback(partial(self._cancelled, key))
        return True

    def _cancelled(self, key: str, future: Future[None]) -> None:
        # close() cancels queued jobs; ``_run`` never starts for them, so their claims and slots are
        # given back here. Otherwise every worker would answer 423 for them until the lease runs out.
        if future.cancelled():
            self._finish(key)

    def _run(self, key: str, job: Callable[[], Entry | None]) -> None:
        failed: OriginError | None = None
        try:
            entry = job()
            # None: nothing to keep (the original changed while it ran). Closed meanwhile: the claim was
            # given back and the job may run elsewhere already; this process is on its way out.
            if entry is not None and not self._stop.is_set():
                self.blobs.put(key, entry)
                self.failures.succeeded(key)
        except OriginError as exc:
            log.info("generation of %s failed: %s (%s)", key, exc.public, exc.detail)
            failed = exc
        except Exception:
            log.exception("generation of %s crashed", key)
            failed = OriginError()
        finally:
            told = failed
            if failed is not None:
                if not self._stop.is_set():  # remembered before the claim goes: no poll queues it again
                    self.failures.failed(key, failed)
                if remembered(failed):
                    told = None  # the URL's own failure: its waiters read it from the store
            self._finish(key, told)
            del failed, told  # (its traceback holds this frame)

    def when_done(self, key: str, callback: Waiter) -> bool:
        """Call ``callback`` (from the worker thread) once this process's job for ``key`` has ended, with
        its failure when that was not remembered; False, and nothing registered, when no such job is
        queued or running here."""
        with self._lock:
            if key not in self._active:
                return False
            self._when_done.setdefault(key, []).append(callback)
            return True

    def _finish(self, key: str, failed: OriginError | None = None) -> None:
        with self._lock:
            self._active.discard(key)
            callbacks = self._when_done.pop(key, [])
        try:
            self.coordinator.release(key, self.owner)
        except Exception:
            # No longer renewed, so the claim expires with its lease; nobody else would see this error.
            log.exception("releasing the claim on %s failed; it expires with its lease", key)
        finally:
            # The slot comes back whatever happened, or a few errors would leave every request a 503.
            self._slots.release()
            metrics.queue_depth.dec()
        for callback in callbacks:
            try:
                callback(failed)
            except Exception:  # a waiter gone away (its loop closed): it polls no more either
                log.debug("a waiter on %s could not be woken", key, exc_info=True)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease / 3):
            with self._lock:
                active = list(self._active)
            for key in active:
                self._renew(key)

    def _renew(self, key: str) -> None:
        try:
            self.coordinator.renew(key, self.owner, lease=self.lease)
        except Exception:
            # A locked or full database must not end this thread: the next round tries again, well
            # within the lease (renewal runs every third of it).
            log.exception("renewing the claim on %s failed; retrying", key)

    def close(self) -> None:
        """Stop: queued jobs are cancelled (``_cancelled`` gives their claims back) and the claims of the
        running ones are given back now. A running model cannot be interrupted, and the process may end
        before it does (uvicorn re-raises the SIGTERM it handled), so waiting for it would leave its
        claim to lapse with the lease while every other process answers 423. What it makes is dropped."""
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            running = list(self._active)
        for key in running:
            try:
                self.coordinator.release(key, self.owner)
            except Exception:  # noqa: BLE001 - as in ``_finish``: it lapses with its lease
                log.exception("giving back the claim on %s failed; it expires with its lease", key)
