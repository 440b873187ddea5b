"""A vendor adapter's repeated POST is answered by the ASGI front (``cutout.api.front``, each adapter's
``FACE``) with exactly the route's answer: status, every header, body. A wrong or missing key, and a
request the vendor refuses (its formats, its size limits), still get the route's answer in the vendor's
own envelope, repeated or not."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import pyvips
from starlette.testclient import TestClient

from tests.adapters.conftest import KEY, road

AZURE = "/computervision/imageanalysis:segment"
AZURE_QUERY = {"api-version": "2023-02-01-preview", "mode": "backgroundRemoval"}


_made = iter(range(100, 400, 7))


def fresh(kind: str = "jpeg") -> bytes:
    """A photo no other test sent (its first request is the route's)."""
    thumbnail = pyvips.Image.new_from_buffer(road(), "").thumbnail_image(next(_made))
    return thumbnail.jpegsave_buffer() if kind == "jpeg" else thumbnail.webpsave_buffer()


# Each vendor's request for a photo, with the key given as ``key`` (None: no key header at all).
Build = Callable[[bytes, "str | None"], dict[str, Any]]


def _azure(data: bytes, key: str | None, mode: str = "backgroundRemoval") -> dict[str, Any]:
    headers = {"Content-Type": "application/octet-stream"}
    if key is not None:
        headers["Ocp-Apim-Subscription-Key"] = key
    return {"url": AZURE, "params": {**AZURE_QUERY, "mode": mode}, "content": data, "headers": headers}


def _azure_multipart(data: bytes, key: str | None) -> dict[str, Any]:
    headers = {"Ocp-Apim-Subscription-Key": key} if key is not None else {}
    return {"url": AZURE, "params": {**AZURE_QUERY, "mode": "foregroundMatting"},
            "files": {"image": ("a.jpg", data, "image/jpeg")}, "headers": headers}  # fmt: skip


def _keyed(key: str | None, name: str = "X-Api-Key") -> dict[str, str]:
    return {name: key} if key is not None else {}


def _rembg(data: bytes, key: str | None) -> dict[str, Any]:
    return {"url": "/api/remove", "files": {"file": ("a.jpg", data, "image/jpeg")},
            "data": {"model": "u2netp", "a": "true"}, "params": {"bgc": "0,0,255,255"},
            "headers": _keyed(key)}  # fmt: skip


def _removebg(data: bytes, key: str | None) -> dict[str, Any]:
    return {"url": "/v1.0/removebg", "files": {"image_file": ("a.jpg", data, "image/jpeg")},
            "data": {"size": "full", "type": "car"}, "headers": _keyed(key)}  # fmt: skip


def _removebg_json(data: bytes, key: str | None) -> dict[str, Any]:
    body = {"image_file_b64": base64.b64encode(data).decode(), "bg_color": "red"}
    return {"url": "/v1.0/removebg", "json": body, "headers": {**_keyed(key), "Accept": "application/json"}}


def _removebg_refused(r: Any) -> bool:
    return r.status_code == 403 and r.json()["errors"][0]["code"] == "auth_failed"


def _api4ai(data: bytes, key: str | None, mode: str = "fg-mask") -> dict[str, Any]:
    return {"url": "/v1/results", "params": {"mode": mode}, "files": {"image": ("a.jpg", data, "image/jpeg")},
            "headers": _keyed(key, "X-RapidAPI-Key")}  # fmt: skip


def _runware(data: bytes, key: str | None, output: str = "base64Data") -> dict[str, Any]:
    task = {"taskType": "imageBackgroundRemoval", "taskUUID": "b1a2c3d4-0000-4000-8000-000000000001",
            "inputImage": base64.b64encode(data).decode(), "outputType": output, "includeCost": True,
            "postProcessMask": True}  # fmt: skip
    return {"url": "/v1", "json": [task], "headers": _keyed(key and f"Bearer {key}", "Authorization")}


def _runware_url(data: bytes, key: str | None) -> dict[str, Any]:
    request = _runware(data, key, "URL")
    request["json"][0]["inputImage"] = "data:image/jpeg;base64," + request["json"][0]["inputImage"]
    return request


def _runware_refused(r: Any) -> bool:
    return r.status_code == 401 and r.json()["errors"][0]["code"] in ("missingApiKey", "invalidApiKey")


#: vendor -> (request, the refusal's check: status and the vendor's own envelope)
def _azure_refused(r: Any) -> bool:
    return r.status_code == 401 and r.json()["error"]["code"] == "401"


VENDORS: dict[str, tuple[Build, Callable[[Any], bool]]] = {
    "azure": (_azure, _azure_refused),
    "azure-multipart": (_azure_multipart, _azure_refused),
    "rembg": (_rembg, lambda r: r.status_code == 401 and isinstance(r.json()["detail"], str)),
    "removebg": (_removebg, _removebg_refused),
    "removebg-json": (_removebg_json, _removebg_refused),
    "api4ai": (_api4ai, lambda r: r.status_code == 401 and r.json()["message"]),
    "runware": (_runware, _runware_refused),
    "runware-url": (_runware_url, _runware_refused),
}


def post(client: TestClient, request: dict[str, Any]) -> Any:
    return client.post(**request)


def counters(client: TestClient) -> dict[str, float]:
    """Every counter series of /metrics (process-wide: tests compare differences)."""
    found = {}
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if line.startswith("cutout_") and "_total" in name.split("{")[0]:
            found[name] = float(value)
    return found


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: value - before.get(name, 0.0) for name, value in after.items() if value != before.get(name)}


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_a_repeat_is_the_routes_answer(client: TestClient, answered: list[bool], vendor: str) -> None:
    build, refused = VENDORS[vendor]
    data = fresh()
    first = post(client, build(data, KEY))
    assert first.status_code == 200, first.text
    start = counters(client)
    second = post(client, build(data, KEY))
    by_front = counters(client)
    # The same repeat with its key header given twice: the front leaves it to the route, which answers it.
    request = build(data, KEY)
    request["headers"] = [*request["headers"].items(), *request["headers"].items()]
    third = post(client, request)
    by_route = counters(client)
    assert answered == [False, True, False]
    for other in (second, third):
        assert other.status_code == first.status_code
        assert other.headers.multi_items() == first.headers.multi_items()
        assert other.content == first.content
    # Counted alike: the adapters' routes count no request series (no Face.label), and neither does the front.
    assert delta(start, by_front) == delta(by_front, by_route)
    # A wrong or missing key on a repeat: the route's refusal, in the vendor's envelope.
    wrong = post(client, build(data, "wrong"))
    missing = post(client, build(data, None))
    assert refused(wrong) and refused(missing), (wrong.text, missing.text)
    assert answered[3:] == [False, False]


def test_azure_limits_apply_to_a_repeat(client: TestClient, answered: list[bool]) -> None:
    """A photo the native API took with Azure's options, too small for Azure: refused every time."""
    small = pyvips.Image.new_from_buffer(road(), "").thumbnail_image(40).jpegsave_buffer()
    native = client.post("/v1/remove-background", content=small,
                         params={"format": "png", "max_megapixels": "16"},
                         headers={"Content-Type": "image/jpeg", "X-Api-Key": KEY})  # fmt: skip
    assert native.status_code == 200
    for _ in range(2):
        answer = post(client, _azure(small, KEY))
        assert answer.status_code == 400
        assert answer.json()["error"]["innererror"]["code"] == "InvalidImageDimension"
    assert answered == [False, False, False]
    bad_version = _azure(fresh(), KEY)
    bad_version["params"] = {**AZURE_QUERY, "api-version": "2024-01-01"}
    assert [post(client, bad_version).status_code for _ in range(2)] == [400, 400]


def test_api4ai_formats_and_failures_apply_to_a_repeat(client: TestClient, answered: list[bool]) -> None:
    """A WebP the native API took with API4AI's options: API4AI's 200 with a failure status, every time."""
    webp = fresh("webp")
    native = client.post("/v1/remove-background", content=webp, params={"format": "png"},
                         headers={"Content-Type": "image/webp", "X-Api-Key": KEY})  # fmt: skip
    assert native.status_code == 200
    for _ in range(2):
        files = {"image": ("a.webp", webp, "image/webp")}
        answer = post(client, {**_api4ai(webp, KEY, "fg-image"), "files": files})
        [result] = answer.json()["results"]
        assert (answer.status_code, result["status"]["code"]) == (200, "failure")
    assert answered == [False, False, False]
    wide = pyvips.Image.black(4100, 60).jpegsave_buffer()  # over API4AI's 4096 a side
    native = client.post("/v1/remove-background", content=wide, params={"format": "png", "channels": "alpha"},
                         headers={"Content-Type": "image/jpeg", "X-Api-Key": KEY})  # fmt: skip
    assert native.status_code == 200
    for _ in range(2):
        [result] = post(client, _api4ai(wide, KEY)).json()["results"]
        status = result["status"]
        assert status["code"] == "failure" and "Resolution is too big" in status["message"]
    assert answered[3:] == [False, False, False]


def test_runware_a_new_task_uuid_is_answered_too(client: TestClient, answered: list[bool]) -> None:
    """Each Runware task has its own taskUUID: the same photo under a new one is still a repeat, answered
    with that taskUUID; several tasks, async ones and images named by UUID are the route's."""
    data = fresh()
    first = post(client, _runware(data, KEY))
    renamed = _runware(data, KEY)
    renamed["json"][0]["taskUUID"] = str(uuid.uuid4())
    second = post(client, renamed)
    assert answered == [False, True]
    assert second.json()["data"][0]["taskUUID"] == renamed["json"][0]["taskUUID"]
    assert second.json()["data"][0]["imageBase64Data"] == first.json()["data"][0]["imageBase64Data"]
    both = _runware(data, KEY)
    both["json"] = [both["json"][0], {**both["json"][0], "taskUUID": str(uuid.uuid4())}]
    queued = _runware(data, KEY)
    queued["json"][0] = {**queued["json"][0], "taskUUID": str(uuid.uuid4()), "deliveryMethod": "async"}
    chained = _runware(data, KEY)
    chained["json"][0]["inputImage"] = first.json()["data"][0]["imageUUID"]
    for request in (both, queued, chained):
        assert post(client, request).status_code == 200
    assert answered[2:] == [False, False, False]
