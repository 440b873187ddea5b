"""Perfect Corp YouCam (seed 003): the file step with its upload URL, the task by file id, by URL and by
an earlier result's dst_id, polling to success or error, the seed's error codes, the polling-interval
rule, Bearer auth, and one real-model run checking pixels."""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from cutout.adapters import perfectcorp
from tests.adapters.conftest import KEY, OTHER_KEY, Live, check_mask, image, photo, road
from tests.app.helpers import hang_up
from tests.fetch.servers import LocalServer

BEARER = {"Authorization": f"Bearer {KEY}"}
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}


def uploaded(
    client: Any, data: bytes, kind: str = "image/jpg", size: int | None = None, headers: Any = BEARER
) -> str:
    """The seed's steps 2: ask for an upload URL, PUT the bytes there as told; the file id."""
    files = [{"content_type": kind, "file_name": "photo.jpg", "file_size": size or len(data)}]
    answer = client.post("/s2s/v2.0/file/sod", headers=headers, json={"files": files})
    assert answer.status_code == 200, answer.text
    [entry] = answer.json()["data"]["files"]
    [put] = entry["requests"]
    assert put["method"] == "PUT"
    done = client.put(put["url"], headers=put["headers"], content=data)  # no key: the URL is the credential
    assert done.status_code == 200, done.text
    return str(entry["file_id"])


def finished(client: Any, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        data = client.get(f"/s2s/v2.0/task/sod/{task_id}", headers=BEARER).json()["data"]
        if data["task_status"] != "running":
            return data
        assert data["polling_interval"] > 0 and time.monotonic() < deadline
        time.sleep(0.05)


def started(client: Any, body: dict[str, Any], headers: Any = BEARER) -> Any:
    return client.post("/s2s/v2.0/task/sod", headers=headers, json=body)


def test_file_task_poll_and_chain(client: TestClient, stub: Any) -> None:
    file_id = uploaded(client, road())
    answer = started(client, {"src_file_id": file_id})
    assert answer.status_code == 200 and answer.json()["status"] == 200
    result = finished(client, answer.json()["data"]["task_id"])
    assert result["task_status"] == "success"
    png = client.get(result["results"]["url"].removeprefix("http://testserver"))
    assert png.headers["content-type"] == "image/png" and image(png.content).bands == 4
    calls = stub.calls  # the result chained by its dst_id: a new image, no upload
    chained = finished(client, started(client, {"src_file_id": result["dst_id"]}).json()["data"]["task_id"])
    assert chained["task_status"] == "success" and stub.calls == calls + 1


def test_a_file_id_is_its_keys(two_keys: TestClient) -> None:
    """A file id names a file for the key whose file step handed it out: another key naming it, uploaded
    or not, an image or not, is answered as for a file id of its own never uploaded (the seed's 404), the
    same body but for the id; the key that made it still runs its task."""
    ids = {"image": uploaded(two_keys, road()), "not an image": uploaded(two_keys, b"plain text, no image")}
    files = [{"content_type": "image/jpg", "file_name": "a.jpg", "file_size": 10}]
    [entry] = two_keys.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files}).json()["data"][
        "files"]  # fmt: skip
    ids["not uploaded"] = entry["file_id"]
    [own] = two_keys.post("/s2s/v2.0/file/sod", headers=OTHER, json={"files": files}).json()["data"]["files"]
    unknown = started(two_keys, {"src_file_id": own["file_id"]}, OTHER)  # its own, never uploaded
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "unknown_internal_error")
    for case, file_id in ids.items():
        refused = started(two_keys, {"src_file_id": file_id}, OTHER)
        assert refused.status_code == 404, (case, refused.text)
        assert refused.json() == json.loads(unknown.text.replace(own["file_id"], file_id)), case
        assert refused.headers["cache-control"] == unknown.headers["cache-control"]
    answer = started(two_keys, {"src_file_id": ids["image"]})
    assert answer.status_code == 200, answer.text
    assert finished(two_keys, answer.json()["data"]["task_id"])["task_status"] == "success"
    failed = finished(two_keys, started(two_keys, {"src_file_id": ids["not an image"]}).json()["data"][
        "task_id"])  # fmt: skip
    assert (failed["task_status"], failed["error"]) == ("error", "error_decode_image")


def test_a_file_id_from_before_tags_is_the_open_apis_only() -> None:
    """A file id handed out before ids carried their key's tag (three parts, signed) still takes its
    upload, but only a server open without keys lets a task name it; a tag of one key is not another's."""
    from cutout.api.tasks import owner_of

    api: Any = SimpleNamespace(settings=SimpleNamespace(api_secret="s", api_keys=(KEY, OTHER_KEY),
                                                        task_ttl=600))  # fmt: skip
    body = f"{'a' * 32}-{10:x}-{int(time.time() + 600):x}"
    legacy = f"{body}-{perfectcorp._signature(api, body)}"
    assert perfectcorp._declared(api, legacy) == 10
    assert perfectcorp._owned(api, legacy, "") and not perfectcorp._owned(api, legacy, owner_of(KEY))
    tagged = perfectcorp._file_id(api, 10, owner_of(KEY))
    assert perfectcorp._declared(api, tagged) == 10 and perfectcorp._owned(api, tagged, owner_of(KEY))
    assert not any(perfectcorp._owned(api, tagged, owner) for owner in (owner_of(OTHER_KEY), ""))


def test_by_url(client: TestClient, origin: LocalServer) -> None:
    task_id = started(client, {"src_file_url": origin.url("/road.jpg")}).json()["data"]["task_id"]
    assert finished(client, task_id)["task_status"] == "success"
    # The other source null (an SDK's unset field) is as not given.
    with_null = started(client, {"src_file_id": None, "src_file_url": origin.url("/road.jpg")})
    assert finished(client, with_null.json()["data"]["task_id"])["task_status"] == "success"


#: (case, the task's body or a step that fails, status, error_code)
ERRORS: list[tuple[str, Any, int, str]] = [
    ("not uploaded", "not uploaded", 404, "unknown_internal_error"),
    ("not an image", "text", 400, "error_decode_image"),
    ("url refused", {"src_file_url": "http://169.254.169.254/x.jpg"}, 400, "error_download_image"),
    ("url not an image", {"src_file_url": "ORIGIN/text.txt"}, 400, "error_decode_image"),
    ("both sources", {"src_file_id": "a", "src_file_url": "b"}, 400, "invalid_parameter"),
    ("no source", {}, 400, "invalid_parameter"),
    ("both sources null", {"src_file_id": None, "src_file_url": None}, 400, "invalid_parameter"),
    ("unknown field", {"src_file_id": "a", "mode": "x"}, 400, "invalid_parameter"),
]


ENGINE_SIDE = ("error_decode_image", "error_download_image")


@pytest.mark.parametrize(("case", "body", "status", "code"), ERRORS, ids=[e[0] for e in ERRORS])
def test_task_errors(
    client: TestClient, origin: LocalServer, case: str, body: Any, status: int, code: str
) -> None:
    if body == "not uploaded":
        files = [{"content_type": "image/png", "file_name": "a.png", "file_size": 10}]
        body = {"src_file_id": client.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files})
                .json()["data"]["files"][0]["file_id"]}  # fmt: skip
    elif body == "text":
        body = {"src_file_id": uploaded(client, b"plain text, not an image")}
    else:
        body = {k: v and v.replace("ORIGIN", origin.origin) for k, v in body.items()}
    answer = started(client, body)
    if code in ENGINE_SIDE:  # the seed: the engine's failures are the task's status, not the request's
        assert answer.status_code == 200, answer.text
        polled = finished(client, answer.json()["data"]["task_id"])
        assert (polled["task_status"], polled["error"]) == ("error", code) and polled["error_message"]
        return
    assert (answer.status_code, answer.json()["error_code"]) == (status, code), answer.text
    assert answer.json()["status"] == status and answer.json()["error"]


@pytest.mark.parametrize(("files", "code"), [
    ([{"content_type": "image/jpg", "file_name": "a.jpg", "file_size": 11 << 20}], "exceed_max_filesize"),
    ([{"content_type": "image/webp", "file_name": "a.webp", "file_size": 10}], "invalid_parameter"),
    ([{"content_type": "image/jpg", "file_name": "a.jpg"}], "invalid_parameter"),
    ([], "invalid_parameter"),
])  # fmt: skip
def test_file_errors(client: TestClient, files: list[Any], code: str) -> None:
    answer = client.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files})
    assert (answer.status_code, answer.json()["error_code"]) == (400, code)


def test_the_file_step_refuses_fields_it_does_not_read(client: TestClient) -> None:
    """A file's field or a body's field other than files was ignored unseen (the task step refused it)."""
    entry = {"content_type": "image/jpg", "file_name": "a.jpg", "file_size": 10}
    for body, name in (({"files": [{**entry, "width": 10}]}, "width"), ({"files": [entry], "x": 1}, "x")):
        answer = client.post("/s2s/v2.0/file/sod", headers=BEARER, json=body)
        assert (answer.status_code, answer.json()["error_code"]) == (400, "invalid_parameter")
        assert repr(name) in answer.json()["error"]
    assert client.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": [entry]}).status_code == 200


def test_upload_url_rules(client: TestClient) -> None:
    files = [{"content_type": "image/jpg", "file_name": "a.jpg", "file_size": len(road())}]
    put = client.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files}).json()["data"]["files"][0]
    url = put["requests"][0]["url"]
    assert client.put(url, content=road()[:100]).status_code == 400  # not the declared size
    assert client.put(url, content=road()).status_code == 200
    assert client.put(url, content=road()).status_code == 403  # once
    assert client.put(url.replace(put["file_id"], "0" * 32), content=road()).status_code == 403
    slashed = client.put(url.replace(put["file_id"], "a%2Fb"), content=road())  # was delivery's 405 text
    assert slashed.status_code == 403 and slashed.json()["error_code"]
    empty = client.put(url.replace(put["file_id"], ""), content=road())  # was "unknown" (403)
    assert empty.status_code == 400 and "file_id is empty" in empty.json()["error"]


def test_an_empty_task_id_is_a_400_naming_it(client: TestClient) -> None:
    """GET /s2s/v2.0/task/sod/ was "No task  (unknown, or timed out)": the server's memory blamed."""
    answer = client.get("/s2s/v2.0/task/sod/", headers=BEARER)
    assert answer.status_code == 400
    assert answer.json() == {"status": 400, "error_code": "invalid_parameter",
                             "error": "task_id is empty: GET /s2s/v2.0/task/sod/<task_id>"}  # fmt: skip



def test_a_client_hanging_up_mid_upload_is_no_server_error(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The upload URL's PUT (and remove.bg's POST, through the same guarded endpoint) whose client goes
    away mid-body: an info line, no traceback, no internal_error; the URL is still unused after."""
    files = [{"content_type": "image/jpg", "file_name": "a.jpg", "file_size": len(road()) + 1000}]
    put = client.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files}).json()["data"]["files"][0]
    path = put["requests"][0]["url"].removeprefix("http://testserver")
    with caplog.at_level(logging.INFO):
        assert hang_up(client, path, {"Content-Type": "image/jpg"}, road(), method="PUT") == 499
        removebg = {"X-Api-Key": KEY, "Content-Type": "multipart/form-data; boundary=b"}
        start = b'--b\r\nContent-Disposition: form-data; name="image_file"; filename="a.jpg"\r\n\r\n'
        assert hang_up(client, "/v1.0/removebg", removebg, start + road()[:500]) == 499
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
    assert sum("client went away" in r.getMessage() for r in caplog.records) == 2
    assert client.put(path, content=road() + bytes(1000)).status_code == 200  # not used up by the hang-up

def test_upload_url_is_signed(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file id carries its size, expiry and key's tag under the server's signature: changing any,
    or signing without the server's keys, gives a URL that takes nothing; an expired one neither."""
    files = [{"content_type": "image/jpg", "file_name": "a.jpg", "file_size": len(road())}]
    put = client.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files}).json()["data"]["files"][0]
    url, file_id = put["requests"][0]["url"], put["file_id"]
    nonce, size, expires, tag, signature = file_id.split("-")
    bigger = f"{nonce}-{int(size, 16) + 1:x}-{expires}-{tag}-{signature}"
    later = f"{nonce}-{size}-{int(expires, 16) + 3600:x}-{tag}-{signature}"
    retagged = f"{nonce}-{size}-{expires}-{'0' * len(tag)}-{signature}"
    keyless: Any = SimpleNamespace(settings=SimpleNamespace(api_secret=None, api_keys=()))
    body = f"{nonce}-{size}-{expires}-{tag}"
    forged = f"{body}-{perfectcorp._signature(keyless, body)}"
    for other in (bigger, later, retagged, forged):
        assert client.put(url.replace(file_id, other), content=road()).status_code == 403
    monkeypatch.setattr(perfectcorp, "time", SimpleNamespace(time=lambda: int(expires, 16) + 1.0))
    assert client.put(url, content=road()).status_code == 403


def test_decode_error_is_a_task_error(client: TestClient) -> None:
    task_id = started(client, {"src_file_id": uploaded(client, road()[:3000])}).json()["data"]["task_id"]
    result = finished(client, task_id)
    assert (result["task_status"], result["error"]) == ("error", "error_decode_image")


def test_polling_interval_rule(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = client.get("/s2s/v2.0/task/sod/tsk_nothing", headers=BEARER)
    assert (unknown.status_code, unknown.json()["error_code"]) == (400, "InvalidTaskId")
    # A %2F in the id is decoded before routing: it fell through to the delivery URLs' error text.
    slashed = client.get("/s2s/v2.0/task/sod/tsk%2Fnothing", headers=BEARER)
    assert (slashed.status_code, slashed.json()["error_code"]) == (400, "InvalidTaskId")
    task_id = started(client, {"src_file_id": uploaded(client, road())}).json()["data"]["task_id"]
    monkeypatch.setattr(perfectcorp, "POLL_TIMEOUT", 0.0)
    time.sleep(0.01)
    late = client.get(f"/s2s/v2.0/task/sod/{task_id}", headers=BEARER)
    assert late.json()["error_code"] == "InvalidTaskId"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"X-Api-Key": KEY}])
def test_auth(client: TestClient, headers: dict[str, str]) -> None:
    answer = client.post("/s2s/v2.0/task/sod", headers=headers, json={"src_file_id": "x"})
    assert (answer.status_code, answer.json()["status"]) == (401, 401)


@pytest.mark.slow
def test_real_model(real: Live) -> None:
    with httpx.Client(base_url=real.url, timeout=300) as client:
        task_id = started(client, {"src_file_id": uploaded(client, photo())}).json()["data"]["task_id"]
        result = finished(client, task_id)
        cutout = image(client.get(result["results"]["url"]).content)
    source = image(photo())
    assert (cutout.bands, cutout.width, cutout.height) == (4, source.width, source.height)
    check_mask(cutout[3].pngsave_buffer(), source.width, source.height)


def test_rate_limited(limited: TestClient) -> None:
    files = [{"content_type": "image/jpg", "file_name": "a.jpg", "file_size": 10}]
    assert limited.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files}).status_code == 200
    again = limited.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files})
    assert (again.status_code, again.json()["error_code"]) == (429, "rate_limited")
    assert int(again.headers["retry-after"]) > 0


def test_no_model(modelless: TestClient) -> None:
    """Without a model the upload is refused already (the image would never be used)."""
    files = [{"content_type": "image/jpg", "file_name": "a.jpg", "file_size": len(road())}]
    entry = modelless.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files}).json()["data"][
        "files"
    ][0]
    none = modelless.put(entry["requests"][0]["url"], content=road())
    assert (none.status_code, none.json()["error_code"]) == (501, "error_inference")
