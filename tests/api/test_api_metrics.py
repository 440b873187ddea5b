"""/metrics counts the HTTP API: requests by route template and status, tasks by what happened to them
(created, resumed after a restart, success, error), and the tasks being driven (queue depth)."""

from __future__ import annotations

import logging
import time

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import AUTH, damaged_png, road
from tests.app.helpers import ClientFactory, EllipseSegmenter, hang_up

URL = "/v1/remove-background"
JPEG = {"Content-Type": "image/jpeg"}
PNG = {"Content-Type": "image/png"}


def sample(client: TestClient, name: str, **labels: str) -> float:
    """One series' value (0 when absent): the metrics are process-wide, so tests compare differences."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_requests_by_route_and_status(api: TestClient) -> None:
    remove = "POST /v1/remove-background"
    before_ok = sample(api, "cutout_api_requests_total", route=remove, status="200")
    before_bad = sample(api, "cutout_api_requests_total", route=remove, status="400")
    before_task = sample(api, "cutout_api_requests_total", route="GET /v1/tasks/{task_id}", status="404")
    before_auth = sample(api, "cutout_api_requests_total", route=remove, status="401")
    assert api.post(URL, content=road(), headers=JPEG).status_code == 200
    assert api.post(URL, content=road(), headers=JPEG, params={"channels": "x"}).status_code == 400
    assert api.get("/v1/tasks/tsk_unknown").status_code == 404
    assert api.post(URL, content=road(), headers={**JPEG, "Authorization": "Bearer wrong"}).status_code == 401
    assert sample(api, "cutout_api_requests_total", route=remove, status="200") == before_ok + 1
    assert sample(api, "cutout_api_requests_total", route=remove, status="400") == before_bad + 1
    assert sample(api, "cutout_api_requests_total", route=remove, status="401") == before_auth + 1
    route = "GET /v1/tasks/{task_id}"
    assert sample(api, "cutout_api_requests_total", route=route, status="404") == before_task + 1


def test_task_counts_and_queue_depth(make_api: ClientFactory) -> None:
    client = make_api(segmenter=EllipseSegmenter(delay=1.0))
    created = sample(client, "cutout_api_tasks_total", state="created")
    succeeded = sample(client, "cutout_api_tasks_total", state="success")
    failed = sample(client, "cutout_api_tasks_total", state="error")
    location = client.post(URL, content=road(), headers=JPEG, params={"async": "1"}).headers["location"]
    broken = client.post(URL, content=damaged_png(), headers=PNG, params={"async": "1"})
    assert broken.status_code == 202, broken.text
    assert sample(client, "cutout_api_tasks_total", state="created") == created + 2
    deadline = time.monotonic() + 5
    while sample(client, "cutout_api_queue_depth") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sample(client, "cutout_api_queue_depth") >= 1  # the slow one is being made
    deadline = time.monotonic() + 20
    for where in (location, broken.headers["location"]):
        while client.get(where).json()["status"] not in ("success", "error") and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sample(client, "cutout_api_tasks_total", state="success") == succeeded + 1
    assert sample(client, "cutout_api_tasks_total", state="error") == failed + 1
    assert sample(client, "cutout_api_queue_depth") == 0


def test_a_task_picked_up_after_a_restart_counts_as_resumed(make_api: ClientFactory) -> None:
    first = make_api(segmenter=EllipseSegmenter(delay=0.5))
    resumed = sample(first, "cutout_api_tasks_total", state="resumed")
    location = first.post(URL, content=road(), headers=JPEG, params={"async": "1"}).headers["location"]
    first.__exit__(None, None, None)
    second = make_api()
    deadline = time.monotonic() + 20
    while second.get(location).json()["status"] != "success" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sample(second, "cutout_api_tasks_total", state="resumed") == resumed + 1


def test_a_client_hanging_up_mid_upload_is_no_server_error(
    api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A client gone before its body was read is not a bug: no traceback, no 500 counted (a 499,
    nginx's "client closed request"), one info line; as a raw body and as a multipart form."""
    remove = "POST /v1/remove-background"
    before_500 = sample(api, "cutout_api_requests_total", route=remove, status="500")
    before_499 = sample(api, "cutout_api_requests_total", route=remove, status="499")
    form = {"Content-Type": "multipart/form-data; boundary=b"}
    start = b'--b\r\nContent-Disposition: form-data; name="image_file"; filename="a.jpg"\r\n\r\n'
    with caplog.at_level(logging.INFO):
        assert hang_up(api, URL, {**AUTH, **JPEG}, road()[:500]) == 499
        assert hang_up(api, URL, {**AUTH, **form}, start + road()[:500]) == 499
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
    assert sum("client went away" in r.getMessage() for r in caplog.records) == 2
    assert sample(api, "cutout_api_requests_total", route=remove, status="500") == before_500
    assert sample(api, "cutout_api_requests_total", route=remove, status="499") == before_499 + 2
