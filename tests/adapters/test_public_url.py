"""CUTOUT_PUBLIC_URL: the URLs the adapters hand out for results (Perfect Corp's results.url, Runware's
imageURL) are delivery URLs under it, as the Upload API's answers are; the path serves the result here.
Perfect Corp's upload URL is an API route and stays where the request came to."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.adapters.conftest import KEY, road, settings_in
from tests.adapters.test_perfectcorp import finished, started, uploaded
from tests.app.helpers import EllipseSegmenter

PUBLIC = "https://images.example.org/cdn"


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from cutout.app import create_app

    settings = settings_in(tmp_path_factory.mktemp("public"), public_url=PUBLIC)
    app = create_app(settings, segmenter=EllipseSegmenter(), load_model=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def served(client: TestClient, url: str) -> bytes:
    assert url.startswith(PUBLIC + "/image/upload/"), url
    answer = client.get(url.removeprefix(PUBLIC))  # the proxy in front strips its own prefix
    assert answer.status_code == 200, answer.text
    return answer.content


def test_perfectcorp(public: TestClient) -> None:
    file_id = uploaded(public, road())  # its PUT went to http://testserver/...: the request's own host
    result = finished(public, started(public, {"src_file_id": file_id}).json()["data"]["task_id"])
    assert served(public, result["results"]["url"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_runware(public: TestClient, tmp_path: Path) -> None:
    bearer = {"Authorization": f"Bearer {KEY}"}
    image = base64.b64encode(road()).decode()
    tasks = [
        {"taskType": "imageBackgroundRemoval", "taskUUID": str(uuid.uuid4()), "inputImage": image,
         "outputType": "URL"},
        {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()), "image": image},
    ]  # fmt: skip
    answer = public.post("/v1", json=tasks, headers=bearer)
    assert answer.status_code == 200, answer.text
    removal, upload = answer.json()["data"]
    assert served(public, removal["imageURL"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert served(public, upload["imageURL"])[:3] == b"\xff\xd8\xff"
