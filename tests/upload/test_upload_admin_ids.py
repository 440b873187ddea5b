"""The Admin API's ``resources/image/upload/<public_id>`` (GET: ``api.resource``, POST: ``api.update``)
checks the id in its path as every other call checks its ``public_id``: a 400 naming what is wrong.
An id with a name longer than the file system takes was a 500 (OSError: File name too long) once the
store held a record."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from cutout.app import create_app
from cutout.settings import Settings
from tests.app.helpers import SAMPLES

KEY, SECRET = "ids-key", "ids-secret"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()}
RESOURCE = "/v1_1/demo/resources/image/upload/"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("ids")
    shutil.copytree(SAMPLES, root / "originals")
    settings = Settings(originals=root / "originals", cache_dir=root / "cache", upload=True, api_key=KEY,
                        api_secret=SECRET, background_removal=False)  # fmt: skip
    with TestClient(create_app(settings, load_model=False), raise_server_exceptions=False) as test_client:
        # One asset with a record, so the store's record folder exists (a missing folder hid the error).
        road = (SAMPLES / "docs" / "road.jpg").read_bytes()
        uploaded = test_client.post("/v1_1/demo/image/upload", headers=BASIC, data={"public_id": "ids/one"},
                                    files={"file": ("road.jpg", road)})  # fmt: skip
        assert uploaded.status_code == 200, uploaded.text
        yield test_client


@pytest.mark.parametrize(
    ("public_id", "words"),
    [("日" * 250, "part longer than 200 bytes"), ("ids/" + "x" * 240, "part longer than 200 bytes"),
     ("x/" * 150, "too long"), ("ids/.hidden", "'.'"), ("ids/a%5Cb", "backslashes")],
    ids=["long-name", "long-part", "long", "dot", "backslash"],
)  # fmt: skip
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_bad_id_in_the_path_is_a_400(client: TestClient, method: str, public_id: str, words: str) -> None:
    response = client.request(method, RESOURCE + public_id, headers=BASIC)
    assert response.status_code == 400, response.text[:200]
    assert words in response.json()["error"]["message"]


def test_a_good_id_still_answers(client: TestClient) -> None:
    assert client.get(RESOURCE + "ids/one", headers=BASIC).json()["public_id"] == "ids/one"
    updated = client.post(RESOURCE + "ids/one", headers=BASIC, data={"tags": "a"})
    assert updated.status_code == 200 and updated.json()["tags"] == ["a"]
    assert client.get(RESOURCE + "ids/none", headers=BASIC).status_code == 404
