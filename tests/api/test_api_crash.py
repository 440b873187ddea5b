"""A real `cutout serve` killed (SIGKILL) while it makes a task's result: after a restart on the same
cache, the task is picked up again and ends with its result. A task never ends without one or an error.
Stopped cleanly (SIGTERM) instead, it gives back its claims, the model run's included."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess, claims_left, metric
from tests.conftest import require_model

KEY = "crash-key"
AUTH = {"X-Api-Key": KEY}
# A short lease: the dead server's claims (the task's and the generation's) lapse within seconds.
ENV = {"CUTOUT_API_KEYS": KEY, "CUTOUT_LEASE_SECONDS": "2", "CUTOUT_API_WAIT_SECONDS": "0"}
PHOTO = SAMPLES / "docs" / "rmv_bgd" / "dog_couch_orig.jpg"


def task(server: ServerProcess, location: str) -> dict[str, Any]:
    response = httpx.get(server.url + location, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def wait_status(
    server: ServerProcess, location: str, wanted: tuple[str, ...], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = task(server, location)
        if found["status"] in wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def running_task(
    servers: list[ServerProcess], tmp_path: Path, env: dict[str, str]
) -> tuple[ServerProcess, Path, Path, str, dict[str, Any]]:
    """A server over a copy of the samples (the API stores what it is sent among the originals) whose
    background-removal task's model is running: (server, originals, cache, task location, its status)."""
    require_model()
    originals, cache = tmp_path / "originals", tmp_path / "cache"
    shutil.copytree(SAMPLES, originals)
    server = ServerProcess(originals, cache, env=env)
    servers.append(server)
    server.wait_ready(path="/readyz", timeout=300)
    accepted = httpx.post(
        server.url + "/v1/remove-background", content=PHOTO.read_bytes(), timeout=60,
        headers={**AUTH, "Content-Type": "image/jpeg"}, params={"async": "1", "channels": "alpha"},
    )  # fmt: skip
    assert accepted.status_code == 202, accepted.text
    location = accepted.headers["location"]
    running = wait_status(server, location, ("running", "success", "error"), timeout=60)
    assert running["status"] == "running", running  # the model needs seconds: stopped while it runs
    time.sleep(0.3)
    return server, originals, cache, location, running


@pytest.mark.slow
def test_a_server_killed_mid_task_finishes_it_after_a_restart(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    first, originals, cache, location, running = running_task(servers, tmp_path, ENV)
    first.kill()  # SIGKILL: no shutdown, its claims stay behind until their leases lapse

    second = ServerProcess(originals, cache, env=ENV)
    servers.append(second)
    second.wait_ready(path="/readyz", timeout=300)
    done = wait_status(second, location, ("success", "error"), timeout=240)
    assert done["status"] == "success", done
    assert done["created_at"] == running["created_at"]  # the same task, not a new one
    result = httpx.get(second.url + location + "/result", headers=AUTH, timeout=30)
    assert result.status_code == 200
    mask = pyvips.Image.new_from_buffer(result.content, "")
    source = pyvips.Image.new_from_file(str(PHOTO))
    assert (mask.width, mask.height, mask.bands) == (source.width, source.height, 1)
    assert metric(second.url, "cutout_inference_total") == 1  # the mask was made again, once


@pytest.mark.slow
def test_a_server_stopped_mid_task_gives_back_the_model_runs_claim(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    """SIGTERM while the task's model runs: the task's claim was given back already, the generation's
    (CUTOUT_LEASE_SECONDS, 10 minutes here) was not, and the restarted server waited it out."""
    env = {**ENV, "CUTOUT_LEASE_SECONDS": "600"}
    first, originals, cache, location, _ = running_task(servers, tmp_path, env)
    first.stop()  # SIGTERM
    assert claims_left(cache) == 0, "the stopped server's generation claim is still there"
    second = ServerProcess(originals, cache, env=env)
    servers.append(second)
    second.wait_ready(path="/readyz", timeout=300)
    done = wait_status(second, location, ("success", "error"), timeout=240)
    assert done["status"] == "success", done
