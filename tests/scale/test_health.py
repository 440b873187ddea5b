"""What a queue-mode replica on S3 and Redis says about its health (/readyz, /metrics) while the parts it
depends on are away: a real replica process, a real redis-server stopped, a real SeaweedFS stalled."""

from __future__ import annotations

import time
from collections.abc import Iterator
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


def test_readyz_is_degraded_while_no_worker_is_alive(replica: ServerProcess, redis_url: str) -> None:
    def ready() -> str:
        answer = httpx.get(replica.url + "/readyz", timeout=30)
        assert answer.status_code == 200, answer.text  # renders and hits go on: never taken out
        return answer.text

    assert "No background-removal worker has started yet" in ready()
    worker = ModelQueue(redis_url, lease=1, beat=1)  # what `cutout worker` calls, with a short heartbeat
    worker.announce("isnet-test", "CPUExecutionProvider", "w1")
    assert "degraded" not in ready() and "isnet-test" in ready()
    time.sleep(1.5)  # the worker died: its heartbeat lapses, the model id it announced stays
    text = ready()
    assert "no background-removal worker is alive" in text and "isnet-test" in text, text
    worker.beat("w1")
    assert "degraded" not in ready()


def test_readyz_is_degraded_while_the_storage_stalls_and_asks_it_rarely(
        replica: ServerProcess, seaweed: SeaweedS3, redis_url: str) -> None:
    ModelQueue(redis_url).announce("isnet-test", "CPUExecutionProvider", "w1")
    assert "degraded" not in httpx.get(replica.url + "/readyz", timeout=30).text
    seaweed.pause()
    try:
        time.sleep(5.5)  # past the interval between two checks of the storage
        started = time.monotonic()
        first = httpx.get(replica.url + "/readyz", timeout=30)
        assert time.monotonic() - started < 2 * 1 + 2  # one HEAD of the bucket: two tries of 1 s
        assert first.status_code == 200 and "storage of CUTOUT_ORIGINALS" in first.text, first.text
        assert "does not answer" in first.text
        for _ in range(10):  # a busy health checker: answered from the last check, S3 not asked again
            started = time.monotonic()
            again = httpx.get(replica.url + "/readyz", timeout=30)
            assert again.status_code == 200 and "storage" in again.text
            assert time.monotonic() - started < 0.5
    finally:
        seaweed.resume()
    deadline = time.monotonic() + 30
    while "storage" in (text := httpx.get(replica.url + "/readyz", timeout=30).text):
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
