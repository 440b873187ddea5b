"""RedisCoordinator against a real redis-server: claims, leases, compare-and-set, failures, allow-list."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cache.redis_state import RedisCoordinator, StateUnavailable
from tests.scale.servers import RedisServer

pytestmark = pytest.mark.integration


def test_claims_are_exclusive_leased_and_only_the_owner_renews_or_releases(redis_url: str) -> None:
    state = RedisCoordinator(redis_url)
    assert state.claim("k", "a", lease=0.3)
    assert not state.claim("k", "b", lease=5)
    assert state.claimed("k") and state.depth() == 1
    assert not state.renew("k", "b", lease=5)
    state.release("k", "b")  # not b's: stays
    assert state.claimed("k")
    assert state.renew("k", "a", lease=0.3)
    time.sleep(0.45)  # expired: a dead owner's claim no longer blocks the key
    assert not state.claimed("k") and state.depth() == 0
    assert state.claim("k", "b", lease=5)
    assert not state.renew("k", "a", lease=5)  # a lost it: cannot extend b's claim
    state.release("k", "a")
    assert state.claimed("k")
    state.release("k", "b")
    assert not state.claimed("k") and state.depth() == 0


def test_failures_expire_and_the_allow_list_is_shared(redis_url: str) -> None:
    one, other = RedisCoordinator(redis_url), RedisCoordinator(redis_url)
    one.remember_failure("k", 422, "cannot decode é", ttl=0.3)
    failure = other.failure("k")
    assert failure is not None and (failure.status, failure.message) == (422, "cannot decode é")
    time.sleep(0.4)
    assert other.failure("k") is None
    assert not other.allowed("c_scale,w_10|docs/road")
    one.allow("c_scale,w_10|docs/road")
    assert other.allowed("c_scale,w_10|docs/road") and other.writable()


@pytest.mark.parametrize("store", ["redis", "folder"])
def test_failures_in_a_row_are_counted_shared_kept_a_while_and_reset_by_a_success(
        redis_url: str, tmp_path: Path, store: str) -> None:
    """The back-off's count (``cutout.store.Failures``), alike in both coordinators."""
    from cache import DerivativeCache

    if store == "redis":
        one, other = RedisCoordinator(redis_url), RedisCoordinator(redis_url)
    else:
        one = other = DerivativeCache(tmp_path / "c")
    assert [one.failed_again("k", keep=5), other.failed_again("k", keep=5)] == [1, 2]
    assert one.failed_again("other", keep=0.3) == 1
    other.succeeded("k")
    assert one.failed_again("k", keep=5) == 1
    time.sleep(0.4)  # kept that long after the last failure: a crash long after starts from 1 again
    assert one.failed_again("other", keep=5) == 1
    one.remember_failure("k", 503, "storage down", ttl=2.5)
    failure = other.failure("k")
    assert failure is not None and failure.retry_after == 3  # what a 503 answering it says


def test_redis_down_claims_answer_503_and_failures_degrade(redis_server: RedisServer, redis_url: str) -> None:
    state = RedisCoordinator(redis_url, timeout=0.5)
    redis_server.stop()
    try:
        with pytest.raises(StateUnavailable) as raised:
            state.claim("k", "a", lease=5)
        assert raised.value.status == 503 and raised.value.headers["Retry-After"]
        assert state.failure("k") is None  # not known: the render is tried again
        state.remember_failure("k", 400, "bad", ttl=5)  # logged, not raised
        assert state.failed_again("k", keep=5) == 1  # not counted: the shortest back-off
        state.succeeded("k")  # logged, not raised
        assert not state.writable()
    finally:
        redis_server.start()
    assert state.claim("k", "a", lease=5)  # the client reconnects by itself


def test_a_redis_that_refuses_the_client_stops_the_start_with_the_variables_name(
        redis_server: RedisServer, redis_url: str) -> None:
    """Else a wrong password started replicas that answer 503 to every new cut-out, and workers that
    wait for the Redis they 'cannot reach', for ever."""
    import redis

    from cutout.settings import SettingsError, check_state, load_settings

    check_state(load_settings({"CUTOUT_STATE": redis_url}))
    port = redis_server.port
    check_state(load_settings({"CUTOUT_STATE": "redis://127.0.0.1:1/0"}))  # not up yet: it may come
    with pytest.raises(SettingsError, match="^CUTOUT_STATE: Redis refuses this client .*DB index"):
        check_state(load_settings({"CUTOUT_STATE": f"redis://127.0.0.1:{port}/999"}))
    with redis.Redis(port=port) as admin:
        admin.config_set("requirepass", "right")
    try:
        with pytest.raises(SettingsError, match="^CUTOUT_STATE: Redis refuses this client .*password"):
            check_state(load_settings({"CUTOUT_STATE": f"redis://:wrong@127.0.0.1:{port}/0"}))
        with pytest.raises(SettingsError, match="^CUTOUT_STATE: Redis refuses this client"):
            check_state(load_settings({"CUTOUT_STATE": redis_url}))  # none given: NOAUTH
        check_state(load_settings({"CUTOUT_STATE": f"redis://:right@127.0.0.1:{port}/0"}))
    finally:
        with redis.Redis(port=port, password="right") as admin:
            admin.config_set("requirepass", "")


def test_redis_tasks_a_deleted_task_is_not_written_back(redis_url: str) -> None:
    """As the folder's tasks (tests/api/test_api_tasks.py): the driver's writes after a DELETE keep
    nothing, so the task does not come back, finished, on any replica."""
    from cutout.api.redis_tasks import RedisTasks

    tasks = RedisTasks(redis_url, ttl=60)
    task = tasks.create({"public_id": "x"}, None)
    assert tasks.update({**task, "status": "running"})
    got = tasks.get(task["task_id"])
    assert got is not None and got["status"] == "running"
    assert tasks.delete(task["task_id"])
    assert not tasks.update({**task, "status": "running"})
    assert tasks.finish(task, result={"width": 1}, data=b"image") is None
    assert tasks.get(task["task_id"]) is None and tasks.data(task["task_id"]) is None
    assert all(found["task_id"] != task["task_id"] for found in tasks.unfinished())
    tasks.close()


@pytest.mark.slow
def test_a_server_on_redis_stopped_mid_generation_gives_its_claims_back(redis_url: str,
                                                                         tmp_path: Path) -> None:
    """`cutout serve` with CUTOUT_STATE (claims in Redis, the model in-process): SIGTERM while the model
    runs leaves no claim, so another replica (here: the restarted one, with its own cache folder) makes
    the cut-out at once rather than after CUTOUT_LEASE_SECONDS (10 minutes here)."""
    import httpx

    from tests.app.helpers import SAMPLES
    from tests.app.server_process import ServerProcess
    from tests.app.test_app_server import CUTOUT, poll_200
    from tests.conftest import require_model

    require_model()
    env = {"CUTOUT_STATE": redis_url, "CUTOUT_LEASE_SECONDS": "600"}
    first = ServerProcess(SAMPLES, tmp_path / "one", env=env)
    second: ServerProcess | None = None
    state = RedisCoordinator(redis_url)
    try:
        first.wait_ready(path="/readyz", timeout=300)
        assert httpx.get(first.url + CUTOUT, timeout=60).status_code == 423
        assert state.depth() >= 1
        first.stop()  # SIGTERM while the model runs
        assert state.depth() == 0, "a claim of the stopped server is still in Redis"
        second = ServerProcess(SAMPLES, tmp_path / "two", env=env)
        second.wait_ready(path="/readyz", timeout=300)
        done = poll_200(second.url + CUTOUT, timeout=240)
        assert done.status_code == 200 and done.headers["content-type"] == "image/png"
    finally:
        first.stop()
        if second is not None:
            second.stop()
