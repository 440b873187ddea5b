"""Tasks over HTTP: async and sync-that-waited-too-long requests, polling, results, deletion, expiry,
restarts, and the Standard Webhooks notification when a task ends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import pyvips
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from tests.api.conftest import damaged_png, finished, road
from tests.app.helpers import ClientFactory, EllipseSegmenter
from tests.fetch.servers import LocalServer, send, serving

URL = "/v1/remove-background"
JPEG = {"Content-Type": "image/jpeg"}
PNG = {"Content-Type": "image/png"}
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


def test_async_answers_202_with_a_location_then_the_result(api: TestClient) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params={"async": "true"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] in ("pending", "running") and body["poll_after_ms"] > 0
    # Retry-After too, for clients that know HTTP's header and not the body's poll_after_ms.
    assert int(response.headers["retry-after"]) * 1000 >= body["poll_after_ms"]
    location = response.headers["location"]
    assert location == f"/v1/tasks/{body['task_id']}"
    task = finished(api, location)
    assert task["status"] == "success"
    assert task["result"]["width"] == 640 and task["result"]["confidence"] == 0.9
    assert task["finished_at"] >= task["created_at"]
    result = api.get(location + "/result")
    assert result.status_code == 200 and result.headers["x-width"] == "640"
    assert pyvips.Image.new_from_buffer(result.content, "").bands == 4


def test_prefer_respond_async(api: TestClient) -> None:
    response = api.post(URL, content=road(), headers={**JPEG, "Prefer": "respond-async"})
    assert response.status_code == 202


def test_a_sync_request_that_waits_too_long_becomes_a_task(make_api: ClientFactory) -> None:
    client = make_api(segmenter=EllipseSegmenter(delay=1.0), api_wait_seconds=0.1)
    response = client.post(URL, content=road(), headers=JPEG)
    assert response.status_code == 202 and int(response.headers["retry-after"]) >= 1
    location = response.headers["location"]
    pending = client.get(location + "/result")
    assert pending.status_code == 202 and pending.headers["retry-after"]
    assert finished(client, location)["status"] == "success"


def test_a_failed_task_ends_with_its_error(api: TestClient) -> None:
    response = api.post(URL, content=damaged_png(), headers=PNG, params={"async": "1"})
    assert response.status_code == 202
    task = finished(api, response.headers["location"])
    assert task["status"] == "error"
    assert task["error"]["code"] == "failed_to_read_image" and task["error"]["message"]
    result = api.get(response.headers["location"] + "/result")
    assert result.status_code == 422
    assert result.json()["errors"][0]["code"] == "failed_to_read_image"


def test_a_sync_request_for_a_damaged_image_is_422(api: TestClient) -> None:
    response = api.post(URL, content=damaged_png(), headers=PNG)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "failed_to_read_image"


def test_an_image_refused_before_storing_is_refused_at_once_and_never_kept(make_api: ClientFactory) -> None:
    """Truncated, or past CUTOUT_MAX_PIXELS by its header: the answer at once, even for async, and
    nothing written among the originals (kept for ever, outside the cache's size limit)."""
    client = make_api(max_pixels=300_000)
    data = road()
    big = pyvips.Image.black(600, 600).jpegsave_buffer()
    for content, status, code in ((data[: len(data) // 2], 422, "failed_to_read_image"),
                                  (big, 413, "resolution_too_high")):  # fmt: skip
        for params in ({}, {"async": "1"}):
            response = client.post(URL, content=content, headers=JPEG, params=params)
            assert response.status_code == status, response.text
            assert response.json()["errors"][0]["code"] == code
    settings = client.app.state.service.settings  # type: ignore[attr-defined]
    stored = Path(settings.originals) / ".cutout" / "transient" / "api-uploads"
    assert not stored.exists() or not any(stored.iterdir())


def test_json_output_of_a_task(api: TestClient) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params={"async": "1", "output": "json"})
    finished(api, response.headers["location"])
    body = api.get(response.headers["location"] + "/result").json()
    assert body["format"] == "png" and body["image"]


def test_delete_and_unknown_tasks(api: TestClient) -> None:
    response = api.post(URL, content=road(), headers=JPEG, params={"async": "1"})
    location = response.headers["location"]
    finished(api, location)
    assert api.delete(location).status_code == 204
    for answer in (api.get(location), api.get(location + "/result"), api.delete(location)):
        assert answer.status_code == 404
        assert answer.json()["errors"][0]["code"] == "not_found"


def test_an_empty_task_id_is_a_400_naming_it(api: TestClient) -> None:
    """/v1/tasks/ (and //result) matched no route: 404 "No API route", as if the API had no tasks."""
    for method, path in (("GET", "/v1/tasks/"), ("GET", "/v1/tasks//result"), ("DELETE", "/v1/tasks/")):
        answer = api.request(method, path)
        assert answer.status_code == 400, (method, path)
        [error] = answer.json()["errors"]
        assert (error["code"], error["parameter"]) == ("invalid_parameter", "task_id")
        assert "task_id is empty" in error["detail"]
    wrong = api.post("/v1/tasks//result")  # a method the route does not take is still its 405
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
    for source in ("task_id", "public_id", "image_url"):  # as the image to chain onto or to cut out
        refused = api.post(URL, params={source: ""})
        assert refused.status_code == 400, source
        [error] = refused.json()["errors"]
        assert (error["parameter"], error["detail"]) == (source, f"{source} is empty")


def test_a_task_deleted_while_it_runs_stays_deleted(make_api: ClientFactory) -> None:
    """DELETE answered 204 while the task ran, and the task came back when its driver finished it: a
    success with its result, readable and chainable, as if never deleted."""
    client = make_api(segmenter=EllipseSegmenter(delay=1.5))
    location = client.post(URL, content=road(), headers=JPEG, params={"async": "1"}).headers["location"]
    deadline = time.monotonic() + 10
    while client.get(location).json()["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get(location).json()["status"] == "running"
    assert client.delete(location).status_code == 204
    time.sleep(2.5)  # the segmenter is done: the driver has finished (or, before, written back) the task
    task_id = location.rsplit("/", 1)[1]
    for answer in (client.get(location), client.get(location + "/result"),
                   client.post(URL, json={"task_id": task_id})):  # fmt: skip
        assert answer.status_code == 404, answer.text
        assert answer.json()["errors"][0]["code"] == "not_found"


def test_a_deleted_task_is_not_written_back(tmp_path: Path) -> None:
    """The store's side: ``update`` and ``finish`` of a deleted task keep nothing of it."""
    from cutout.api.tasks import Tasks

    tasks = Tasks(tmp_path / "tasks", ttl=60)
    task = tasks.create({"public_id": "x"}, None)
    assert tasks.update({**task, "status": "running"}) and tasks.get(task["task_id"])["status"] == "running"
    assert tasks.delete(task["task_id"])
    assert not tasks.update({**task, "status": "running"})
    assert tasks.finish(task, result={"width": 1}, data=b"image") is None
    assert tasks.get(task["task_id"]) is None and tasks.data(task["task_id"]) is None
    assert tasks.unfinished() == []
    tasks.close()


def test_the_task_routes_refuse_query_parameters(api: TestClient) -> None:
    """A task's options were fixed when it was made: ``/result?format=jpg`` would answer its PNG as if
    asked, so a query parameter on a task route is a 400 naming it (the task is left as it was)."""
    location = api.post(URL, content=road(), headers=JPEG, params={"async": "true"}).headers["location"]
    assert finished(api, location)["status"] == "success"
    for method, path, name in (("GET", location + "/result", "format"), ("GET", location, "foo"),
                               ("DELETE", location, "force")):  # fmt: skip
        response = api.request(method, path, params={name: "jpg"})
        assert response.status_code == 400, (method, path, response.text)
        error = response.json()["errors"][0]
        assert (error["code"], error["parameter"]) == ("invalid_parameter", name)
        assert "the task's options are fixed when it is made" in error["detail"]
    assert api.get(location + "/result").status_code == 200


def test_an_expired_task_is_404(make_api: ClientFactory) -> None:
    client = make_api(task_ttl=1.0)
    location = client.post(URL, content=road(), headers=JPEG, params={"async": "1"}).headers["location"]
    assert finished(client, location)["status"] == "success"
    time.sleep(1.2)
    assert client.get(location).status_code == 404


def test_a_task_survives_a_restart(make_api: ClientFactory) -> None:
    first = make_api(segmenter=EllipseSegmenter(delay=0.5))
    location = first.post(URL, content=road(), headers=JPEG, params={"async": "1"}).headers["location"]
    first.__exit__(None, None, None)  # stopped while the model runs: the task is not finished
    second = make_api()
    assert finished(second, location)["status"] == "success"
    assert second.get(location + "/result").status_code == 200


@pytest.fixture
def receiver() -> Iterator[LocalServer]:
    with serving("127.0.0.2") as server:
        server.routes["/hook"] = lambda handler: send(handler, 204, b"", None)
        yield server


def test_webhook_signed_with_standard_webhooks(
    receiver: LocalServer, make_api: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW_NETWORKS", "127.0.0.2/32")
    client = make_api(api_webhook_secret=SECRET)
    params = {"async": "1", "webhook_url": receiver.url("/hook")}
    location = client.post(URL, content=road(), headers=JPEG, params=params).headers["location"]
    finished(client, location)
    deadline = time.monotonic() + 10
    while not receiver.seen and time.monotonic() < deadline:
        time.sleep(0.05)
    (seen,) = receiver.seen
    payload = Webhook(SECRET).verify(seen.body, seen.headers)
    assert payload["type"] == "task.success"
    assert payload["data"]["task_id"] == location.rsplit("/", 1)[1]
    # Standard Webhooks' recommended timestamp: when the task ended, in ISO 8601
    ended = datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).timestamp()
    assert abs(ended - payload["data"]["finished_at"]) < 0.001
    assert json.loads(seen.body)["data"]["result"]["width"] == 640


def test_webhook_url_needs_a_secret_and_an_allowed_url(api: TestClient, make_api: ClientFactory) -> None:
    no_secret = api.post(URL, content=road(), headers=JPEG, params={"webhook_url": "https://example.org/h"})
    assert no_secret.status_code == 400 and no_secret.json()["errors"][0]["parameter"] == "webhook_url"
    client = make_api(api_webhook_secret=SECRET)
    private = client.post(URL, content=road(), headers=JPEG, params={"webhook_url": "ftp://example.org/h"})
    assert private.status_code == 400 and private.json()["errors"][0]["parameter"] == "webhook_url"
    assert private.json()["errors"][0]["detail"] == (
        "webhook_url: Only http and https URLs can be fetched, not ftp: URLs"
    )
    bare = client.post(URL, content=road(), headers=JPEG, params={"webhook_url": "example.org/h"})
    assert bare.status_code == 400 and bare.json()["errors"][0]["detail"] == (
        "webhook_url: The URL has no scheme: write it in full, with http:// or https://"
    )
    # As the Upload API's notification_url: a URL past 2048 characters is refused, naming the limit.
    long = client.post(URL, content=road(), headers=JPEG,
                       params={"webhook_url": "https://example.org/" + "a" * 2029})  # fmt: skip
    assert long.status_code == 400 and long.json()["errors"][0]["detail"] == (
        "webhook_url: The URL is 2049 characters long; at most 2048 are taken"
    )


def test_a_webhook_interrupted_by_a_restart_is_resumed(
    receiver: LocalServer, make_api: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW_NETWORKS", "127.0.0.2/32")
    retry_later = {"Retry-After": "3"}
    receiver.routes["/hook"] = lambda handler: send(handler, 503, b"down", "text/plain", retry_later)
    first = make_api(api_webhook_secret=SECRET)
    params = {"async": "1", "webhook_url": receiver.url("/hook")}
    location = first.post(URL, content=road(), headers=JPEG, params=params).headers["location"]
    finished(first, location)
    deadline = time.monotonic() + 10
    while not receiver.seen and time.monotonic() < deadline:
        time.sleep(0.05)
    first.__exit__(None, None, None)  # waiting 3 s before its second try: stopped
    receiver.routes["/hook"] = lambda handler: send(handler, 204, b"", None)
    make_api(api_webhook_secret=SECRET)
    deadline = time.monotonic() + 20
    while len(receiver.seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(receiver.seen) == 2
    first_try, second_try = receiver.seen
    assert first_try.headers["webhook-id"] == second_try.headers["webhook-id"]  # the same delivery
    assert Webhook(SECRET).verify(second_try.body, second_try.headers)["type"] == "task.success"


def test_a_webhook_is_tried_as_often_as_cutout_webhook_tries_says(
    receiver: LocalServer, make_api: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTP API's deliveries keep to CUTOUT_WEBHOOK_TRIES as the Upload API's do (they took the
    default, 8 tries over about four minutes, whatever it said)."""
    monkeypatch.setenv("CUTOUT_FETCH_ALLOW_NETWORKS", "127.0.0.2/32")
    monkeypatch.setenv("CUTOUT_WEBHOOK_TRIES", "2")
    receiver.routes["/hook"] = lambda handler: send(handler, 500, b"broken", "text/plain")
    client = make_api(api_webhook_secret=SECRET)
    params = {"async": "1", "webhook_url": receiver.url("/hook")}
    finished(client, client.post(URL, content=road(), headers=JPEG, params=params).headers["location"])
    deadline = time.monotonic() + 10
    while len(receiver.seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(3)  # a third try would come 1 to 2 s after the second
    assert len(receiver.seen) == 2
    assert receiver.seen[0].headers["webhook-id"] == receiver.seen[1].headers["webhook-id"]


def test_a_task_is_its_keys_alone(make_api: ClientFactory) -> None:
    """With several keys, a task is seen, fetched, deleted and chained onto only with the key that made
    it; any other key is told what an unknown task is told (404), so ids of other keys' tasks give
    nothing away. The vendors' faces keep the same rule (Runware's getResponse, Perfect Corp's poll)."""
    client = make_api(api_keys=("key-a", "key-b"))
    mine, theirs = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}
    made = client.post(URL, content=road(), headers={**JPEG, **mine}, params={"async": "1"})
    location, task_id = made.headers["location"], made.json()["task_id"]
    deadline = time.monotonic() + 20
    while client.get(location, headers=mine).json()["status"] != "success":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for method, path in (("GET", location), ("GET", location + "/result"), ("DELETE", location)):
        other = client.request(method, path, headers=theirs)
        assert other.status_code == 404 and other.json()["errors"][0]["code"] == "not_found", (method, path)
    chained = client.post(URL, json={"task_id": task_id}, headers=theirs)
    assert chained.status_code == 404 and chained.json()["errors"][0]["parameter"] == "task_id"
    assert client.get(location + "/result", headers=mine).status_code == 200  # still there, for its key
    assert client.post(URL, json={"task_id": task_id}, headers=mine).status_code == 200
    assert client.delete(location, headers=mine).status_code == 204
