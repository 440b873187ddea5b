"""The vendor adapters across replicas sharing Redis (CUTOUT_STATE): their notes (Perfect Corp's uploads
and polls, Runware's image UUIDs) live beside the API's tasks in Redis, so each step of a vendor's flow
may land on any replica; Perfect Corp's signed upload URL is honoured by every replica. A file id or an
image UUID is its key's on every replica: another key is answered as for an unknown one."""

from __future__ import annotations

import base64
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cutout.settings import Settings
from tests.api.conftest import KEY, road
from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, client_factory

pytestmark = pytest.mark.integration
BEARER = {"Authorization": f"Bearer {KEY}"}
OTHER_KEY = "another-key"
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}


@pytest.fixture
def make_replica(tmp_path: Path, redis_url: str) -> Iterator[ClientFactory]:
    originals = tmp_path / "originals"
    shutil.copytree(SAMPLES, originals)
    settings = Settings(originals=originals, cache_dir=tmp_path / "one", render_threads=2, lease_seconds=5,
                        api_keys=(KEY, OTHER_KEY), api_wait_seconds=10, state=redis_url)  # fmt: skip
    yield from client_factory(settings, EllipseSegmenter())


def test_perfectcorp_steps_on_alternating_replicas(make_replica: ClientFactory, tmp_path: Path) -> None:
    one, other = make_replica(), make_replica(cache_dir=tmp_path / "two")
    files = [{"content_type": "image/jpg", "file_name": "a.jpg", "file_size": len(road())}]
    entry = one.post("/s2s/v2.0/file/sod", headers=BEARER, json={"files": files}).json()["data"]["files"][0]
    put = entry["requests"][0]
    assert other.put(put["url"], headers=put["headers"], content=road()).status_code == 200
    assert one.put(put["url"], headers=put["headers"], content=road()).status_code == 403  # once, anywhere
    refused = other.post("/s2s/v2.0/task/sod", headers=OTHER, json={"src_file_id": entry["file_id"]})
    assert (refused.status_code, refused.json()["error_code"]) == (404, "unknown_internal_error")
    made = one.post("/s2s/v2.0/task/sod", headers=BEARER, json={"src_file_id": entry["file_id"]})
    assert made.status_code == 200, made.text
    path = f"/s2s/v2.0/task/sod/{made.json()['data']['task_id']}"
    for _ in range(200):
        data = other.get(path, headers=BEARER).json()["data"]
        if data["task_status"] != "running":
            break
    assert data["task_status"] == "success", data
    url = data["results"]["url"].removeprefix("http://testserver")
    deadline = time.monotonic() + 30
    while (got := other.get(url)).status_code == 423 and time.monotonic() < deadline:  # its own cache:
        time.sleep(0.05)  # the other replica makes it (the delivery URL's 423 while it does)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"


def test_runware_image_uuid_on_another_replica(make_replica: ClientFactory, tmp_path: Path) -> None:
    one, other = make_replica(), make_replica(cache_dir=tmp_path / "two")
    image = base64.b64encode(road()).decode()
    upload = {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()), "image": image}
    answer = one.post("/v1", json=[upload], headers=BEARER)
    assert answer.status_code == 200, answer.text
    removal = {"taskType": "imageBackgroundRemoval", "taskUUID": str(uuid.uuid4()),
               "inputImage": answer.json()["data"][0]["imageUUID"], "outputType": "URL"}  # fmt: skip
    refused = other.post("/v1", json=[removal], headers=OTHER)
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "invalidImageUUID"
    chained = other.post("/v1", json=[removal], headers=BEARER)
    assert chained.status_code == 200 and chained.json()["data"][0]["imageURL"], chained.text
