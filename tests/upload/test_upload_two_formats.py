"""An id stored in two formats: a file put by hand beside an uploaded original (``road.jpg`` beside the
uploaded ``road.png``, or one an older ``make run`` left) does not hide it. Delivery, the upload's answer
and the Admin API agree on the original the asset's record describes; without a record the extension
order (jpg first) stays the rule, and the Admin API describes what delivery serves."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvips
from starlette.testclient import TestClient

from cutout.app import create_app
from cutout.settings import Settings
from tests.app.helpers import SAMPLES

KEY, SECRET = "two-key", "two-secret"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()}
ROAD = (SAMPLES / "docs" / "road.jpg").read_bytes()
PNG = bytes(pyvips.Image.black(40, 30, bands=3).pngsave_buffer())


@pytest.fixture
def originals(tmp_path: Path) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "originals")
    return tmp_path / "originals"


@pytest.fixture
def client(originals: Path) -> Iterator[TestClient]:
    settings = Settings(originals=originals, cache_dir=originals.parent / "cache", upload=True, api_key=KEY,
                        api_secret=SECRET, background_removal=False)  # fmt: skip
    with TestClient(create_app(settings, load_model=False), raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_jpeg_put_beside_an_uploaded_png_does_not_hide_it(client: TestClient, originals: Path) -> None:
    up = client.post("/v1_1/demo/image/upload", headers=BASIC, data={"public_id": "two/road"},
                     files={"file": ("road.png", PNG)})  # fmt: skip
    assert up.status_code == 200, up.text
    answer = up.json()
    assert answer["format"] == "png"
    (originals / "two" / "road.jpg").write_bytes(ROAD)  # by hand, after the upload
    url = answer["url"].partition("/image/upload/")[2]
    assert url == f"v{answer['version']}/two/road.png"
    for path in (url, "two/road", f"v{answer['version']}/two/road"):
        shown = client.get(f"/demo/image/upload/{path}")
        assert shown.status_code == 200 and shown.content == PNG, path  # the uploaded bytes, as stored
        assert shown.headers["content-type"] == "image/png"
    assert "immutable" in client.get(f"/demo/image/upload/{url}").headers["cache-control"]
    described = client.get("/v1_1/demo/resources/image/upload/two/road", headers=BASIC).json()
    assert (described["format"], described["bytes"], described["version"]) == ("png", len(PNG),
                                                                                answer["version"])
    rendered = client.get("/demo/image/upload/c_scale,w_20/two/road.png")
    assert rendered.status_code == 200
    assert pyvips.Image.new_from_buffer(rendered.content, "").height == 15  # 40x30, not the road's shape
    # An upload over it in the other format is the asset again, the file by hand gone with the png.
    again = client.post("/v1_1/demo/image/upload", headers=BASIC, data={"public_id": "two/road"},
                        files={"file": ("road.jpg", ROAD)})  # fmt: skip
    assert again.status_code == 200 and again.json()["format"] == "jpg"
    assert sorted(p.name for p in (originals / "two").glob("road.*")) == ["road.jpg"]
    assert client.get("/demo/image/upload/two/road").content == ROAD


def test_without_a_record_the_extension_order_decides(client: TestClient, originals: Path) -> None:
    (originals / "two").mkdir()
    (originals / "two" / "plain.png").write_bytes(PNG)
    (originals / "two" / "plain.jpg").write_bytes(ROAD)
    shown = client.get("/demo/image/upload/two/plain")
    assert shown.status_code == 200 and shown.content == ROAD
    described = client.get("/v1_1/demo/resources/image/upload/two/plain", headers=BASIC).json()
    assert (described["format"], described["bytes"]) == ("jpg", len(ROAD))
