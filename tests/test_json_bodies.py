"""JSON a client sends, nested without end: every face that reads JSON answers its own 400, and the
Runware WebSocket answers its invalidJSON error and goes on. ``json.loads`` raises RecursionError (not
ValueError) on ``[[[[...]]]]``, which each face let through as a 500, before any credential was checked."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from cutout import jsonbody
from cutout.app import create_app
from cutout.settings import Settings
from tests.app.helpers import SAMPLES, EllipseSegmenter

KEY, SECRET, API_KEY = "json-key", "json-secret", "json-api-key"
DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 kB: under every body limit
SHALLOW_DEEP = b"[" * 30_000 + b"]" * 30_000  # 60 kB: under Perfect Corp's 64 kB limit for its JSON calls
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("json")
    shutil.copytree(SAMPLES, root / "originals")
    settings = Settings(originals=root / "originals", cache_dir=root / "cache", upload=True, api_key=KEY,
                        api_secret=SECRET, api_keys=(API_KEY,), console=True,
                        background_removal=False)  # fmt: skip
    app = create_app(settings, segmenter=EllipseSegmenter(), load_model=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_reader() -> None:
    assert jsonbody.loads(b'{"a": [[1]]}') == {"a": [[1]]}
    assert jsonbody.loads("[" * 32 + "]" * 32) is not None
    for text in ("[" * 33 + "]" * 33, '{"a":' * 33 + "1" + "}" * 33, DEEP, "[" * 2000 + "]" * 2000):
        with pytest.raises(jsonbody.JsonBodyError, match="nests deeper than 32 levels"):
            jsonbody.loads(text)
    for text in (b"[", b"\xff", "[" + "9" * 5000 + "]"):  # int() of 4300+ digits is a ValueError too
        with pytest.raises(jsonbody.JsonBodyError):
            jsonbody.loads(text)
    with pytest.raises(jsonbody.JsonBodyError, match="a number of 5000 digits is too long"):
        jsonbody.loads("[" + "9" * 5000 + "]")  # int()'s own words tell the reader to call sys.set_int_...


def test_a_repeated_key_is_refused() -> None:
    """``json.loads`` keeps the last of a repeated key: one value would be passed over in silence."""
    assert jsonbody.loads('{"a": {"b": 1}, "b": {"b": 2}}') == {"a": {"b": 1}, "b": {"b": 2}}
    for text in ('{"channels": "alpha", "channels": "rgba"}', '[{"x": 1, "y": 2, "x": 1}]'):
        with pytest.raises(jsonbody.JsonBodyError, match="the key '.+' is given more than once"):
            jsonbody.loads(text)


#: (path, headers, body, the answer's error text as each face shapes it)
FACES: list[tuple[str, dict[str, str], bytes, Any]] = [
    ("/v1_1/demo/image/upload", BASIC, DEEP, lambda j: j["error"]["message"]),
    ("/v1_1/demo/image/destroy", {}, DEEP, lambda j: j["error"]["message"]),  # unauthenticated
    ("/v1_1/demo/image/tags", {}, DEEP, lambda j: j["error"]["message"]),
    ("/v1_1/demo/resources/image/upload/docs/road", BASIC, DEEP, lambda j: j["error"]["message"]),
    ("/v1", {}, DEEP, lambda j: j["errors"][0]["message"] + j["errors"][0]["code"]),  # Runware
    ("/v1/remove-background", {"X-Api-Key": API_KEY}, DEEP, lambda j: j["errors"][0]["detail"]),
    ("/v1.0/removebg", {"X-Api-Key": API_KEY}, DEEP, lambda j: j["errors"][0]["title"]),
    ("/computervision/imageanalysis:segment?api-version=2023-02-01-preview&mode=backgroundRemoval",
     {"Ocp-Apim-Subscription-Key": API_KEY}, DEEP, lambda j: j["error"]["message"]),
    ("/s2s/v2.0/task/sod", {"Authorization": f"Bearer {API_KEY}"}, SHALLOW_DEEP, lambda j: j["error"]),
    ("/console/sign", {**BASIC, "Origin": "http://testserver"}, DEEP, lambda j: j["error"]["message"]),
]  # fmt: skip


@pytest.mark.parametrize(("path", "headers", "body", "message"), FACES, ids=[f[0][:30] for f in FACES])
def test_deep_json_is_each_faces_400(
    client: TestClient, path: str, headers: dict[str, str], body: bytes, message: Any
) -> None:
    response = client.post(path, content=body, headers={**headers, **JSON})
    assert response.status_code == 400, response.text[:300]
    assert message(response.json())  # the face's own shape, with a message


def test_the_websocket_answers_invalid_json_and_goes_on(client: TestClient) -> None:
    with client.websocket_connect("/v1") as socket:
        socket.send_text(DEEP.decode())  # before authentication
        error = socket.receive_json()["errors"][0]
        assert error["code"] == "invalidJSON" and "nests deeper" in error["message"]
        socket.send_bytes(b"\xff not json")  # a binary frame: starlette's receive_text() raised KeyError
        assert socket.receive_json()["errors"][0]["code"] == "invalidJSON"
        socket.send_json([{"taskType": "ping", "ping": True}])
        assert socket.receive_json() == {"data": [{"taskType": "ping", "pong": True}]}


def test_a_bug_closes_the_websocket_with_a_frame(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error is told in Runware's shape, then the socket closes with 1011 (before, the task
    group's ExceptionGroup dropped the connection without a close frame)."""

    def broken(raw: str | bytes) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(jsonbody, "loads", broken)
    with client.websocket_connect("/v1") as socket:
        socket.send_text("[]")
        error = socket.receive_json()["errors"][0]
        assert (error["code"], error["message"]) == ("internalError", "Internal error")
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 1011


def test_a_body_of_ordinary_depth_is_read(client: TestClient) -> None:
    """Past the reader to the signature check: the JSON was read."""
    response = client.post("/v1_1/demo/image/destroy", json={"public_id": "docs/road", "invalidate": [True]})
    assert response.status_code == 401 and "api_key" in response.json()["error"]["message"]


DUPLICATED = b'{"public_id": "docs/road", "url": "http://a.example/x.jpg", "url": "http://b.example/y.jpg"}'


@pytest.mark.parametrize(("path", "headers", "body", "message"), FACES, ids=[f[0][:30] for f in FACES])
def test_a_repeated_key_is_each_faces_400(
    client: TestClient, path: str, headers: dict[str, str], body: bytes, message: Any
) -> None:
    """As a parameter given twice in a form or a query: every face that reads JSON refuses it."""
    wrapped = b"[" + DUPLICATED + b"]" if path == "/v1" else DUPLICATED  # Runware: an array of tasks
    response = client.post(path, content=wrapped, headers={**headers, **JSON})
    assert response.status_code == 400, response.text[:300]
    assert message(response.json()) and "'url' is given more than once" in response.text, response.text[:300]
