"""The Upload and Admin API with a symbolic link in the originals folder that leads out of it (the QA
pass's ``ln -s /tmp/outside originals/linkdir``): an upload, a ``folder`` or a rename onto it is a 400
with nothing written (neither the file outside nor a record), and a delete by prefix neither lists nor
deletes through it, nor through a link to the root's parent (whose ids alias the real originals). In
process: no model needed."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cutout.app import create_app
from cutout.settings import Settings
from tests.app.helpers import SAMPLES

KEY, SECRET = "link-key", "link-secret"
ROAD = (SAMPLES / "docs" / "road.jpg").read_bytes()
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()}
OUTSIDE_MESSAGE = "leads outside the originals folder"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, Path, Path]]:
    originals, outside = tmp_path / "originals", tmp_path / "outside"
    shutil.copytree(SAMPLES, originals)
    outside.mkdir()
    (outside / "kept.jpg").write_bytes(ROAD)
    (originals / "linkdir").symlink_to(outside)
    (originals / "up").symlink_to(tmp_path)  # the root's parent: up/originals/docs/road is docs/road
    config = Settings(originals=originals, cache_dir=tmp_path / "cache", upload=True, api_key=KEY,
                      api_secret=SECRET, background_removal=False)  # fmt: skip
    with TestClient(create_app(config, load_model=False), raise_server_exceptions=False) as client:
        yield client, originals, outside


def _records(originals: Path) -> list[str]:
    """Records naming a refused id (``jobs/linkdir/escaped.record`` was left behind)."""
    names = [p.relative_to(originals / ".cutout").as_posix() for p in (originals / ".cutout").rglob("*")]
    return sorted(n for n in names if "linkdir" in n or "/up/" in f"/{n}" or "escaped" in n)


def _upload(client: TestClient, **form: str) -> tuple[int, str]:
    answer = client.post(
        "/v1_1/demo/image/upload", data=form, files={"file": ("road.jpg", ROAD)}, headers=AUTH
    )
    return answer.status_code, answer.json().get("error", {}).get("message", "")


def test_an_upload_through_a_link_out_is_a_400_and_stores_nothing(
    site: tuple[TestClient, Path, Path],
) -> None:
    client, originals, outside = site
    forms = (
        {"public_id": "linkdir/x"},
        {"folder": "linkdir"},
        {"folder": "linkdir/sub", "public_id": "y"},
        {"public_id": "up/originals/docs/road"},
        {"public_id": "x", "folder": "up/outside"},
        {"public_id": "linkdir/x", "backup": "true", "tags": "a", "eager": "w_10"},
    )
    for form in forms:
        status, message = _upload(client, **form)
        assert status == 400 and OUTSIDE_MESSAGE in message, (form, status, message)
    assert sorted(p.name for p in outside.iterdir()) == ["kept.jpg"]
    assert _records(originals) == []
    assert client.get("/v1_1/demo/resources/image/upload/docs/road", headers=AUTH).json()["version"]


def test_a_rename_onto_a_link_out_is_a_400_and_leaves_no_record(site: tuple[TestClient, Path, Path]) -> None:
    client, originals, outside = site
    assert _upload(client, public_id="mine/a")[0] == 200
    for target in ("linkdir/escaped", "up/originals/docs/escaped"):
        form = {"from_public_id": "mine/a", "to_public_id": target}
        answer = client.post("/v1_1/demo/image/rename", data=form, headers=AUTH)
        assert answer.status_code == 400 and OUTSIDE_MESSAGE in answer.json()["error"]["message"], answer.text
    assert sorted(p.name for p in outside.iterdir()) == ["kept.jpg"]
    assert not (originals / "docs" / "escaped.jpg").exists()
    assert _records(originals) == []
    assert client.get("/v1_1/demo/resources/image/upload/mine/a", headers=AUTH).status_code == 200


def test_delete_by_prefix_never_goes_through_a_link_out(site: tuple[TestClient, Path, Path]) -> None:
    client, originals, outside = site
    for prefix in ("linkdir/", "up/", "up/originals/docs/", "up/originals/"):
        answer = client.delete("/v1_1/demo/resources/image/upload", params={"prefix": prefix}, headers=AUTH)
        assert answer.status_code == 200 and answer.json()["deleted"] == {}, (prefix, answer.text)
        listed = client.get("/v1_1/demo/resources/image/upload", params={"prefix": prefix}, headers=AUTH)
        assert listed.json()["resources"] == [], prefix
    for ids in ("linkdir/kept", "up/originals/docs/road"):
        answer = client.delete("/v1_1/demo/resources/image/upload", params={"public_ids": ids}, headers=AUTH)
        assert answer.json()["deleted"] == {ids: "not_found"}, answer.text
    assert (outside / "kept.jpg").exists() and (originals / "docs" / "road.jpg").exists()
    assert _records(originals) == []


def test_an_upload_into_a_file_is_a_400(site: tuple[TestClient, Path, Path]) -> None:
    """A folder of the id that is a file (docs/road.jpg/x) was a 500 (NotADirectoryError on write)."""
    client, originals, _ = site
    for form in ({"public_id": "docs/road.jpg/x"}, {"folder": "docs/road.jpg", "public_id": "y"}):
        status, message = _upload(client, **form)
        assert status == 400 and "into a file" in message, (form, status, message)
    assert (originals / "docs" / "road.jpg").is_file()
