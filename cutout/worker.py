"""`cutout worker`: runs the model for servers started with ``CUTOUT_BACKGROUND_REMOVAL=queue``.

A worker takes jobs from the Redis stream (``cache.redis_queue``), prepares each request again through
the same resolver (so its key is computed the same way, with the model it runs) and generates it through
the scheduler's own ``generation``, writing masks and derivatives to the shared stores. It renews the
job's claim and the stream entry while it works; killed, its job goes to the next worker once the lease
has passed. Told to stop (SIGTERM, Ctrl-C), it finishes the job in hand within CUTOUT_STOP_GRACE_SECONDS,
else (or at a second signal) stops its model and hands the job back to the queue for another worker at
once: a supervisor kills a process its own grace period after SIGTERM. It reads the same settings as the
servers (CUTOUT_ORIGINALS, CUTOUT_CACHE_DIR, CUTOUT_STATE, CUTOUT_SHARED_CACHE, CUTOUT_NAMED_TRANSFORMATIONS,
and the model's variables such as CUTOUT_ORT_PROVIDERS).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from functools import cached_property
from types import FrameType
from typing import TYPE_CHECKING

from cache.s3 import TieredBlobs
from cutout import metrics
from cutout.cli import settings_with_cache_folder
from cutout.settings import Settings, SettingsError, check_buckets, check_state
from cutout.store import Failures
from grammar import parse_path
from grammar.errors import OriginError

if TYPE_CHECKING:  # `cutout worker --help` works without the `cutout[scale]` extra
    from cache.redis_queue import Job, ModelQueue
    from cutout.service import Service

log = logging.getLogger("cutout.worker")

#: Providers that need a GPU: asked for and not what the session runs on, the worker refuses to start.
#: How often a worker tells Redis which model it runs (the servers put its id in cut-outs' keys).
ANNOUNCE_SECONDS = 5.0
#: How long Redis may be away before the worker says so again (waiting), or, with --once, gives up: a batch
#: run must end rather than wait for a Redis that may never come.
REDIS_WAIT_SECONDS = 10.0
ACCELERATORS = ("CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider")
#: How long a stopping worker waits for the job it handed back to unwind (its model stopped) before it
#: exits regardless: a render past the model is not stopped, and nothing it makes is wanted any more.
UNWIND_SECONDS = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--originals", default=None, help="originals folder or s3:// URL [CUTOUT_ORIGINALS]")
    parser.add_argument("--cache-dir", default=None,
                        help="this worker's local cache folder [CUTOUT_CACHE_DIR]")
    parser.add_argument("--state", default=None, help="Redis URL of the queue [CUTOUT_STATE]")
    parser.add_argument("--metrics-port", type=_port, default=None,
                        help="serve Prometheus /metrics on 127.0.0.1:PORT (inference counts, times)")
    parser.add_argument("--once", action="store_true", help="exit when the queue is empty (batch runs)")
    levels = ["critical", "error", "warning", "info", "debug"]
    parser.add_argument("--log-level", default="info", choices=levels)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value <= 65535:  # beyond it the socket layer answers with an OverflowError traceback
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, not {value}")
    return value


def provider_problem(requested: tuple[str, ...], running: list[str]) -> str | None:
    """Why the worker must not start: an accelerator was asked for and the session does not run on it
    (onnxruntime falls back to the CPU silently when CUDA's libraries or the device are missing)."""
    for name in requested:
        wanted = next((a for a in ACCELERATORS if a.lower().startswith(name.lower().removesuffix(
            "executionprovider"))), None)
        if wanted is not None and wanted not in running:
            return (f"CUTOUT_ORT_PROVIDERS asks for {wanted}, but onnxruntime runs on {', '.join(running)} "
                    "(install cutout[gpu] on a machine with CUDA, or drop it from CUTOUT_ORT_PROVIDERS)")
    return None


class Worker:
    def __init__(self, service: Service, queue: ModelQueue, *, consumer: str,
                 interrupt: Callable[[], None] | None = None) -> None:
        """``interrupt``: stops the model's runs in progress (``Model.interrupt``), for ``hand_back``."""
        self.service, self.queue, self.consumer = service, queue, consumer
        self.lease = service.settings.lease_seconds
        self.stopping = threading.Event()
        self.interrupt = interrupt
        self._lock = threading.Lock()
        # The job in hand and what stops its heartbeat; the job handed back (``hand_back``), if any.
        self._current: tuple[Job, threading.Event] | None = None
        self._handed_back: Job | None = None

    @cached_property
    def failures(self) -> Failures:
        """How a job's failure is remembered (made at the first: a worker that gets no job needs none)."""
        settings = self.service.settings
        return Failures(self.service.coordinator, failure_seconds=settings.failure_seconds,
                        backoff_seconds=settings.crash_backoff_seconds)

    def run(self, *, once: bool = False, announce: tuple[str, str] | None = None) -> bool:
        """False when, with ``once``, Redis stayed away for REDIS_WAIT_SECONDS (without, it waits for it).
        However it ends, its heartbeat goes with it (``leave``)."""
        try:
            return self._take_jobs(once, announce)
        finally:
            self.leave()

    def _take_jobs(self, once: bool, announce: tuple[str, str] | None) -> bool:
        announced = 0.0
        failing_since: float | None = None
        while not self.stopping.is_set():
            try:
                if announce is not None and time.monotonic() - announced > ANNOUNCE_SECONDS:
                    # Again and again: a Redis restarted without persistence has forgotten it.
                    self.queue.announce(*announce, self.consumer)
                    announced = time.monotonic()
                job = self.queue.take(self.consumer, block=1.0)
            except Exception as exc:  # noqa: BLE001 - Redis away: wait and try again (--once: a while)
                metrics.state_reachable.set(0)  # --metrics-port says what a server's scrape says
                failing_since = failing_since or time.monotonic()
                if once and time.monotonic() - failing_since >= REDIS_WAIT_SECONDS:
                    log.error("taking a job failed for %.0fs: %s; --once gives up", REDIS_WAIT_SECONDS, exc)
                    return False
                log.warning("taking a job failed: %s; retrying", exc)
                self.stopping.wait(1.0)
                continue
            failing_since = None
            metrics.state_reachable.set(1)
            if job is None:
                if once:
                    return True
                continue
            if self.stopping.is_set():  # taken while told to stop: the next worker has it at once
                self._give_back(job)
                break
            try:
                self.work(job)
            except Exception:  # noqa: BLE001 - e.g. Redis gone mid-job: the job is taken again later
                log.exception("job %s for %s failed", job.id, job.key)
        return True  # stopped (SIGTERM, Ctrl-C): not a failure

    def work(self, job: Job) -> None:
        coordinator = self.service.coordinator
        try:
            # The claim was the job's since it was queued; after a lease without renewal (queued long,
            # or its first worker died) it may have lapsed: take it again unless another job has it.
            mine = coordinator.renew(job.key, job.owner, lease=self.lease) or coordinator.claim(
                job.key, job.owner, lease=self.lease)
        except OriginError as exc:
            log.warning("claim of %s: %s", job.key, exc.public)
            return  # stays pending in the stream; taken again after the lease
        if not mine:
            log.info("%s is claimed by another job; this one is dropped", job.key)
            self._done(job)
            return
        finished = threading.Event()
        beating = threading.Thread(target=self._heartbeat, args=(job, finished), daemon=True)
        with self._lock:
            self._current = (job, finished)
        beating.start()
        try:
            self._generate(job)
        finally:
            finished.set()
            beating.join()  # a renewal in flight would beat again after a stopping worker left
            with self._lock:
                self._current = None
                handed_back = self._handed_back is job
            if not handed_back:  # else its claim and its entry are the next worker's
                try:
                    coordinator.release(job.key, job.owner)
                except Exception:  # noqa: BLE001 - it lapses with its lease
                    log.exception("releasing %s failed", job.key)
                self._done(job)

    def hand_back(self) -> bool:
        """Give up the job in hand (from another thread: a stop past its grace): it is queued again for
        the next worker, with the claim it carries, and the model's run is stopped; what the job does
        afterwards is neither released, acknowledged nor remembered as a failure (a result it still
        stores is the same bytes the next worker makes). False when no job is in hand."""
        with self._lock:
            if self._current is None or self._handed_back is not None:
                return False
            job, finished = self._current
            self._handed_back = job
        finished.set()  # its heartbeat ends: the job is the next worker's
        self._give_back(job)
        if self.interrupt is not None:
            self.interrupt()
        return True

    def _give_back(self, job: Job) -> None:
        try:
            if self.queue.give_back(job, self.consumer):
                log.info("job %s for %s handed back to the queue", job.id, job.key)
        except Exception as exc:  # noqa: BLE001 - pending still: the next worker takes it after the lease
            log.warning("handing %s back failed: %s; the next worker takes it after the lease", job.key, exc)

    def _failed(self, job: Job, error: OriginError) -> None:
        with self._lock:
            if self._handed_back is job:  # stopped by ``hand_back``: not the image's failure, nor a crash
                return
        self.failures.failed(job.key, error)

    def _generate(self, job: Job) -> None:
        service = self.service
        made = service.store.blobs.get(job.key)
        if made is not None:  # made meanwhile (a job queued twice), or made while the shared cache was down
            if isinstance(service.store.blobs, TieredBlobs):
                # Then it is only in this worker's local tier, and the servers, which find it only in the
                # shared one, would queue it again and again: put it there.
                service.store.blobs.share(job.key, made)
            return
        try:
            prepared = service.resolver.prepare(parse_path(job.request), accept=job.accept or None,
                                                signed_ok=True)
        except OriginError as exc:  # the original is gone, the request no longer resolves, storage is down
            self._failed(job, exc)
            return
        if prepared.key != job.key:
            # The original, a layer or the model changed since the job was queued: its key names content
            # that is no longer there. The next request asks for the new key.
            log.info("%s: %s changed since it was queued; dropped", job.key, prepared.public_id)
            return
        started = time.perf_counter()
        try:
            entry = service.scheduler.generation(prepared)
            if entry is not None:
                service.store.keep(job.key, entry)
                self.failures.succeeded(job.key)
        except OriginError as exc:
            log.info("%s failed in %.2fs: %s (%s)", prepared.public_id, time.perf_counter() - started,
                     exc.public, exc.detail)
            # The image's own failure is remembered for CUTOUT_FAILURE_SECONDS; a storage or Redis that
            # did not answer only for a back-off (``Failures``), as the servers' polls would queue it again.
            self._failed(job, exc)
            return
        except Exception:  # a crash is not the image's failure either: backed off from, not remembered
            if self._handed_back is not job:
                log.exception("generation of %s (%s) crashed", prepared.public_id, job.key)
            self._failed(job, OriginError())
            return
        # None: the original changed while it ran, nothing is stored (the next request has a new key).
        outcome = "done" if entry is not None else "dropped (its original changed meanwhile)"
        log.info("%s %s in %.2fs", prepared.public_id, outcome, time.perf_counter() - started)

    def _heartbeat(self, job: Job, finished: threading.Event) -> None:
        while not finished.wait(self.lease / 3):
            try:
                self.queue.heartbeat(job, self.consumer)
                self.service.coordinator.renew(job.key, job.owner, lease=self.lease)
            except Exception as exc:  # noqa: BLE001 - retried next round, well within the lease
                log.warning("renewing %s failed: %s", job.key, exc)

    def leave(self) -> None:
        try:
            self.queue.leave(self.consumer)
        except Exception as exc:  # noqa: BLE001 - Redis away: the heartbeat lapses on its own
            log.warning("removing this worker's heartbeat failed: %s; it lapses within a lease", exc)

    def _done(self, job: Job) -> None:
        try:
            self.queue.done(job)
        except Exception as exc:  # noqa: BLE001 - still pending: a later take finds the result stored
            log.warning("acknowledging %s failed: %s", job.key, exc)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if args.log_level != "debug":  # libvips' own chatter (threadpool start and end, dozens a job)
        logging.getLogger("pyvips").setLevel(logging.WARNING)
    overrides = {"originals": args.originals, "cache_dir": args.cache_dir, "state": args.state}

    def checked(settings: Settings) -> None:
        """What a worker needs beyond a server's settings: the queue's Redis, and buckets that exist."""
        if settings.state is None:
            raise SettingsError("CUTOUT_STATE (--state) is required: the Redis the queue is in")
        check_buckets(settings)
        check_state(settings)

    try:
        settings, cache_dir = settings_with_cache_folder(overrides, checked)
    except SettingsError as exc:
        print(f"cutout worker: {exc}", file=sys.stderr)
        return 2
    try:
        import redis

        from cache.redis_queue import ModelQueue
    except ImportError as exc:
        print(f"cutout worker: needs the scale-out clients: pip install 'cutout[scale]' ({exc})",
              file=sys.stderr)
        return 2
    from cache import DerivativeCache
    from cutout.service import Service

    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(args.metrics_port, addr="127.0.0.1")
        except OSError as exc:  # in use, or below 1024 without the right to it; before the model loads
            print(f"cutout worker: --metrics-port {args.metrics_port}: cannot listen on 127.0.0.1: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 2
    from transform.segment import SegmenterError, load_segmenter

    try:
        segmenter = load_segmenter()
    except SegmenterError as exc:
        print(f"cutout worker: {exc}", file=sys.stderr)
        return 2
    running = list(segmenter.model.session.get_providers())
    problem = provider_problem(segmenter.model.config.providers, running)
    if problem:
        print(f"cutout worker: {problem}", file=sys.stderr)
        return 2
    print(f"cutout worker: model {segmenter.model_id} on {running[0]}", flush=True)
    # Said because nothing else tells: a worker on another machine without the shared tier stores its
    # cut-outs where no server looks, and every server answers 423 for them for ever.
    where = settings.shared_cache or (f"{cache_dir.resolve()} only (CUTOUT_SHARED_CACHE unset: servers see "
                                      "them only if they use this same cache folder)")
    print(f"cutout worker: cut-outs stored in {where}", flush=True)
    cache = DerivativeCache(cache_dir, size_limit=settings.cache_size)
    service = Service.open(settings, cache, segmenter=segmenter)
    assert settings.state is not None  # checked it
    queue = ModelQueue(settings.state, lease=settings.lease_seconds)
    while True:  # a worker may start before Redis, or while it restarts: it waits, and says so
        try:
            queue.wait_ready(timeout=REDIS_WAIT_SECONDS)
            break
        except redis.ConnectionError as exc:
            unreachable = f"cutout worker: the Redis of CUTOUT_STATE cannot be reached ({exc})"
            if args.once:
                print(f"{unreachable}; --once gives up after {REDIS_WAIT_SECONDS:g} s", file=sys.stderr)
                service.close()
                cache.close()
                return 1
            print(f"{unreachable}; waiting for it", file=sys.stderr, flush=True)
    worker = Worker(service, queue, consumer=f"{socket.gethostname()}-{os.getpid()}",
                    interrupt=segmenter.model.interrupt)
    signals: list[float] = []  # when each stop signal came

    def stop(signum: int, frame: FrameType | None) -> None:
        signals.append(time.monotonic())
        worker.stopping.set()  # the job in hand may finish within the grace (``until_stopped``)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    outcome: list[bool] = []
    # The jobs run in a thread: a signal's handler runs only in the main thread, between two bytecodes,
    # so while the model ran in it no stop could be heard before the inference ended.
    jobs = threading.Thread(target=lambda: outcome.append(worker.run(
        once=args.once, announce=(segmenter.model_id, running[0]))), name="cutout-jobs", daemon=True)
    jobs.start()
    try:
        until_stopped(worker, jobs, signals, settings.stop_grace_seconds)
    finally:
        service.close()
        cache.close()
    if jobs.is_alive():
        # A render after the model is not stopped by ``interrupt``; nothing it makes is wanted. The
        # interpreter's exit would wait on no daemon thread, but its native code could outlive the
        # modules it uses: leave at once, as a supervisor's SIGKILL would, its heartbeat first.
        log.warning("the handed-back job is still unwinding; exiting without it")
        worker.leave()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    if outcome and not outcome[0]:
        print("cutout worker: the Redis of CUTOUT_STATE went away; --once gives up", file=sys.stderr)
        return 1
    return 0


def until_stopped(worker: Worker, jobs: threading.Thread, signals: list[float], grace: float) -> None:
    """Wait for ``jobs`` to end; once told to stop, the job in hand is handed back past ``grace`` seconds
    or at a second signal, and the jobs' thread is waited for UNWIND_SECONDS more at most."""
    handed_back_at: float | None = None
    while jobs.is_alive():
        jobs.join(0.1)  # short: the signal handlers run in this thread, between these waits
        now = time.monotonic()
        if handed_back_at is None and signals and (len(signals) > 1 or now - signals[0] >= grace):
            handed_back_at = now
            if worker.hand_back():
                why = "a second signal" if len(signals) > 1 else f"the job did not end within {grace:g} s"
                log.info("stopping: %s; the job was handed back", why)
        if handed_back_at is not None and now - handed_back_at >= UNWIND_SECONDS:
            return
