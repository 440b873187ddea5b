"""Behind a TLS proxy (nginx recipes: ``X-Forwarded-Proto $scheme``) and without CUTOUT_PUBLIC_URL, every
face hands out https URLs, as the Upload API's ``secure_url`` does: the HTTP API's ``encoding=url``,
Perfect Corp's upload URL and result URL, Runware's ``imageURL`` (POST and WebSocket), and the console's
snippets and origin check. A Host header that is not a host is refused in each face's own shape, never
written into an answer. In process, stand-in segmenter: no model needed."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from cutout.public_url import BadHost, public_base, request_base
from tests.adapters.conftest import KEY, road, settings_in
from tests.adapters.test_perfectcorp import BEARER, finished, started, uploaded
from tests.app.helpers import EllipseSegmenter

TLS = {"X-Forwarded-Proto": "https"}
BAD_HOSTS = ("evil.example:1234/x?", "a b", "x:port")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from cutout.app import create_app

    settings = settings_in(tmp_path_factory.mktemp("tls"), console=True, api_key="console-key",
                           api_secret="console-secret")  # fmt: skip
    return create_app(settings, segmenter=EllipseSegmenter(), load_model=False)


@pytest.fixture(scope="module")
def behind(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, headers=TLS) as client:
        yield client


@pytest.fixture(scope="module")
def direct(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_the_rule() -> None:
    from starlette.requests import HTTPConnection

    def conn(*headers: tuple[str, str], scheme: str = "http", server: Any = ("10.0.0.1", 8080)) -> Any:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers]
        return HTTPConnection({"type": "http", "scheme": scheme, "headers": raw, "server": server,
                               "path": "/", "query_string": b""})  # fmt: skip

    assert request_base(conn(("Host", "img.example:81"))) == "http://img.example:81"
    tls = conn(("Host", "img.example"), ("X-Forwarded-Proto", "https"))
    assert request_base(tls) == "https://img.example"
    assert request_base(conn(("Host", "h"), ("X-Forwarded-Proto", "HTTPS, http"))) == "https://h"
    assert request_base(conn(("Host", "h"), ("Forwarded", 'for=1.2.3.4;proto="https"'))) == "https://h"
    assert request_base(conn(("Host", "h"), ("X-Forwarded-Proto", "gopher"))) == "http://h"
    assert request_base(conn(("Host", "h"), scheme="wss")) == "https://h"  # a WebSocket's URLs are HTTP's
    assert request_base(conn()) == "http://10.0.0.1:8080"  # HTTP/1.0 without a Host
    assert request_base(conn(server=("::1", 8080))) == "http://[::1]:8080"
    assert public_base(conn(("Host", "evil example")), "https://cdn.example/x/") == "https://cdn.example/x"
    for host in BAD_HOSTS:
        with pytest.raises(BadHost, match="Host header"):
            request_base(conn(("Host", host)))


def test_the_http_api(behind: TestClient, direct: TestClient) -> None:
    params = {"output": "json", "encoding": "url"}
    jpeg = {"Content-Type": "image/jpeg", "Authorization": f"Bearer {KEY}"}
    body = behind.post("/v1/remove-background", content=road(), headers=jpeg, params=params).json()
    assert body["image"].startswith("https://testserver/image/upload/"), body
    for host in BAD_HOSTS:
        refused = direct.post("/v1/remove-background", content=road(), headers={**jpeg, "Host": host},
                              params=params)  # fmt: skip
        assert refused.status_code == 400, refused.text
        [error] = refused.json()["errors"]
        assert error["parameter"] == "Host" and "Host header" in error["detail"]


def test_perfectcorp(behind: TestClient, direct: TestClient) -> None:
    files = [{"content_type": "image/jpg", "file_name": "photo.jpg", "file_size": 100}]
    asked = behind.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files}).json()
    assert asked["data"]["files"][0]["requests"][0]["url"].startswith("https://testserver/s2s/")
    file_id = uploaded(behind, road())
    result = finished(behind, started(behind, {"src_file_id": file_id}).json()["data"]["task_id"])
    assert result["results"]["url"].startswith("https://testserver/image/upload/"), result
    refused = direct.post("/s2s/v2.0/file/sod", headers={**BEARER, "Host": "a b"}, json={"files": files})
    assert refused.status_code == 400 and "Host header" in refused.text


def test_runware(behind: TestClient, direct: TestClient) -> None:
    bearer = {"Authorization": f"Bearer {KEY}"}
    task = {"taskType": "imageBackgroundRemoval", "taskUUID": str(uuid.uuid4()),
            "inputImage": base64.b64encode(road()).decode(), "outputType": "URL"}  # fmt: skip
    answer = behind.post("/v1", json=[task], headers=bearer)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"][0]["imageURL"].startswith("https://testserver/image/upload/")
    with behind.websocket_connect("/v1") as socket:  # ws:// behind a TLS proxy: the URLs are https
        socket.send_text(json.dumps([{"taskType": "authentication", "apiKey": KEY}]))
        socket.receive_text()
        socket.send_text(json.dumps([{**task, "taskUUID": str(uuid.uuid4())}]))
        assert json.loads(socket.receive_text())["data"][0]["imageURL"].startswith("https://testserver/")
    refused = direct.post("/v1", json=[{**task, "taskUUID": str(uuid.uuid4())}],
                          headers={**bearer, "Host": "a b"})  # fmt: skip
    assert refused.status_code == 400 and "Host header" in refused.text


def test_the_console(behind: TestClient, direct: TestClient) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(b"console-key:console-secret").decode()}
    check = behind.get("/console/check", params={"transformation": "c_scale,w_100", "public_id": "docs/road"},
                       headers=auth).json()  # fmt: skip
    assert check["url"].startswith("https://testserver/demo/image/upload/"), check
    # The page was served over https by the proxy: its Origin is https, and the signing agrees.
    signed = behind.post("/console/sign", json={"public_id": "a"},
                         headers={**auth, "Origin": "https://testserver"})  # fmt: skip
    assert signed.status_code == 200, signed.text
    refused = direct.get("/console/check", params={"public_id": "docs/road"}, headers={**auth, "Host": "a b"})
    assert refused.status_code == 400 and "Host header" in refused.text
