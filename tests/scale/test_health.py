"""What a queue-mode replica on S3 and Redis says about its health (/readyz, /metrics) while the parts it
depends on are away: a real replica process, a real redis-server stopped, a real SeaweedFS stalled."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cache.redis_queue import ModelQueue
from tests.app.server_process import ServerProcess
from tests.scale.cluster import cluster_env, upload_samples
from tests.scale.servers import RedisServer, SeaweedS3

pytestmark = pytest.mark.integration


@pytest.fixture
def replica(seaweed: SeaweedS3, bucket: str, redis_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A replica with no worker: the model queue is in Redis, nothing takes its jobs."""
    upload_samples(seaweed, bucket)
    # Model settings as QA set them on a replica, where `cutout worker` runs the model.
    env = cluster_env(seaweed, redis_url, bucket, CUTOUT_S3_TIMEOUT="1", CUTOUT_QUALITY="best",
                      CUTOUT_MODEL_ASPECT="keep")
    server = ServerProcess(f"s3://{bucket}/originals", tmp_path / "cache", env=env)  # type: ignore[arg-type]
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_model_settings_a_queue_mode_replica_never_reads_are_named_at_start(replica: ServerProcess) -> None:
    log = replica.log.read_text()
    assert ("warning: CUTOUT_MODEL_ASPECT, CUTOUT_QUALITY are not used by this server: the model runs in "
            "`cutout worker`") in log, log


def test_metrics_are_served_while_redis_is_down(replica: ServerProcess, redis_server: RedisServer) -> None:
    up = httpx.get(replica.url + "/metrics", timeout=30)
    assert up.status_code == 200 and "cutout_state_reachable 1.0" in up.text, up.text
    redis_server.stop()
    try:
        down = httpx.get(replica.url + "/metrics", timeout=30)
        assert down.status_code == 200, down.text
        assert "cutout_state_reachable 0.0" in down.text and "cutout_claims_active" in down.text
    finally:
        redis_server.start()
    assert "cutout_state_reachable 1.0" in httpx.get(replica.url + "/metrics", timeout=30).text


def ready_until(replica: ServerProcess, wanted: Callable[[str], bool], timeout: float = 20) -> str:
    """/readyz's text once ``wanted`` holds for it: it answers from the last background check (a round
    every second or so), so a change shows in the round after it."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(replica.url + "/readyz", timeout=30)
        assert answer.status_code == 200, answer.text  # renders and hits go on: never taken out
        if wanted(answer.text):
            return answer.text
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.1)


def test_readyz_is_degraded_while_no_worker_is_alive(replica: ServerProcess, redis_url: str) -> None:
    ready_until(replica, lambda text: "No background-removal worker has started yet" in text)
    # What `cutout worker` calls, with a short heartbeat (3 s: some rounds of checks see it alive).
    worker = ModelQueue(redis_url, lease=1, beat=3)
    worker.announce("isnet-test", "CPUExecutionProvider", "w1")
    text = ready_until(replica, lambda text: "degraded" not in text)
    assert "isnet-test" in text, text
    # The worker died: its heartbeat lapses (3 s), the model id it announced stays.
    text = ready_until(replica, lambda text: "no background-removal worker is alive" in text)
    assert "isnet-test" in text, text
    worker.beat("w1")
    ready_until(replica, lambda text: "degraded" not in text)


def test_readyz_answers_at_once_and_degraded_while_the_storage_stalls(
        replica: ServerProcess, seaweed: SeaweedS3, redis_url: str) -> None:
    """The probe answers from the last background check: it took up to two tries of CUTOUT_S3_TIMEOUT
    (here 2 x 1 s) about once every 5 s while the storage stalled, past a load balancer's probe timeout."""
    ModelQueue(redis_url).announce("isnet-test", "CPUExecutionProvider", "w1")
    ready_until(replica, lambda text: "degraded" not in text)
    seaweed.pause()
    try:
        deadline = time.monotonic() + 30
        said = 0
        while said < 10:  # a busy health checker, before and after the check found the stall
            started = time.monotonic()
            answer = httpx.get(replica.url + "/readyz", timeout=30)
            assert time.monotonic() - started < 1, "the probe waited for the storage"
            assert answer.status_code == 200, answer.text  # cached answers still serve: not taken out
            if "storage of CUTOUT_ORIGINALS" in answer.text:
                assert "answer" in answer.text, answer.text  # "does not answer", "did not answer within"
                said += 1
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.1)
    finally:
        seaweed.resume()
    deadline = time.monotonic() + 30
    while "storage" in (text := httpx.get(replica.url + "/readyz", timeout=30).text):
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
