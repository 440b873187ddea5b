"""A repeated POST /v1/remove-background is answered before Starlette (``cutout.api.front``) with exactly
what the route sends: same status, headers and body, counted the same; everything else, a wrong key
above all, still reaches the route."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cutout.api import front
from tests.api.conftest import KEY, road
from tests.api.test_api_metrics import sample
from tests.app.helpers import ClientFactory, EllipseSegmenter

URL = "/v1/remove-background"
JPEG = {"Content-Type": "image/jpeg"}
ROUTE = "POST /v1/remove-background"


def twice(client: TestClient, **request: Any) -> None:
    """The same request twice: the second is answered by the front, identically."""
    first = client.post(URL, **request)
    second = client.post(URL, **request)
    assert first.status_code == 200, first.text
    assert second.status_code == first.status_code
    assert second.headers.multi_items() == first.headers.multi_items()
    assert second.content == first.content


def test_a_raw_body_repeat_is_the_routes_answer(api: TestClient, answered: list[bool]) -> None:
    before = sample(api, "cutout_api_requests_total", route=ROUTE, status="200")
    twice(api, content=road(), headers=JPEG, params={"channels": "alpha"})
    assert answered == [False, True]
    assert sample(api, "cutout_api_requests_total", route=ROUTE, status="200") == before + 2
    twice(api, content=road(), headers=JPEG, params={"bg_color": "red", "crop": "true"})
    assert answered[2:] == [False, True]
    response = api.post(URL, content=road(), headers=JPEG)  # other options: a new job, for the route
    assert response.status_code == 200 and "x-foreground-width" in response.headers
    assert answered[4:] == [False]


@pytest.mark.parametrize("encoding", ["base64", "data_uri", "url"])
def test_multipart_and_json_repeats(api: TestClient, answered: list[bool], encoding: str) -> None:
    data = road()
    options = {"channels": "alpha", "output": "json", "encoding": encoding}
    twice(api, files={"image_file": ("road.jpg", data, "image/jpeg")}, data=options)
    b64 = base64.b64encode(data).decode()
    # Another option, so the route answers the first one: the front's answer is compared with the route's.
    twice(api, json={"image_file_b64": b64, "fine_edges": "false", **options})
    assert answered == [False, True, False, True]
    response = api.post(URL, json={"image_file_b64": b64, **options})  # the multipart one's job, by hash
    assert response.json()["image"] and answered[4:] == [True]


def test_a_wrong_or_missing_key_gets_the_routes_401(api: TestClient, answered: list[bool]) -> None:
    api.post(URL, content=road(), headers=JPEG).raise_for_status()
    assert api.post(URL, content=road(), headers=JPEG).status_code == 200
    before = sample(api, "cutout_api_requests_total", route=ROUTE, status="401")
    wrong = api.post(URL, content=road(), headers={**JPEG, "Authorization": "Bearer nope"})
    missing = api.post(URL, content=road(), headers={**JPEG, "Authorization": ""})
    by_header = api.post(URL, content=road(), headers={**JPEG, "Authorization": "", "X-Api-Key": KEY})
    assert [wrong.status_code, missing.status_code, by_header.status_code] == [401, 401, 200]
    assert wrong.json()["errors"][0]["code"] == "auth_failed"
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert answered == [False, True, False, False, True]
    assert sample(api, "cutout_api_requests_total", route=ROUTE, status="401") == before + 2


def test_two_different_keys_get_the_routes_400(api: TestClient, answered: list[bool]) -> None:
    """A repeat with a second, different key (X-Api-Key beside the fixture's Bearer) is the route's 400,
    never the front's 200 under the Bearer key."""
    api.post(URL, content=road(), headers=JPEG).raise_for_status()
    assert api.post(URL, content=road(), headers=JPEG).status_code == 200
    both = api.post(URL, content=road(), headers={**JPEG, "X-Api-Key": "other"})
    assert both.status_code == 400 and both.json()["errors"][0]["parameter"] == "X-Api-Key"
    assert answered == [False, True, False]


def test_tasks_errors_and_the_rate_go_to_the_route(make_api: ClientFactory, answered: list[bool]) -> None:
    client = make_api(api_rate=0.1)  # a bucket of one request
    client.post(URL, content=road(), headers=JPEG).raise_for_status()
    limited = client.post(URL, content=road(), headers=JPEG)  # a repeat, but over the rate: the route's 429
    assert limited.status_code == 429 and limited.headers["retry-after"]
    assert answered == [False, False]
    client = make_api(segmenter=EllipseSegmenter())
    client.post(URL, content=road(), headers=JPEG).raise_for_status()
    queued = client.post(URL, content=road(), headers=JPEG, params={"async": "true"})
    preferred = client.post(URL, content=road(), headers={**JPEG, "Prefer": "respond-async"})
    bad = client.post(URL, content=road(), headers=JPEG, params={"channels": "x"})
    twice_given = client.post(URL + "?channels=alpha&channels=alpha", content=road(), headers=JPEG)
    assert [queued.status_code, preferred.status_code, bad.status_code] == [202, 202, 400]
    assert twice_given.status_code == 400 and twice_given.json()["errors"][0]["parameter"] == "channels"
    assert answered[2:] == [False, False, False, False, False]


def test_the_same_options_with_another_image_is_not_a_repeat(api: TestClient, answered: list[bool]) -> None:
    data = road()
    api.post(URL, content=data, headers=JPEG).raise_for_status()
    other = data[:-2] + b"\xff\xd9" if data[-2:] != b"\xff\xd9" else data + b"\x00"
    response = api.post(URL, content=other, headers=JPEG)
    assert response.status_code == 200
    assert answered == [False, False]


def test_a_body_like_a_known_one_is_hashed_not_taken_for_it(api: TestClient, answered: list[bool]) -> None:
    """The front recognises a repeated body by its bytes, compared in full: a body of the same length,
    beginning and end (the sample it is looked up by) but another middle is another image."""
    data = road()
    middle = len(data) // 2
    crafted = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    for body in (data, data, data, crafted, crafted, data):
        assert api.post(URL, content=body, headers=JPEG).status_code == 200
    assert answered == [False, True, True, False, True, True]
    stored = Path(api.app.state.service.settings.originals) / ".cutout" / "transient" / "api-uploads"
    assert len(list(stored.iterdir())) == 2  # the crafted one was stored, not taken for the other


def test_a_body_in_several_messages_is_replayed_whole(api: TestClient, answered: list[bool]) -> None:
    """The front reads a body however uvicorn splits it, and hands the route every message it read."""
    data = road()
    parts = [data[:1000], data[1000:20000], data[20000:]]
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": URL, "raw_path": URL.encode(),
        "query_string": b"channels=alpha", "root_path": "", "client": ("127.0.0.1", 1),
        "server": ("testserver", 80), "state": {},
        "headers": [(b"host", b"testserver"), (b"content-type", b"image/jpeg"),
                    (b"content-length", str(len(data)).encode()),
                    (b"authorization", f"Bearer {KEY}".encode())],
    }  # fmt: skip

    async def post() -> tuple[int, dict[bytes, bytes], bytes]:
        messages = [
            {"type": "http.request", "body": part, "more_body": i < 2} for i, part in enumerate(parts)
        ]
        sent: list[Any] = []

        async def receive() -> Any:
            return messages.pop(0)

        async def send(message: Any) -> None:
            sent.append(message)

        await api.app(scope, receive, send)
        assert not messages  # all read, once
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return sent[0]["status"], dict(sent[0]["headers"]), body

    first = api.portal.call(post)  # type: ignore[union-attr]
    second = api.portal.call(post)  # type: ignore[union-attr]
    assert first[0] == 200 and first == second
    assert answered == [False, True]
    whole = api.post(URL, content=data, headers=JPEG, params={"channels": "alpha"})
    assert whole.content == first[2]


def test_another_face_answers_its_own_repeats(api: TestClient) -> None:
    """A vendor adapter's route can be answered by the front through a Face of its own: its key, its
    reading of the request as a native Intake, its answer; what it cannot answer reaches its route."""
    from starlette.responses import Response

    from cutout.api.intake import Intake
    from cutout.fasthits import FastHits

    async def as_native(api_: Any, request: Any, headers: Any, body: bytes) -> Intake | None:
        return Intake({"channels": "alpha"}, "body", body)

    def respond(api_: Any, job: Any, result: Any, request: Any, received: Any) -> Response:
        return Response(result.entry.data, media_type="image/png", headers={"X-Face": "vendor"})

    vendor = front.Face(
        path="/v1/vendor-segment",  # no such route: the API's catch-all answers what the face does not
        reads=frozenset((b"content-length", b"x-vendor-key")),
        key=lambda headers: headers.get(b"x-vendor-key", b"").decode() or None,
        intake=as_native,
        respond=respond,
    )
    fasthits = api.app
    assert isinstance(fasthits, FastHits)
    # The same started app (its state: service, api) behind a front that also knows the vendor's face.
    client = TestClient(FastHits(fasthits.app, skip=fasthits.skip, repeats=(front.NATIVE, vendor)))
    native = api.post(URL, content=road(), headers=JPEG, params={"channels": "alpha"})
    answered = client.post("/v1/vendor-segment", content=road(), headers={"X-Vendor-Key": KEY})
    assert answered.status_code == 200 and answered.headers["x-face"] == "vendor"
    assert answered.content == native.content
    both = {"X-Vendor-Key": KEY, "Authorization": f"Bearer {KEY}"}  # the catch-all checks the native key
    unknown = client.post("/v1/vendor-segment", content=road()[:-10], headers=both)  # not a repeat
    wrong = client.post("/v1/vendor-segment", content=road(), headers={"X-Vendor-Key": "nope"})
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "not_found"
    assert wrong.status_code == 401  # the route's
