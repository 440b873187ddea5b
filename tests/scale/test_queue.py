"""The model queue on a real redis-server, and `cutout worker`'s refusals (no model run here)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cache.redis_queue import ModelQueue
from cutout.cli import main
from cutout.worker import provider_problem
from grammar.errors import OriginError
from tests.app.helpers import SAMPLES
from tests.scale.servers import RedisServer

if TYPE_CHECKING:
    from tests.scale.cluster import WorkerProcess

pytestmark = pytest.mark.integration


def test_a_job_of_a_worker_that_stopped_renewing_goes_to_the_next_after_the_lease(redis_url: str) -> None:
    servers, one, two = (ModelQueue(redis_url, lease=0.4) for _ in range(3))
    servers.enqueue("d:k", "/image/upload/e_background_removal/docs/road", None, "job:1")
    assert servers.depth() == 1 and servers.model() is None
    job = one.take("one", block=0.1)
    assert job is not None and (job.key, job.owner, job.accept) == ("d:k", "job:1", "")
    assert two.take("two", block=0.1) is None  # in one's hands
    time.sleep(0.25)
    one.heartbeat(job, "one")  # still working: the idle time starts again
    time.sleep(0.25)
    assert two.take("two", block=0.05) is None
    time.sleep(0.5)  # one died: no heartbeat for a lease
    taken = two.take("two", block=0.05)
    assert taken is not None and taken.id == job.id
    two.done(taken)
    assert servers.depth() == 0 and two.take("two", block=0.05) is None
    two.announce("isnet-abc", "CPUExecutionProvider", "two")
    assert servers.model() == "isnet-abc"


def test_the_queue_survives_a_redis_restart_without_its_data(redis_server: RedisServer,
                                                             redis_url: str) -> None:
    queue = ModelQueue(redis_url, lease=5)
    queue.enqueue("d:a", "/image/upload/docs/road", None, "job:a")
    redis_server.stop()
    redis_server.start()  # persistence off: stream and group are gone
    queue.enqueue("d:b", "/image/upload/docs/road", None, "job:b")
    job = queue.take("w", block=0.1)
    assert job is not None and job.key == "d:b"


def test_a_worker_asked_for_cuda_refuses_unless_it_runs_on_it(tmp_path: Path, redis_url: str,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert provider_problem(("CUDAExecutionProvider", "CPUExecutionProvider"), ["CPUExecutionProvider"])
    assert provider_problem(("cuda",), ["CPUExecutionProvider"])
    on_gpu = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert provider_problem(("CUDAExecutionProvider",), on_gpu) is None
    assert provider_problem((), ["CPUExecutionProvider"]) is None
    monkeypatch.setenv("CUTOUT_ORT_PROVIDERS", "CUDAExecutionProvider,CPUExecutionProvider")
    folders = ["--originals", str(tmp_path), "--cache-dir", str(tmp_path / "c")]
    code = main(["worker", *folders, "--state", redis_url])
    assert code == 2 and "CUDAExecutionProvider" in capsys.readouterr().err
    monkeypatch.delenv("CUTOUT_ORT_PROVIDERS")
    assert main(["worker", *folders]) == 2
    assert "CUTOUT_STATE" in capsys.readouterr().err


def test_a_worker_started_before_redis_waits_for_it(redis_server: RedisServer, redis_url: str,
                                                    tmp_path: Path) -> None:
    """It says it is waiting (not 30 s of silence, then a traceback), and takes jobs once Redis is up."""
    from tests.conftest import require_model
    from tests.scale.cluster import WorkerProcess

    require_model()
    redis_server.stop()
    worker = WorkerProcess(str(SAMPLES), tmp_path / "cache", {"CUTOUT_STATE": redis_url})
    try:
        deadline = time.monotonic() + 120
        while "waiting for it" not in worker.log.read_text():
            assert worker.process.poll() is None and time.monotonic() < deadline, worker.log.read_text()
            time.sleep(0.5)
        redis_server.start()
        queue = ModelQueue(redis_url, lease=5)
        while queue.model() is None:  # announced once it is connected
            assert worker.process.poll() is None and time.monotonic() < deadline, worker.log.read_text()
            time.sleep(0.5)
        assert "Traceback" not in worker.log.read_text()
    finally:
        if redis_server.process is None:
            redis_server.start()
        worker.kill()


def test_a_key_whose_claim_lapses_while_no_worker_runs_waits_in_the_queue_once(redis_url: str,
                                                                              tmp_path: Path) -> None:
    from cache import DerivativeCache
    from cache.redis_state import RedisCoordinator
    from cutout.queued import QueuedGenerator
    from cutout.settings import load_settings

    settings = load_settings({"CUTOUT_ORIGINALS": str(SAMPLES), "CUTOUT_CACHE_DIR": str(tmp_path),
                              "CUTOUT_STATE": redis_url, "CUTOUT_BACKGROUND_REMOVAL": "queue",
                              "CUTOUT_LEASE_SECONDS": "0.5"})
    cache = DerivativeCache(tmp_path)
    generator = QueuedGenerator(settings, cache, RedisCoordinator(redis_url))
    request = ("/image/upload/e_background_removal/docs/road", None)
    try:
        assert generator.submit("d:k", lambda: None, request=request)
        assert not generator.submit("d:k", lambda: None, request=request)  # claimed: 423
        for _ in range(2):  # no worker: each lease lapses, and the next poll takes the claim again
            time.sleep(0.6)
            assert generator.submit("d:k", lambda: None, request=request)
            assert generator.queue.depth() == 1  # the job that waits stands for it: no duplicate
        worker = ModelQueue(redis_url, lease=0.5)
        job = worker.take("w", block=0.1)
        assert job is not None and RedisCoordinator(redis_url).renew("d:k", job.owner, lease=0.5)
        worker.done(job)
        time.sleep(0.6)  # done, nothing stored (say the original was gone): a new request queues anew
        assert generator.submit("d:k", lambda: None, request=request)
        assert generator.queue.depth() == 1 and worker.take("w", block=0.1) is not None
    finally:
        generator.close()
        cache.close()


def test_a_worker_logs_a_failed_job_as_failed(redis_url: str, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    from cache import DerivativeCache
    from cutout.service import Service
    from cutout.settings import load_settings
    from cutout.worker import Worker
    from grammar import parse_path
    from tests.app.helpers import EllipseSegmenter

    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    settings = load_settings({"CUTOUT_ORIGINALS": str(tmp_path / "o"),
                              "CUTOUT_CACHE_DIR": str(tmp_path / "c"), "CUTOUT_STATE": redis_url})
    cache = DerivativeCache(tmp_path / "c")
    service = Service.open(settings, cache, segmenter=EllipseSegmenter())
    queue = ModelQueue(redis_url, lease=5)
    try:
        request = "/image/upload/e_background_removal/broken"
        key = service.resolver.prepare(parse_path(request), accept=None, signed_ok=True).key
        queue.enqueue(key, request, None, "job:1")
        with caplog.at_level("INFO", logger="cutout.worker"):
            Worker(service, queue, consumer="w").run(once=True)
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("broken ")]
        assert len(lines) == 1 and lines[0].startswith("broken failed in "), lines
        assert service.coordinator.failure(key) is not None  # remembered: polls get the error
    finally:
        queue.close()
        service.close()
        cache.close()


def test_a_job_failed_by_the_storage_backs_off_briefly_and_runs_again(redis_url: str, tmp_path: Path) -> None:
    """A worker whose storage (or Redis) stopped answering mid-job: the failure is not the image's, so it
    is not remembered for CUTOUT_FAILURE_SECONDS (it answered 503 that long after the storage was back),
    only for a back-off of 1 s (every server's poll queued the job again meanwhile: the model ran for each);
    a request after it queues the job again and it is made. An undecodable image stays remembered (above)."""
    from cache import DerivativeCache
    from cache.s3 import StorageUnavailable
    from cutout.service import Service
    from cutout.settings import load_settings
    from cutout.worker import Worker
    from grammar import parse_path
    from tests.app.helpers import EllipseSegmenter

    class StorageDownOnce(EllipseSegmenter):
        def segment(self, image: Any, *, fine_edges: bool) -> Any:
            if self.calls == 0:
                self.calls += 1
                raise StorageUnavailable()
            return super().segment(image, fine_edges=fine_edges)

    settings = load_settings({"CUTOUT_ORIGINALS": str(SAMPLES), "CUTOUT_CACHE_DIR": str(tmp_path / "c"),
                              "CUTOUT_STATE": redis_url, "CUTOUT_FAILURE_SECONDS": "600"})
    cache = DerivativeCache(tmp_path / "c")
    model = StorageDownOnce()
    service = Service.open(settings, cache, segmenter=model)
    queue = ModelQueue(redis_url, lease=5)
    try:
        request = "/image/upload/e_background_removal/docs/rmv_bgd/router_orig"
        key = service.resolver.prepare(parse_path(request), accept=None, signed_ok=True).key
        for owner in ("job:1", "job:2"):  # the first fails; a request after it queues the second
            queue.enqueue(key, request, None, owner)
            if owner == "job:1":  # its one job (a run --once waits a second more for another)
                job = queue.take("w", block=1.0)
                assert job is not None
                Worker(service, queue, consumer="w").work(job)
                with pytest.raises(OriginError) as backing_off:  # what a server's poll answers meanwhile
                    service.store.lookup(key)
                assert backing_off.value.status == 503 and backing_off.value.headers["Retry-After"] == "1"
                assert not service.coordinator.claimed(key)
                time.sleep(1.1)
                assert service.store.lookup(key) is None  # over: the next request queues it again
            else:
                assert Worker(service, queue, consumer="w").run(once=True)
        assert model.calls == 2 and service.store.lookup(key) is not None
    finally:
        queue.close()
        service.close()
        cache.close()


def _in_process_worker(redis_url: str, tmp_path: Path,
                       model: Any = None) -> tuple[Any, ModelQueue, Callable[[], None]]:
    """A Worker over the samples with a stand-in ``model`` (no model load); and what closes it."""
    from cache import DerivativeCache
    from cutout.service import Service
    from cutout.settings import load_settings
    from cutout.worker import Worker
    from tests.app.helpers import EllipseSegmenter

    settings = load_settings({"CUTOUT_ORIGINALS": str(SAMPLES), "CUTOUT_CACHE_DIR": str(tmp_path / "c"),
                              "CUTOUT_STATE": redis_url})
    cache = DerivativeCache(tmp_path / "c")
    service = Service.open(settings, cache, segmenter=model or EllipseSegmenter())
    queue = ModelQueue(redis_url, lease=5)

    def close() -> None:
        queue.close()
        service.close()
        cache.close()

    return Worker(service, queue, consumer="w"), queue, close


def test_a_worker_that_stops_takes_its_heartbeat_with_it(redis_url: str, tmp_path: Path) -> None:
    """--once at the queue's end, or stopped (what SIGTERM and Ctrl-C set): it is not counted alive
    for the rest of its heartbeat's lease (15 s here)."""
    worker, queue, close = _in_process_worker(redis_url, tmp_path)
    try:
        assert worker.run(once=True, announce=("isnet-test", "CPUExecutionProvider"))
        assert queue.model() == "isnet-test" and queue.alive() == 0
        running = threading.Thread(target=worker.run, kwargs={"announce": ("isnet-test", "CPU")})
        running.start()
        deadline = time.monotonic() + 10
        while queue.alive() == 0:
            assert time.monotonic() < deadline, "the worker never announced itself"
            time.sleep(0.05)
        worker.stopping.set()
        running.join(timeout=10)
        assert not running.is_alive() and queue.alive() == 0
    finally:
        close()


def test_a_workers_metrics_say_whether_redis_answers(redis_server: RedisServer, redis_url: str,
                                                    tmp_path: Path) -> None:
    """cutout_state_reachable on --metrics-port follows the worker's own calls to Redis: it read 0 for
    ever on a worker (only a server's scrape set it), so an alert on it fired for every healthy worker."""
    from prometheus_client import REGISTRY

    def reachable() -> float | None:
        return REGISTRY.get_sample_value("cutout_state_reachable")

    worker, queue, close = _in_process_worker(redis_url, tmp_path)
    running = threading.Thread(target=worker.run)
    try:
        assert worker.run(once=True) and reachable() == 1
        redis_server.stop()
        running.start()
        deadline = time.monotonic() + 20
        while reachable() != 0:
            assert time.monotonic() < deadline, "Redis away, and the worker's metrics did not say so"
            time.sleep(0.1)
        redis_server.start()
        while reachable() != 1:
            assert time.monotonic() < deadline + 20, "Redis back, and the worker's metrics did not say so"
            time.sleep(0.1)
    finally:
        if redis_server.process is None:
            redis_server.start()
        worker.stopping.set()
        if running.is_alive():
            running.join(timeout=10)
        close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cutout_worker_stopped_by_a_signal_is_not_counted_alive(redis_url: str, tmp_path: Path,
                                                                sig: signal.Signals) -> None:
    from tests.conftest import require_model
    from tests.scale.cluster import WorkerProcess

    require_model()
    worker = WorkerProcess(str(SAMPLES), tmp_path / "cache", {"CUTOUT_STATE": redis_url})
    queue = ModelQueue(redis_url, lease=5)
    try:
        worker.wait_ready()
        deadline = time.monotonic() + 60
        while queue.alive() == 0:
            assert worker.process.poll() is None and time.monotonic() < deadline, worker.log.read_text()
            time.sleep(0.1)
        worker.kill(sig)
        assert worker.process.returncode == 0, worker.log.read_text()
        assert queue.alive() == 0  # at once, not after its heartbeat's 15 s
    finally:
        worker.kill()
        queue.close()


def _ask_until_taken(url: str, worker: WorkerProcess, redis_server: RedisServer, *, seconds: float) -> None:
    """Ask the server for the cut-out (423: queued) once it has announced the queue, then wait until
    ``worker`` has taken the job (the model is about to run)."""
    import httpx

    from tests.app.test_app_server import CUTOUT

    deadline = time.monotonic() + seconds
    while (asked := httpx.get(url + CUTOUT, timeout=30)).status_code == 503:  # not announced
        assert time.monotonic() < deadline, asked.text
        time.sleep(0.2)
    assert asked.status_code == 423, asked.text
    while redis_server.pending() == 0:  # taken
        assert time.monotonic() < deadline, worker.log.read_text()
        time.sleep(0.02)


@pytest.mark.slow
def test_cutout_worker_stopped_mid_job_finishes_it_and_leaves_no_claim_or_pending_job(
        redis_server: RedisServer, redis_url: str, tmp_path: Path) -> None:
    """SIGTERM while the model runs, within CUTOUT_STOP_GRACE_SECONDS: the job in hand ends (one
    inference), is stored and acknowledged, and its claim is given back; nothing waits for
    CUTOUT_LEASE_SECONDS (10 minutes here)."""
    import httpx

    from cache.redis_state import RedisCoordinator
    from tests.app.server_process import ServerProcess
    from tests.app.test_app_server import CUTOUT
    from tests.conftest import require_model
    from tests.scale.cluster import WorkerProcess

    require_model()
    env = {"CUTOUT_STATE": redis_url, "CUTOUT_BACKGROUND_REMOVAL": "queue", "CUTOUT_LEASE_SECONDS": "600"}
    cache = tmp_path / "cache"  # one folder for both: no shared tier needed
    worker = WorkerProcess(str(SAMPLES), cache, {**env, "CUTOUT_STOP_GRACE_SECONDS": "600"})
    server = ServerProcess(SAMPLES, cache, env=env)
    try:
        worker.wait_ready()
        server.wait_ready()
        _ask_until_taken(server.url, worker, redis_server, seconds=60)
        worker.kill(signal.SIGTERM)
        assert worker.process.returncode == 0, worker.log.read_text()
        assert redis_server.pending() == 0 and RedisCoordinator(redis_url).depth() == 0
        done = httpx.get(server.url + CUTOUT, timeout=30)
        assert done.status_code == 200 and done.headers["content-type"] == "image/png"
    finally:
        worker.kill()
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["past the grace", "a second signal"])
def test_cutout_worker_stopped_mid_job_hands_it_back_to_the_next_worker_at_once(
        redis_server: RedisServer, redis_url: str, tmp_path: Path, stop: str) -> None:
    """SIGTERM while the model runs, and the job does not end within CUTOUT_STOP_GRACE_SECONDS (0.2 s;
    or a second signal, with a grace of 10 minutes): the worker stops its model, hands the job back and
    exits, where it finished the job first and a supervisor's grace period (Docker's 10 s) killed it
    meanwhile. Another worker takes the job at once, not after CUTOUT_LEASE_SECONDS (10 minutes here)."""
    import httpx

    from cache.redis_state import RedisCoordinator
    from tests.app.server_process import ServerProcess
    from tests.app.test_app_server import CUTOUT
    from tests.conftest import require_model
    from tests.scale.cluster import WorkerProcess

    require_model()
    env = {"CUTOUT_STATE": redis_url, "CUTOUT_BACKGROUND_REMOVAL": "queue", "CUTOUT_LEASE_SECONDS": "600"}
    grace = "0.2" if stop == "past the grace" else "600"
    cache = tmp_path / "cache"
    first = WorkerProcess(str(SAMPLES), cache, {**env, "CUTOUT_STOP_GRACE_SECONDS": grace})
    server = ServerProcess(SAMPLES, cache, env=env)
    second: WorkerProcess | None = None
    queue = ModelQueue(redis_url, lease=600)
    try:
        first.wait_ready()
        server.wait_ready()
        _ask_until_taken(server.url, first, redis_server, seconds=120)
        time.sleep(0.3)  # into the model's run (seconds on these CPUs)
        os.killpg(first.process.pid, signal.SIGTERM)
        if stop == "a second signal":
            time.sleep(0.3)
            os.killpg(first.process.pid, signal.SIGTERM)
        assert first.process.wait(timeout=60) == 0, first.log.read_text()
        log = first.log.read_text()
        assert "handed back to the queue" in log and "crashed" not in log, log
        # Queued again, not taken; its claim still the job's, so no server queues it twice meanwhile.
        assert redis_server.pending() == 0 and queue.depth() == 1 and RedisCoordinator(redis_url).depth() == 1
        assert httpx.get(server.url + CUTOUT, timeout=30).status_code == 423
        second = WorkerProcess(str(SAMPLES), cache, env)
        second.wait_ready()
        deadline = time.monotonic() + 240
        while (done := httpx.get(server.url + CUTOUT, timeout=30)).status_code == 423:
            assert time.monotonic() < deadline, second.log.read_text()
            time.sleep(0.2)
        assert done.status_code == 200 and done.headers["content-type"] == "image/png", done.text
        assert second.inferences() == 1 and queue.depth() == 0
    finally:
        first.kill()
        if second is not None:
            second.kill()
        server.stop()
        queue.close()


def test_a_job_handed_back_goes_to_the_next_worker_and_is_not_finished_here(
        redis_url: str, tmp_path: Path) -> None:
    """``Worker.hand_back`` (a stop past its grace) while the model runs: the job is queued again with its
    claim for the next worker, and the first, once its model's run is stopped, neither acknowledges nor
    releases it nor remembers the stopped run as a crash (a back-off would answer 500 meanwhile)."""
    from cache.redis_state import RedisCoordinator
    from grammar import parse_path
    from tests.app.helpers import EllipseSegmenter

    class Interruptible(EllipseSegmenter):
        """Held in its run until interrupted, which it ends as onnxruntime's terminate flag does."""

        def segment(self, image: Any, *, fine_edges: bool) -> Any:
            self.calls += 1
            assert self.gate is not None and self.gate.wait(30)
            raise RuntimeError("Exiting due to terminate flag being set to true.")

    model = Interruptible(gate=threading.Event())
    worker, queue, close = _in_process_worker(redis_url, tmp_path, model)
    assert model.gate is not None
    worker.interrupt = model.gate.set
    coordinator = RedisCoordinator(redis_url)
    request = "/image/upload/e_background_removal/docs/rmv_bgd/router_orig"
    key = worker.service.resolver.prepare(parse_path(request), accept=None, signed_ok=True).key
    assert coordinator.claim(key, "job:1", lease=30)  # as a server queues it
    queue.enqueue(key, request, None, "job:1")
    running = threading.Thread(target=worker.run)
    try:
        assert not worker.hand_back()  # no job in hand
        running.start()
        deadline = time.monotonic() + 20
        while model.calls == 0:
            assert time.monotonic() < deadline, "the job never reached the model"
            time.sleep(0.01)
        assert worker.hand_back() and not worker.hand_back()  # once
        worker.stopping.set()
        running.join(timeout=20)
        assert not running.is_alive()
        assert coordinator.claimed(key) and coordinator.failure(key) is None
        again = queue.take("next", block=1.0)
        assert again is not None and (again.key, again.owner, again.request) == (key, "job:1", request)
        assert queue.depth() == 1  # the old entry gone, the new one taken
    finally:
        worker.stopping.set()
        close()
        coordinator.close()


def test_a_redis_that_does_not_answer_is_asked_the_model_id_once_a_period_not_once_a_request(
        redis_server: RedisServer, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A paused or partitioned Redis times out rather than refusing: asking it again for every cut-out
    made each cached cut-out wait the whole timeout (2 s) for as long as Redis was away."""
    import os

    import cutout.queued
    from cutout.queued import QueuedModel

    monkeypatch.setattr(cutout.queued, "MODEL_ID_SECONDS", 0.5)
    queue = ModelQueue(redis_url, timeout=0.3)
    queue.announce("isnet-abc", "CPUExecutionProvider", "w")
    model = QueuedModel(queue)
    asked = []
    real = queue.model
    monkeypatch.setattr(queue, "model", lambda: asked.append(1) or real())
    assert model.model_id == "isnet-abc" and len(asked) == 1
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        time.sleep(0.6)
        assert [model.model_id for _ in range(5)] == ["isnet-abc"] * 5  # the id announced last
        assert len(asked) == 2  # one timed-out question, then the id known serves the period
        time.sleep(0.6)
        assert model.model_id == "isnet-abc" and len(asked) == 3
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    time.sleep(0.6)
    assert model.model_id == "isnet-abc" and len(asked) == 4


def test_a_job_made_while_the_shared_cache_was_down_is_put_there_when_queued_again(
        redis_url: str, seaweed: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cut-out made while the shared cache did not answer reached only the worker's local tier (the
    shared put is skipped, logged). The servers look in the shared tier, find nothing and queue it again:
    the worker, finding it made, puts it into the shared tier, instead of returning while the servers
    answer 423 until its local copy is evicted."""
    from cache import DerivativeCache
    from cutout.service import Service
    from cutout.settings import load_settings
    from cutout.worker import Worker
    from grammar import parse_path
    from tests.app.helpers import EllipseSegmenter

    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    settings = load_settings({**seaweed.env(), "CUTOUT_ORIGINALS": str(SAMPLES),
                              "CUTOUT_CACHE_DIR": str(tmp_path / "c"), "CUTOUT_STATE": redis_url,
                              "CUTOUT_SHARED_CACHE": f"s3://{bucket}/derived"})
    cache = DerivativeCache(tmp_path / "c")
    model = EllipseSegmenter()
    service = Service.open(settings, cache, segmenter=model)
    queue = ModelQueue(redis_url, lease=5)
    blobs = service.store.blobs
    try:
        request = "/image/upload/e_background_removal/docs/rmv_bgd/router_orig"
        key = service.resolver.prepare(parse_path(request), accept=None, signed_ok=True).key
        with monkeypatch.context() as patch:  # the shared tier is down while the job runs: its put is skipped
            patch.setattr(blobs.shared.at, "down", lambda: True)
            queue.enqueue(key, request, None, "job:1")
            assert Worker(service, queue, consumer="w").run(once=True)
        assert blobs.local.get(key) is not None and blobs.shared.has(key) is False
        queue.enqueue(key, request, None, "job:2")  # a server found nothing in the shared tier
        assert Worker(service, queue, consumer="w").run(once=True)
        assert blobs.shared.has(key) is True and model.calls == 1  # put there, not made again
    finally:
        queue.close()
        service.close()
        cache.close()
