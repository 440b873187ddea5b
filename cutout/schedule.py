"""The scheduler: makes what the store does not have. Cheap renders run now in the render threads
(bounded; 503 when too many wait); slow ones (background removal) are claimed for every process and
queued (423 until done). Failures a client caused are remembered briefly, never the results of files
that changed while they were rendered."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
import pyvips

import transform
from cache import Coordinator, Entry, OriginalsStore
from cutout import metrics
from cutout.client import Client, watching
from cutout.deadline import Deadlines
from cutout.generate import Generator
from cutout.masks import Segmentation
from cutout.queued import QueuedGenerator
from cutout.resolve import LAYER_MISSING, Prepared, locate_either_form
from cutout.settings import Settings
from cutout.store import Store, again, failure_error, remembered
from grammar.errors import ClientGone, NotAvailable, OriginError, Overloaded, RenderTimeout, StillGenerating
from transform.seam import Mask, MaskSource
from transform.watch import UNWATCHED, Watch

log = logging.getLogger("cutout.schedule")

#: How often a waiting request (or ``cutout eager``) looks whether a queued generation is done.
POLL_SECONDS = 0.05


def noting(masks: MaskSource, confidences: list[float]) -> MaskSource:
    """``masks`` that also append each mask's confidence to ``confidences``."""

    def source(image: pyvips.Image, *, key: str, fine_edges: bool) -> Mask:
        mask = masks(image, key=key, fine_edges=fine_edges)
        confidences.append(mask.confidence)
        return mask

    return source


class _Shared:
    """A render in progress and how many requests wait for it (used on the event loop only)."""

    def __init__(self, task: asyncio.Task[Entry], watch: Watch) -> None:
        self.task = task
        self.watch = watch
        self.waiting = 0


def _retrieved(task: asyncio.Task[Entry]) -> None:
    # Every waiter may have left before the render ended: its error is nobody's to report then.
    if task.cancelled() or (error := task.exception()) is None:
        return
    # Nor may it keep the render's images: anyio's frame that awaited the worker thread's future is in
    # the error's traceback and holds that future, which holds the error. An error no waiter re-raises
    # (ClientGone, the last client gone) stayed in that cycle, with the stopped render's frames and
    # images, until the garbage collector's next full pass. Clearing the frames' locals (the traceback
    # itself stays for a log) breaks it whoever reads the error.
    traceback.clear_frames(error.__traceback__)


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        originals: OriginalsStore,
        store: Store,
        coordinator: Coordinator,
        models: Segmentation,
    ) -> None:
        self.settings = settings
        self.originals = originals
        self.store = store
        self.coordinator = coordinator
        self.models = models
        self.limits = transform.Limits(max_pixels=settings.max_pixels)
        self.generator: Generator | QueuedGenerator
        if settings.queued:  # `cutout worker` processes run the jobs (CUTOUT_BACKGROUND_REMOVAL=queue)
            self.generator = QueuedGenerator(settings, store.blobs, coordinator)
        else:
            self.generator = Generator(store.blobs, coordinator, workers=settings.model_workers,
                                       queue_size=settings.queue_size, lease=settings.lease_seconds,
                                       failure_ttl=settings.failure_seconds,
                                       backoff=settings.crash_backoff_seconds)
        self._limiter: anyio.CapacityLimiter | None = None
        self._inflight = 0  # renders queued or running (not requests: those sharing one count once)
        self._renders: dict[str, _Shared] = {}  # cache key -> its render in progress in this process
        # The claims on model runs held now (key -> owner), given back by ``close``.
        self._segmenting_now: dict[str, str] = {}
        self._closed = False
        seconds = settings.render_timeout
        retry = math.ceil(settings.failure_seconds)  # the failure is remembered that long
        self.deadlines = Deadlines(seconds, lambda: RenderTimeout(seconds, retry))

    def close(self) -> None:
        """Stop; the claims on the model runs of this process go back at once (see ``Generator.close``):
        a process waiting for one (``_segmenting``) runs the model itself instead of waiting out the
        lease."""
        self._closed = True
        self.generator.close()
        for key, owner in list(self._segmenting_now.items()):
            try:
                self.coordinator.release(key, owner)
            except Exception:  # noqa: BLE001 - it lapses with its lease
                log.exception("giving back the claim on %s failed; it expires with its lease", key)
        self.deadlines.close()

    # -- rendering (blocking, in a worker thread) ----------------------------------------------------
    def render_entry(self, prepared: Prepared, watch: Watch | None = None) -> Entry:
        """``watch``: stops the render from elsewhere too (its client leaving); the budget uses it."""
        started = time.perf_counter()
        if watch is None:  # nothing to stop it but the budget: without one, no watch at all
            watch = Watch() if self.deadlines.seconds > 0 else UNWATCHED
        cached, files = self.models.masks, prepared.files
        masks = None if cached is None else cached.storing_while(lambda: self.originals.current(files))
        faces = self.models.faces.storing_while(lambda: self.originals.current(files))
        confidences: list[float] = []
        with self.deadlines.limit(watch) as budget:
            try:
                rendered = transform.render(
                    prepared.plan, self.originals.local(prepared.source), source_key=prepared.source_key,
                    choice=prepared.choice, load_layer=self._layer,
                    masks=None if masks is None else noting(masks, confidences), faces=faces,
                    limits=self.limits, watch=watch, uncounted=partial(self.deadlines.paused, budget),
                    asset=prepared.asset,
                )
            except (RenderTimeout, ClientGone) as exc:
                reason = "time_budget" if isinstance(exc, RenderTimeout) else "client_gone"
                metrics.renders_stopped_total.labels(reason).inc()
                log.info("render of %s stopped (%s) after %.2f s", prepared.key, reason,
                         time.perf_counter() - started)
                raise
            except (pyvips.Error, OSError):
                # libvips reads pixels lazily, opening the file again: an original removed or replaced
                # meanwhile (a destroy, rename or upload of the id) fails the render half way. That is
                # the file's change, not a broken render: say so (409, as a generation says it), not 500.
                if self.originals.current(files):
                    raise
                raise failure_error(409, f"{prepared.public_id} changed while it was being rendered; "
                                         "ask again") from None
        metrics.render_seconds.observe(time.perf_counter() - started)
        # The model's confidence travels with the cut-out: the HTTP API reports it with every result.
        extra = {"confidence": min(confidences)} if confidences else {}
        return Entry.of(rendered.data, format=rendered.format, width=rendered.width, height=rendered.height,
                        has_alpha=rendered.has_alpha, **extra)

    def _layer(self, public_id: str) -> tuple[Path, str]:
        found = locate_either_form(self.originals, public_id, what=LAYER_MISSING)
        return self.originals.local(found), self.originals.version(found)

    def current(self, prepared: Prepared) -> bool:
        """Whether the files are still the ones ``prepared.key`` names. An original replaced while its
        render waited or ran gave a result of other content: it is served (it is of the file as it is
        now) but never stored under the old content's key; the next request has the new key."""
        if self.originals.current(prepared.files):
            return True
        log.info("%s changed while rendering %s; the result is not stored", prepared.public_id, prepared.key)
        return False

    def produce(self, prepared: Prepared, watch: Watch | None = None) -> Entry:
        """Render and store, remembering a client-caused failure briefly (blocking; cheap renders and
        ``cutout eager``). A render past its time budget is remembered too: the same URL asked again
        meanwhile is answered at once, not given the budget again."""
        try:
            entry = self.render_entry(prepared, watch)
        except ClientGone:
            raise  # the client's leaving says nothing about the URL: nothing remembered, nothing kept
        except OriginError as exc:
            # Neither a file rewritten under the render nor a storage that did not answer is the URL's
            # failure (``remembered``): the next request renders again.
            if remembered(exc) and self.current(prepared):
                ttl = self.settings.failure_seconds
                self.coordinator.remember_failure(prepared.key, exc.status, exc.public, ttl=ttl)
            raise
        if self.current(prepared):
            self.store.keep(prepared.key, entry)
        return entry

    def generation(self, prepared: Prepared) -> Entry | None:
        """The queued job: None (nothing stored, no failure remembered) when the files changed under it."""
        try:
            with self._segmenting(prepared):
                entry = self.render_entry(prepared)
        except OriginError:
            if self.current(prepared):
                raise  # remembered by the generator
            return None
        return entry if self.current(prepared) else None

    @contextmanager
    def _segmenting(self, prepared: Prepared) -> Iterator[None]:
        """One model run per content: generations are claimed per derivative, but the mask is keyed by
        the original's content, so two derivatives of the same bytes (one photo uploaded under two ids
        at once, two sizes of one cut-out) would each run the model on a cache miss. The second waits
        for the first's claim on the content and then finds its mask cached. The holder renews the claim
        while it renders; a dead holder's claim lapses with its lease and the waiter goes on."""
        if not prepared.segmenting or self.models.masks is None:
            yield
            return
        key, owner = f"segment:{prepared.source_key}", f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        lease = self.settings.lease_seconds
        while not self.coordinator.claim(key, owner, lease=lease):
            if self._closed:  # stopping: the job is given back (Generator.close), not run now
                raise Overloaded(public="Server is shutting down; retry later")
            time.sleep(POLL_SECONDS)
        self._segmenting_now[key] = owner
        done = threading.Event()

        def renew() -> None:  # held while the model runs, however long that takes
            while not done.wait(lease / 3):
                try:
                    self.coordinator.renew(key, owner, lease=lease)
                except Exception:  # a locked database: the next round tries again, within the lease
                    log.exception("renewing the claim on %s failed; retrying", key)

        renewer = threading.Thread(target=renew, name="cutout-segment-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
            if self._segmenting_now.get(key) == owner:
                del self._segmenting_now[key]
            self.coordinator.release(key, owner)

    # -- generations (claimed for every process) -----------------------------------------------------
    def poll(self, prepared: Prepared) -> Entry | None:
        """One look at a slow derivative (blocking): the entry when it is made; otherwise make sure that
        somebody generates it (claim and queue it here unless another process holds the claim) and
        return None. A remembered failure raises; so does StillGenerating when the files changed (the
        next request asks for the new key)."""
        entry = self.store.lookup(prepared.key)  # look first: a remembered failure is not generated again
        if entry is not None:
            return entry
        if not self.originals.current(prepared.files):
            raise StillGenerating(self.settings.retry_after)
        if not self.coordinator.claimed(prepared.key):
            self.generator.submit(prepared.key, partial(self.generation, prepared), request=prepared.request)
        return None

    def generate_and_wait(self, prepared: Prepared) -> Entry:
        """A slow derivative made through the same claim the servers use, so that exactly one generation
        runs even while a server on this cache is making it too; waits for whoever holds the claim
        (blocking; ``cutout eager`` straight into the cache)."""
        while True:
            try:
                entry = self.poll(prepared)
            except StillGenerating:
                raise failure_error(409, f"{prepared.public_id} changed while it was being generated; "
                                         "run again") from None
            if entry is not None:
                return entry
            time.sleep(POLL_SECONDS)

    # -- serving a miss (async) --------------------------------------------------------------------
    async def make(self, prepared: Prepared, client: Client | None = None) -> Entry:
        """The derivative for a request the store missed: rendered now, or generated (423 until done,
        or until ``wait_seconds``). A render now is abandoned if ``client`` leaves meanwhile (ClientGone);
        a generation never is: other requests may wait for it, and the one that asked was told to come
        back (423), which it does on a new connection. Only a render that runs the model is generated
        (``Prepared.segmenting``): not an animation's, whose g_auto is the centre."""
        if prepared.segmenting:
            return await self._generated(prepared)
        return await self._render_now(prepared, client)

    async def _render_now(self, prepared: Prepared, client: Client | None) -> Entry:
        """One render per key in this process however many requests ask for it meanwhile (a CDN's miss
        storm asks at once): they all wait for it and get its entry or its error. Each request's client
        leaving ends its own wait; the render is stopped only when the last one waiting has left."""
        shared = self._renders.get(prepared.key)
        if shared is None:
            if self._inflight >= self.settings.queue_size:
                raise Overloaded(public="Too many renders in progress; retry later")
            watch = Watch()
            shared = self._renders[prepared.key] = _Shared(
                asyncio.get_running_loop().create_task(self._render(prepared, watch)), watch)
            shared.task.add_done_callback(_retrieved)
        else:
            metrics.renders_shared_total.inc()
        shared.waiting += 1
        gone = asyncio.Event()
        left = True  # also when this wait is cancelled (the server stopping)
        try:
            async with watching(client, gone.set):
                leaving = asyncio.ensure_future(gone.wait())
                try:
                    await asyncio.wait((shared.task, leaving), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    leaving.cancel()
            left = not shared.task.done()
        finally:
            shared.waiting -= 1
            last = left and shared.waiting == 0
            if last:
                # Nobody waits for it any more: stop it, and let a later request start afresh rather
                # than join a render on its way out.
                shared.watch.stop(ClientGone())
                if self._renders.get(prepared.key) is shared:
                    del self._renders[prepared.key]
        task = shared.task
        del shared
        try:
            if left:
                if last:  # the last one waits for the stop to reach libvips, as a request alone did
                    await asyncio.wait((task,))
                raise ClientGone()
            return task.result()
        finally:
            # The task holds its error, whose traceback will hold this frame: a local naming the task
            # would make a cycle that keeps the render's images until the garbage collector's next pass.
            del task

    async def _render(self, prepared: Prepared, watch: Watch) -> Entry:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.settings.render_threads)
        self._inflight += 1
        try:
            return await anyio.to_thread.run_sync(self.produce, prepared, watch, limiter=self._limiter)
        finally:
            self._inflight -= 1
            shared = self._renders.get(prepared.key)
            if shared is not None and shared.watch is watch:
                del self._renders[prepared.key]
            del shared  # (as above: this frame is in the error's traceback)

    async def _generated(self, prepared: Prepared) -> Entry:
        if self.models.masks is None:
            raise NotAvailable("Background removal is not available: no segmentation model")
        entry = await self.wait_until(prepared, time.monotonic() + self.settings.wait_seconds)
        if entry is None:
            raise StillGenerating(self.settings.retry_after)
        return entry

    async def wait_until(self, prepared: Prepared, deadline: float) -> Entry | None:
        """Polls (in the thread pool) for ``prepared``'s entry until the monotonic ``deadline``; None
        when it is not there by then."""
        while True:
            entry = await anyio.to_thread.run_sync(self.poll, prepared)
            if entry is not None:
                return entry
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            await self._until_done(prepared.key, remaining)

    async def _until_done(self, key: str, remaining: float) -> None:
        """Until this process's job for ``key`` ends (at most ``remaining`` seconds); a job running
        elsewhere (another process, a worker) is polled every POLL_SECONDS. Waking on the job's end
        saved a sync API request half a poll on average (25 ms)."""
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        failures: list[OriginError] = []

        def wake(failed: OriginError | None) -> None:
            if failed is not None:
                failures.append(failed)
            loop.call_soon_threadsafe(done.set)

        if not self.generator.when_done(key, wake):
            await anyio.sleep(min(POLL_SECONDS, remaining))
            return
        with anyio.move_on_after(remaining):
            await done.wait()
        if failures:
            # Not the URL's failure (a storage that did not answer, a crash): the store says it only for
            # a back-off (``Failures``), if it could keep it; the requests that waited for this run hear
            # it from the run itself. A request after the back-off generates again.
            raise again(failures[0])
