"""A real `cutout serve` (uvicorn subprocess): HTTP, multi-process metrics, eager through the server,
and with the real model: one inference for a burst across two workers, recovery after SIGKILL, and after
SIGTERM at once (a clean stop gives its claims back)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from cutout.cli import main
from tests.app.helpers import SAMPLES
from tests.app.server_process import ROOT, ServerProcess, claims_left, free_port, metric
from tests.conftest import require_model

CUTOUT = "/demo/image/upload/e_background_removal/c_scale,w_300/docs/rmv_bgd/dog_couch_orig"


def poll_200(url: str, timeout: float = 180.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url, timeout=60)
        if response.status_code != 423 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_real_server_two_workers_without_model(servers: list[ServerProcess], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    server = ServerProcess(SAMPLES, tmp_path / "cache", workers=2, env={"CUTOUT_BACKGROUND_REMOVAL": "0"})
    servers.append(server)
    server.wait_ready()
    url = server.url + "/demo/image/upload/c_scale,w_200/docs/road"
    first = httpx.get(url)
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    for _ in range(6):  # whichever worker answers, it is a hit in the shared cache
        again = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
    assert metric(server.url, "cutout_cache_misses_total") == 1
    assert metric(server.url, "cutout_cache_hits_total") == 6
    head = httpx.head(server.url + "/demo/image/upload/docs/nope")
    assert head.status_code == 404 and head.headers["x-cld-error"] == "Resource not found - docs/nope"
    missing = httpx.get(server.url + "/demo/image/upload/e_background_removal/docs/road")
    assert missing.status_code == 501
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200 and "background removal off" in ready.text

    lines = tmp_path / "lines.txt"
    lines.write_text("/demo/image/upload/c_scale,w_64/docs/road\nc_scale,w_65 docs/road\n"
                     "c_scale,w_1 docs/nope\n")
    code = main(["eager", str(lines), "--server", server.url, "--timeout", "60"])
    assert code == 1
    assert "2 generated, 1 failed" in capsys.readouterr().err


def test_a_second_server_on_the_same_cache_keeps_the_first_ones_metrics(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    env = {"CUTOUT_BACKGROUND_REMOVAL": "0"}
    first = ServerProcess(SAMPLES, tmp_path / "cache", env=env)
    servers.append(first)
    first.wait_ready()
    for _ in range(3):
        assert httpx.get(first.url + "/demo/image/upload/c_scale,w_50/docs/road").status_code == 200
    counted = metric(first.url, "cutout_requests_total")
    assert counted >= 3
    second = ServerProcess(SAMPLES, tmp_path / "cache", env=env)
    servers.append(second)
    second.wait_ready()
    assert metric(first.url, "cutout_requests_total") >= counted  # not wiped by the second start
    assert metric(second.url, "cutout_requests_total") < counted  # nor summed into the second's


@pytest.mark.parametrize("model", ["missing", "corrupt"])
def test_serve_stops_at_start_up_without_a_usable_model(tmp_path: Path, model: str) -> None:
    path = tmp_path / "model.onnx"
    if model == "corrupt":
        path.write_bytes(b"not an onnx file")
    command = [sys.executable, "-m", "cutout.cli", "serve", "--originals", str(SAMPLES),
               "--cache-dir", str(tmp_path / "cache"), "--port", str(free_port())]
    env = {**os.environ, "CUTOUT_MODEL": str(path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("cutout serve: background removal: ")
    assert str(path) in done.stderr and "cutout fetch-model" in done.stderr
    assert "CUTOUT_BACKGROUND_REMOVAL=0" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_burst_on_two_workers_runs_the_model_once(servers: list[ServerProcess], tmp_path: Path) -> None:
    require_model()
    server = ServerProcess(SAMPLES, tmp_path / "cache", workers=2)
    servers.append(server)
    server.wait_ready(path="/readyz", timeout=300)
    assert "background removal with model " in httpx.get(server.url + "/readyz").text
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda _: httpx.get(server.url + CUTOUT, timeout=60).status_code, range(50)))
    assert set(statuses) <= {200, 423}, statuses
    done = poll_200(server.url + CUTOUT)
    assert done.status_code == 200 and done.headers["content-type"] == "image/png"
    assert metric(server.url, "cutout_inference_total") == 1


@pytest.mark.slow
def test_sigkill_mid_generation_then_a_later_request_succeeds(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    require_model()
    cache = tmp_path / "cache"
    env = {"CUTOUT_LEASE_SECONDS": "2"}
    first = ServerProcess(SAMPLES, cache, env=env)
    servers.append(first)
    first.wait_ready(path="/readyz", timeout=300)
    assert httpx.get(first.url + CUTOUT, timeout=60).status_code == 423
    first.kill()  # SIGKILL while the model runs: its claim stays behind until the lease expires

    second = ServerProcess(SAMPLES, cache, env=env)
    servers.append(second)
    second.wait_ready(path="/readyz", timeout=300)
    done = poll_200(second.url + CUTOUT)
    assert done.status_code == 200
    assert metric(second.url, "cutout_inference_total") == 1


@pytest.mark.slow
def test_sigterm_mid_generation_gives_the_claims_back_and_a_restarted_server_makes_it_at_once(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    """A clean stop (SIGTERM, Ctrl-C) left the claims of the model run in flight (the derivative's and
    the content's) to lapse with the lease: the restarted server answered 423 that long, running nothing."""
    require_model()
    cache = tmp_path / "cache"
    env = {"CUTOUT_LEASE_SECONDS": "600"}  # a claim left behind would hold the cut-out for 10 minutes
    first = ServerProcess(SAMPLES, cache, env=env)
    servers.append(first)
    first.wait_ready(path="/readyz", timeout=300)
    assert httpx.get(first.url + CUTOUT, timeout=60).status_code == 423
    first.stop()  # SIGTERM while the model runs
    assert claims_left(cache) == 0, "a claim of the stopped server is still there"

    second = ServerProcess(SAMPLES, cache, env=env)
    servers.append(second)
    second.wait_ready(path="/readyz", timeout=300)
    done = poll_200(second.url + CUTOUT, timeout=240)
    assert done.status_code == 200 and done.headers["content-type"] == "image/png"
