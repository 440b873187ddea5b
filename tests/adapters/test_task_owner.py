"""With several keys, a vendor face's async task is read back only with the key that made it, as the
native API's tasks are: Runware's getResponse and Perfect Corp's poll and dst_id chaining answer another
key as they answer an unknown task."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.adapters.conftest import settings_in
from tests.adapters.test_runware import removal
from tests.app.helpers import SAMPLES, EllipseSegmenter

A, B = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from cutout.app import create_app

    settings = settings_in(tmp_path_factory.mktemp("owners"), api_keys=("key-a", "key-b"))
    with TestClient(create_app(settings, segmenter=EllipseSegmenter(), load_model=False),
                    raise_server_exceptions=False) as test_client:  # fmt: skip
        yield test_client


def test_runware_get_response(client: TestClient) -> None:
    task = removal(deliveryMethod="async", outputType="dataURI")
    assert client.post("/v1", headers=A, json=[task]).json()["data"][0]["status"] == "processing"
    poll = [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]
    assert client.post("/v1", headers=B, json=poll).json()["errors"][0]["code"] == "invalidTaskUUID"
    deadline = time.monotonic() + 30
    while (item := client.post("/v1", headers=A, json=poll).json()["data"][0])["status"] == "processing":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert item["status"] == "success"
    assert client.post("/v1", headers=B, json=poll).json()["errors"][0]["code"] == "invalidTaskUUID"


def test_perfectcorp_poll_and_chain(client: TestClient) -> None:
    road = (SAMPLES / "docs" / "road.jpg").read_bytes()
    files = [{"content_type": "image/jpg", "file_name": "road.jpg", "file_size": len(road)}]
    [entry] = client.post("/s2s/v2.0/file/sod", headers=A, json={"files": files}).json()["data"]["files"]
    [put] = entry["requests"]
    assert client.put(put["url"], headers=put["headers"], content=road).status_code == 200
    task_id = client.post("/s2s/v2.0/task/sod", headers=A, json={"src_file_id": entry["file_id"]}).json()[
        "data"]["task_id"]  # fmt: skip
    refused = client.get(f"/s2s/v2.0/task/sod/{task_id}", headers=B)
    assert refused.status_code == 400 and refused.json()["error_code"] == "InvalidTaskId", refused.text
    deadline = time.monotonic() + 30
    while (data := client.get(f"/s2s/v2.0/task/sod/{task_id}", headers=A).json()["data"])["task_status"] == (
        "running"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert data["task_status"] == "success", data
    chained = client.post("/s2s/v2.0/task/sod", headers=B, json={"src_file_id": data["dst_id"]})
    assert chained.status_code == 404, chained.text  # another key's result: as a file never uploaded
    mine = client.post("/s2s/v2.0/task/sod", headers=A, json={"src_file_id": data["dst_id"]})
    assert mine.status_code == 200, mine.text
