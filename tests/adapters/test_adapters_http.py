"""What every face shares over HTTP: CORS for pages (the native API and each vendor's paths; not the
Upload API's Admin calls, not changed for delivery), a wrong method answered in the vendor's shape
rather than by the delivery URLs' catch-all, and a sync answer past the API's wait named as what it is
(still being made, retry) with Retry-After, whatever the vendor."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.adapters.conftest import KEY, road, settings_in
from tests.app.helpers import EllipseSegmenter

PAGE = "https://app.example"
CALLS = [
    ("/v1/remove-background", {"X-Api-Key": KEY}),
    ("/v1.0/removebg", {"X-Api-Key": KEY}),
    ("/api/remove", {}),
    ("/v1/results", {"X-Api-Key": KEY}),
    ("/v1", {"Authorization": f"Bearer {KEY}"}),
    ("/computervision/imageanalysis:segment", {"Ocp-Apim-Subscription-Key": KEY}),
    ("/s2s/v2.0/task/sod", {"Authorization": f"Bearer {KEY}"}),
]


@pytest.mark.parametrize(("path", "key"), CALLS)
def test_pages_may_call_every_face(client: TestClient, path: str, key: dict[str, str]) -> None:
    preflight = client.options(path, headers={"Origin": PAGE, "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "x-api-key, content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "x-api-key, content-type"
    answered = client.post(path, headers={**key, "Origin": PAGE}, content=b"not an image")
    assert answered.status_code >= 400  # whatever the vendor says of it, the page may read it
    assert answered.headers["access-control-allow-origin"] == "*"
    assert answered.headers["access-control-expose-headers"] == "*"


def test_other_paths_keep_their_own_cors(client: TestClient) -> None:
    delivered = client.get("/image/upload/docs/road.jpg", headers={"Origin": PAGE})
    assert delivered.headers["access-control-expose-headers"] == \
        "X-Cld-Error,Content-Length,Content-Range,Accept-Ranges"
    admin = client.options("/v1_1/demo/resources/image/upload",
                           headers={"Origin": PAGE, "Access-Control-Request-Method": "GET"})  # fmt: skip
    assert "access-control-allow-origin" not in admin.headers


@pytest.mark.parametrize(("method", "path", "shape"), [
    ("GET", "/v1.0/removebg", "errors"),
    ("GET", "/computervision/imageanalysis:segment", "error"),
    ("GET", "/v1", "errors"),
    ("DELETE", "/api/remove", "detail"),
    ("GET", "/v1/results", "detail"),  # API4AI: FastAPI's shape
])  # fmt: skip
def test_a_wrong_method_is_the_vendors_refusal(
    client: TestClient, method: str, path: str, shape: str
) -> None:
    answer = client.request(method, path, headers={"X-Api-Key": KEY, "Authorization": f"Bearer {KEY}",
                                                   "Ocp-Apim-Subscription-Key": KEY})  # fmt: skip
    assert 400 <= answer.status_code < 500 and "x-cld-error" not in answer.headers, answer.text
    assert shape in answer.json()
    assert "takes" in answer.text and method in answer.text


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[TestClient]:
    """Removals that take longer than the API waits for a sync answer."""
    from cutout.app import create_app

    app = create_app(settings_in(tmp_path, api_wait_seconds=0.2), segmenter=EllipseSegmenter(delay=3.0),
                     load_model=False)  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_past_the_wait_a_vendor_is_told_to_retry(slow: TestClient) -> None:
    removebg = slow.post("/v1.0/removebg", headers={"X-Api-Key": KEY},
                         files={"image_file": ("a.jpg", road())})  # fmt: skip
    assert removebg.status_code == 503 and removebg.headers["retry-after"] == "2"
    assert removebg.json()["errors"][0]["code"] == "still_processing"
    assert "still being made" in removebg.json()["errors"][0]["detail"]
    azure = slow.post("/computervision/imageanalysis:segment", content=road(),
                      params={"api-version": "2023-02-01-preview", "mode": "foregroundMatting"},
                      headers={"Ocp-Apim-Subscription-Key": KEY, "Content-Type": "application/octet-stream"})
    assert azure.status_code == 503 and azure.headers["retry-after"] == "2"
    import base64

    task = {"taskType": "imageBackgroundRemoval", "taskUUID": str(uuid.uuid4()), "outputType": "base64Data",
            "inputImage": base64.b64encode(road()).decode(), "outputFormat": "WEBP"}  # fmt: skip
    runware = slow.post("/v1", headers={"Authorization": f"Bearer {KEY}"}, json=[task])
    assert runware.status_code == 503 and runware.headers["retry-after"] == "2"
    assert runware.json()["errors"][0]["code"] == "stillProcessing"


def test_azure_names_the_limit_that_holds(tmp_path: Path) -> None:
    from cutout.app import create_app

    app = create_app(settings_in(tmp_path, max_upload_bytes=50_000), segmenter=EllipseSegmenter(),
                     load_model=False)  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post("/computervision/imageanalysis:segment", content=road(),
                             params={"api-version": "2023-02-01-preview", "mode": "backgroundRemoval"},
                             headers={"Ocp-Apim-Subscription-Key": KEY,
                                      "Content-Type": "application/octet-stream"})  # fmt: skip
    assert answer.status_code == 400
    assert "larger than 50000 bytes" in answer.json()["error"]["message"]


def test_runware_refuses_one_task_uuid_for_two_tasks(client: TestClient) -> None:
    import base64

    same = str(uuid.uuid4())
    task = {"taskType": "imageBackgroundRemoval", "taskUUID": same, "outputType": "base64Data",
            "inputImage": base64.b64encode(road()).decode()}  # fmt: skip
    answer = client.post("/v1", headers={"Authorization": f"Bearer {KEY}"}, json=[task, dict(task)])
    assert answer.status_code == 200
    assert len(answer.json()["data"]) == 1
    [error] = answer.json()["errors"]
    assert error["code"] == "invalidTaskUUID" and "given to two tasks" in error["message"]




@pytest.mark.parametrize(("path", "named", "not_named"), [
    ("/v1/remove-background", "Authorization: Bearer <key> or X-Api-Key", "RapidAPI"),
    ("/v1.0/removebg", "X-Api-Key or Authorization: Bearer <key>", "RapidAPI"),
    ("/api/remove", "X-Api-Key or Authorization: Bearer <key>", "RapidAPI"),
    ("/v1/results", "X-RapidAPI-Key, X-Api-Key or Authorization: Bearer <key>", "Ocp-Apim"),
    ("/v1", "Authorization: Bearer <key> or the apiKey of an authentication task", "X-Api-Key"),
])  # fmt: skip
def test_a_missing_key_is_told_the_faces_own_header(
    client: TestClient, path: str, named: str, not_named: str
) -> None:
    """Each face's 401/403 names where that vendor's clients send the key (API4AI's is X-RapidAPI-Key),
    not the native API's headers. (Azure and Perfect Corp answer with their vendors' own sentences.)"""
    refused = client.post(path, content=b"{}", headers={"Content-Type": "application/json"})
    assert refused.status_code in (401, 403)
    assert f"Send a valid API key as {named}" in refused.text and not_named not in refused.text


@pytest.mark.parametrize(("path", "headers", "status", "said"), [
    ("/v1.0/removebg", {"X-Api-Key": KEY, "Authorization": "Bearer other"}, 400,
     "Authorization: Bearer and X-Api-Key carry different keys"),
    ("/api/remove", {"X-Api-Key": "other", "Authorization": f"Bearer {KEY}"}, 422,  # rembg: FastAPI's 422
     "Authorization: Bearer and X-Api-Key carry different keys"),
    ("/v1/results", {"X-RapidAPI-Key": KEY, "X-Api-Key": "other"}, 422,  # API4AI: FastAPI's 422
     "X-RapidAPI-Key and X-Api-Key carry different keys"),
])  # fmt: skip
def test_two_different_keys_are_the_faces_400(
    client: TestClient, path: str, headers: dict[str, str], status: int, said: str
) -> None:
    """The first key header a face reads won silently over a different one (Bearer over remove.bg's
    X-Api-Key, X-RapidAPI-Key over X-Api-Key): which caller was meant? No vendor says, so neither wins."""
    refused = client.post(path, headers=headers, files={"file": ("road.jpg", road(), "image/jpeg")})
    assert refused.status_code == status
    assert said in refused.text
    every = {"X-Api-Key": KEY, "Authorization": f"Bearer {KEY}", "X-RapidAPI-Key": KEY}
    same = client.post(path, headers=every, content=b"")  # the same key in each is one key
    assert same.status_code not in (401, 403) and "different keys" not in same.text


def test_runware_a_header_key_and_a_different_authentication_task_are_a_400(client: TestClient) -> None:
    """The Bearer header won silently over the authentication task's apiKey."""
    body = [{"taskType": "authentication", "apiKey": "other"}, {"taskType": "ping"}]
    refused = client.post("/v1", headers={"Authorization": f"Bearer {KEY}"}, json=body)
    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert (error["code"], error["parameter"], error["taskType"]) == ("conflictingApiKey", "apiKey",
                                                                      "authentication")  # fmt: skip
    body[0]["apiKey"] = KEY  # the same key twice is one key
    agreed = client.post("/v1", headers={"Authorization": f"Bearer {KEY}"}, json=body)
    assert agreed.json()["errors"][0]["code"] != "conflictingApiKey"  # ping is the WebSocket's alone


def test_runware_a_repeat_with_two_different_keys_is_the_routes_400(client: TestClient) -> None:
    """The ASGI front reads the tasks as the route does: a repeat whose authentication task names
    another key than the header is not answered under the header's key."""
    task = {"taskType": "imageBackgroundRemoval", "inputImage": base64.b64encode(road()).decode(),
            "outputType": "base64Data"}  # fmt: skip
    for _ in range(2):
        done = client.post("/v1", headers={"Authorization": f"Bearer {KEY}"},
                           json=[{**task, "taskUUID": str(uuid.uuid4())}])  # fmt: skip
        assert done.status_code == 200
    body = [{"taskType": "authentication", "apiKey": "other"}, {**task, "taskUUID": str(uuid.uuid4())}]
    refused = client.post("/v1", headers={"Authorization": f"Bearer {KEY}"}, json=body)
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "conflictingApiKey"
