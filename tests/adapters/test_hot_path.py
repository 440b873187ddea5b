"""The adapters on the native POST's hot path (a photo seen before, by any face, found by its hash in
memory): the answer is the one the vendor gives without it, the vendor's own checks still run on a
photo the native API took, and a Perfect Corp task on a result already made is done at once."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import pyvips
from starlette.testclient import TestClient

from tests.adapters.conftest import KEY, photo, road
from tests.adapters.test_perfectcorp import BEARER, started, uploaded

NATIVE = {"X-Api-Key": KEY}


def native(client: TestClient, data: bytes, kind: str, **fields: str) -> None:
    answer = client.post("/v1/remove-background", files={"image_file": ("a", data, kind)}, data=fields,
                         headers=NATIVE)  # fmt: skip
    assert answer.status_code == 200, answer.text


def test_perfectcorp_task_on_a_made_result_succeeds_at_the_first_poll(client: TestClient, stub: Any) -> None:
    native(client, road(), "image/jpeg", format="png")
    calls = stub.calls
    task_id = started(client, {"src_file_id": uploaded(client, road())}).json()["data"]["task_id"]
    first = client.get(f"/s2s/v2.0/task/sod/{task_id}", headers=BEARER).json()["data"]
    assert first["task_status"] == "success" and stub.calls == calls
    png = client.get(first["results"]["url"].removeprefix("http://testserver"))
    assert png.status_code == 200 and pyvips.Image.new_from_buffer(png.content, "").bands == 4
    # Born finished, it is still a task: it chains by its dst_id and is seen by the native task route.
    chained = started(client, {"src_file_id": first["dst_id"]})
    assert chained.status_code == 200, chained.text
    view = client.get(f"/v1/tasks/{task_id}", headers=NATIVE).json()
    assert view["status"] == "success" and view["result"]["width"] > 0
    assert view["finished_at"] == view["created_at"]  # done when made, not by a driver after


def test_api4ai_refuses_a_webp_the_native_api_took(client: TestClient) -> None:
    webp = pyvips.Image.new_from_buffer(road(), "").webpsave_buffer()
    native(client, webp, "image/webp", format="png")
    answer = client.post("/v1/results", files={"image": ("a.webp", webp, "image/webp")},
                         headers={"X-RapidAPI-Key": KEY})  # fmt: skip
    [result] = answer.json()["results"]
    assert (answer.status_code, result["status"]["code"]) == (200, "failure")


def test_azure_refuses_a_small_image_the_native_api_took(client: TestClient) -> None:
    small = pyvips.Image.new_from_buffer(road(), "").thumbnail_image(40).jpegsave_buffer()
    native(client, small, "image/jpeg", format="png", max_megapixels="16")
    answer = client.post(
        "/computervision/imageanalysis:segment",
        params={"api-version": "2023-02-01-preview", "mode": "backgroundRemoval"},
        content=small,
        headers={"Content-Type": "application/octet-stream", "Ocp-Apim-Subscription-Key": KEY},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["innererror"]["code"] == "InvalidImageDimension"


def test_same_bytes_from_the_native_api_and_the_faces(client: TestClient, stub: Any) -> None:
    """The same photo and options through remove.bg, rembg and the native API: one cut-out, made once."""
    native(client, photo(), "image/jpeg", size="full")
    calls = stub.calls
    first = client.post("/v1/remove-background", files={"image_file": ("a", photo(), "image/jpeg")},
                        data={"size": "full"}, headers=NATIVE).content  # fmt: skip
    removebg = client.post("/v1.0/removebg", files={"image_file": ("a.jpg", photo(), "image/jpeg")},
                           data={"size": "full"}, headers=NATIVE)  # fmt: skip
    rembg = client.post("/api/remove", files={"file": ("a.jpg", photo(), "image/jpeg")}, headers=NATIVE)
    assert removebg.status_code == rembg.status_code == 200
    assert removebg.content == first and removebg.headers["x-width"] == "451"
    assert pyvips.Image.new_from_buffer(rembg.content, "").bands == 4 and stub.calls == calls


def test_runware_image_uuid_chains_after_repeats(client: TestClient) -> None:
    """The imageUUID's note is written once per half its lifetime, not per request: it still chains."""
    bearer = {"Authorization": f"Bearer {KEY}"}
    task = {"taskType": "imageBackgroundRemoval", "inputImage": base64.b64encode(road()).decode(),
            "outputType": "URL"}  # fmt: skip
    uuids = set()
    for _ in range(3):
        answer = client.post("/v1", json=[{**task, "taskUUID": str(uuid.uuid4())}], headers=bearer)
        assert answer.status_code == 200, answer.text
        uuids.add(answer.json()["data"][0]["imageUUID"])
    [image_uuid] = uuids
    chained = {**task, "taskUUID": str(uuid.uuid4()), "inputImage": image_uuid, "returnOnlyMask": True}
    answer = client.post("/v1", json=[chained], headers=bearer)
    assert answer.status_code == 200 and answer.json()["data"][0]["imageURL"], answer.text


def test_removebg_error_names_the_field_that_carried_the_image(client: TestClient) -> None:
    for fields, files in (({}, {"image_file": ("a.txt", b"hello there", "text/plain")}),
                          ({"image_file_b64": base64.b64encode(b"hello there").decode()}, None)):  # fmt: skip
        answer = client.post("/v1.0/removebg", data=fields, files=files, headers=NATIVE)
        [error] = answer.json()["errors"]
        name = "image_file" if files else "image_file_b64"
        assert answer.status_code == 400 and error["detail"].startswith(f"{name} is not"), error


def test_a_seen_image_is_compared_in_full(client: TestClient) -> None:
    """The adapters find a photo they answered before by its bytes (no second sha256): one that differs
    only in its middle (same length, same first and last 64 bytes) is another image with its own job."""
    from cutout.adapters import azure, base

    api = client.app.app.state.api  # type: ignore[attr-defined]
    first = road()
    changed = bytearray(first)
    changed[len(changed) // 2] ^= 0x01  # a bit of the scan: still a JPEG, other pixels
    other = bytes(changed)
    for data in (first, other):
        answer = client.post(
            "/computervision/imageanalysis:segment",
            params={"api-version": "2023-02-01-preview", "mode": "backgroundRemoval"},
            content=data,
            headers={"Content-Type": "application/octet-stream", "Ocp-Apim-Subscription-Key": KEY},
        )
        assert answer.status_code == 200, answer.text
    fields = azure.MODES["backgroundRemoval"]
    for data in (first, other):
        job = base.known_job(api, data, fields)
        assert job is not None and job.public_id.endswith(hashlib.sha256(data).hexdigest())


def test_memory_hits_are_told_to_the_disk_cache(client: TestClient, monkeypatch: Any) -> None:
    """As the native route does: an adapter's answer from memory notes the use for the disk cache's LRU
    (once a minute a result), told after the answer; none is left pending."""
    store = client.app.app.state.api.remover.service.store  # type: ignore[attr-defined]
    rembg = {"files": {"file": ("a.jpg", photo(), "image/jpeg")}, "headers": NATIVE}
    assert client.post("/api/remove", **rembg).status_code == 200  # type: ignore[arg-type]
    monkeypatch.setattr(store, "use_period", 0.0)  # every hit due
    told: list[str] = []
    monkeypatch.setattr(store.blobs, "mark_used", told.append)
    assert client.post("/api/remove", **rembg).status_code == 200  # type: ignore[arg-type]
    assert told and not store.uses_pending
