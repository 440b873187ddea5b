"""The Upload and Admin APIs find an asset by either Unicode spelling of its public id, as delivery URLs
do (``cutout.resolve.locate_either_form``): ``café`` composed (NFC, U+00E9) and decomposed (NFD, ``e``
then U+0301) look alike and mean the same. An asset keeps one spelling: an upload under the other
spelling replaces it rather than storing a look-alike twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess
from tests.upload.test_upload_manage import _originals

ROAD = SAMPLES / "docs" / "road.jpg"
ROUTER = SAMPLES / "docs" / "rmv_bgd" / "router_orig.jpg"
NFC, NFD = "uni/caf\u00e9", "uni/cafe\u0301"


def test_every_lookup_finds_the_asset_by_its_other_spelling(sdk: Any, server: ServerProcess) -> None:
    up = sdk.uploader.upload(str(ROAD), public_id=NFC, tags=["t"], backup=True)
    assert up["public_id"] == NFC
    found = dict(sdk.api.resource(NFD))
    assert found["public_id"] == NFC and found["etag"] == up["etag"]
    updated = dict(sdk.api.update(NFD, tags=["u"]))
    assert updated["public_id"] == NFC and updated["tags"] == ["u"]
    assert sdk.uploader.add_tag("v", [NFD])["public_ids"] == [NFD]
    assert sdk.uploader.add_context({"k": "w"}, [NFD])["public_ids"] == [NFD]
    listed = sdk.api.resources_by_ids([NFD, NFC])["resources"]
    assert [r["public_id"] for r in listed] == [NFC]
    shown = dict(sdk.api.resource(NFC))
    assert shown["tags"] == ["u", "v"] and shown["context"] == {"custom": {"k": "w"}}
    # An upload under the other spelling is the same asset (overwrite rules apply), not a twin.
    again = sdk.uploader.upload(str(ROUTER), public_id=NFD, overwrite=False)
    assert again["public_id"] == NFC and again["etag"] == up["etag"]
    replaced = sdk.uploader.upload(str(ROUTER), public_id=NFD)
    assert replaced["public_id"] == NFC and replaced["version"] > up["version"]
    folder = _originals(server) / "uni"
    assert sorted(p.name for p in folder.iterdir()) == ["caf\u00e9.jpg"]
    assert sdk.uploader.destroy(NFD) == {"result": "ok"}
    assert httpx.get(up["url"], timeout=30).status_code == 404
    restored = sdk.api.restore([NFD])[NFD]
    assert restored["public_id"] == NFC
    moved = sdk.uploader.rename(NFD, "uni/moved")
    assert moved["public_id"] == "uni/moved"
    with pytest.raises(sdk.exceptions.NotFound):
        sdk.api.resource(NFC)
    # A rename onto a look-alike of an asset is onto that asset: refused without overwrite, as for its id.
    sdk.uploader.upload(str(ROAD), public_id=NFC)
    with pytest.raises(sdk.exceptions.BadRequest, match="already exists"):
        sdk.uploader.rename("uni/moved", NFD)
    onto = sdk.uploader.rename("uni/moved", NFD, overwrite=True)
    assert onto["public_id"] == NFC
    assert sorted(p.name for p in folder.iterdir()) == ["caf\u00e9.jpg"]
    gone = sdk.api.delete_resources([NFD])["deleted"]
    assert gone == {NFD: "deleted"}


def test_a_decomposed_upload_keeps_its_spelling(sdk: Any, server: ServerProcess) -> None:
    """What an upload stores is the id as sent (no rewriting of a client's id); the other spelling finds
    it, and a delete by the other spelling deletes it."""
    up = sdk.uploader.upload(str(ROAD), public_id="uni/th\u0065\u0301")
    assert up["public_id"] == "uni/the\u0301"
    assert dict(sdk.api.resource("uni/th\u00e9"))["public_id"] == "uni/the\u0301"
    assert sdk.api.delete_resources(["uni/th\u00e9"])["deleted"] == {"uni/th\u00e9": "deleted"}
    assert not any(Path(p).name.startswith("th") for p in (_originals(server) / "uni").iterdir())
