"""Delivery paths the server composes for the HTTP API and the vendors' faces carry a version before the
public id, so that an id whose folder is named like a component (``w_100/x``) is never read as that
transformation of another original (it processed ``x`` scaled to 100 px, and signed that URL)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import pyvips

from cutout.settings import Settings
from tests.api.conftest import road
from tests.app.helpers import SAMPLES, ClientFactory

URL = "/v1/remove-background"


@pytest.fixture
def originals(api_settings: Settings) -> Path:
    root = Path(str(api_settings.originals))
    (root / "w_100").mkdir()
    shutil.copy(SAMPLES / "docs" / "road.jpg", root / "w_100" / "x.jpg")  # 640 x 427
    shutil.copy(SAMPLES / "docs" / "bg_beach.jpg", root / "x.jpg")  # another image, of another size
    return root


@pytest.mark.parametrize("secret", [None, "s3cret"])
def test_a_folder_named_like_a_component_is_part_of_the_id(
    originals: Path, make_api: ClientFactory, secret: str | None
) -> None:
    client = make_api(api_secret=secret) if secret else make_api()
    params = {"public_id": "w_100/x", "output": "json", "encoding": "url", "bg_color": "blue"}
    body = client.post(URL, data=params).json()
    assert (body["width"], body["height"]) == (640, 427), body
    path = httpx.URL(body["image"]).raw_path.decode()
    assert path.endswith("/v1/w_100/x"), path
    assert path.startswith("/image/upload/s--" if secret else "/image/upload/e_background_removal/")
    delivered = client.get(path)
    assert delivered.status_code == 200
    assert pyvips.Image.new_from_buffer(delivered.content, "").width == 640
    direct = client.post(URL, data={"public_id": "w_100/x", "bg_color": "blue"})
    assert direct.content == delivered.content


def test_ids_with_odd_characters_are_escaped(api_settings: Settings, make_api: ClientFactory) -> None:
    root = Path(str(api_settings.originals))
    (root / "my shots").mkdir()
    (root / "my shots" / "a%41 b.jpg").write_bytes(road())
    client = make_api(api_secret="s3cret")
    body = client.post(URL, data={"public_id": "my shots/a%41 b", "output": "json", "encoding": "url"}).json()
    path = httpx.URL(body["image"]).raw_path.decode()
    assert path.endswith("/v1/my%20shots/a%2541%20b"), path
    assert client.get(path).status_code == 200


def test_a_queued_job_names_the_same_id(originals: Path, make_api: ClientFactory) -> None:
    """What a ``cutout worker`` prepares again (queue mode) keeps the version: without it, the job of
    ``.../v1/w_100/x`` was prepared as ``x`` scaled, its key differed, and it was dropped for ever."""
    from grammar import parse_path

    resolver = make_api().app.state.service.resolver  # type: ignore[attr-defined]
    prepared = resolver.prepare(parse_path("/demo/image/upload/e_background_removal/v1/w_100/x"), accept=None)
    request = prepared.request[0]
    assert request == "/image/upload/e_background_removal/v1/w_100/x"
    assert resolver.prepare(parse_path(request), accept=None, signed_ok=True).key == prepared.key
