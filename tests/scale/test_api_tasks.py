"""The HTTP API's tasks in Redis: a task made on one replica is known to every other."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cutout.settings import Settings
from tests.api.conftest import AUTH, KEY, road
from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, client_factory

pytestmark = pytest.mark.integration


@pytest.fixture
def make_replica(tmp_path: Path, redis_url: str) -> Iterator[ClientFactory]:
    originals = tmp_path / "originals"  # the API stores what it is sent among the originals: not the repo's
    shutil.copytree(SAMPLES, originals)
    settings = Settings(originals=originals, cache_dir=tmp_path / "one", render_threads=2, lease_seconds=5,
                        api_keys=(KEY,), api_wait_seconds=10, state=redis_url)
    yield from client_factory(settings, EllipseSegmenter(delay=0.3), AUTH)


def test_a_task_made_on_one_replica_is_polled_fetched_and_deleted_on_another(
        make_replica: ClientFactory, tmp_path: Path) -> None:
    one, other = make_replica(), make_replica(cache_dir=tmp_path / "two")
    made = one.post("/v1/remove-background", content=road(), headers={"Content-Type": "image/jpeg"},
                    params={"async": "true"})
    assert made.status_code == 202, made.text
    location = made.headers["location"]
    deadline = time.monotonic() + 30
    while True:
        task: dict[str, Any] = other.get(location).json()
        if task["status"] in ("success", "error") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert task["status"] == "success", task
    result = other.get(location + "/result")
    assert result.status_code == 200 and result.headers["x-width"] == "640"
    assert other.delete(location).status_code in (200, 204)
    assert one.get(location).status_code == 404


def test_unknown_tasks_are_404_everywhere(make_replica: ClientFactory) -> None:
    assert make_replica().get("/v1/tasks/tsk_" + "0" * 32).status_code == 404


