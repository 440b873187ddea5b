"""The Upload and Admin API's answers and limits checked against Cloudinary's, with its own Python SDK against
a real `cutout serve`: ``api_key`` in every upload and explicit answer, the length of ``display_name`` and
``asset_folder``, an empty ``asset_folder``, and an eager transformation's format in its answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.app.server_process import ServerProcess
from tests.upload.conftest import CLOUD, KEY, SECRET
from tests.upload.test_upload_sdk import ROAD


def test_an_existing_answer_and_explicits_answer_name_the_api_key(sdk: Any) -> None:
    up = sdk.uploader.upload(str(ROAD), public_id="answers/key")
    assert up["api_key"] == KEY
    kept = sdk.uploader.upload(str(ROAD), public_id="answers/key", overwrite=False)
    assert kept["existing"] is True and kept["api_key"] == KEY and kept["version"] == up["version"]
    done = sdk.uploader.explicit("answers/key", type="upload", tags=["x"])
    assert done["api_key"] == KEY and done["tags"] == ["x"]
    assert "api_key" not in dict(sdk.api.resource("answers/key"))  # the Admin API's resource has none


def test_display_name_and_asset_folder_are_held_to_255_characters(sdk: Any) -> None:
    sdk.uploader.upload(str(ROAD), public_id="answers/long")
    fits = sdk.uploader.upload(str(ROAD), public_id="answers/long", display_name="n" * 255,
                               asset_folder="f" * 100 + "/" + "g" * 154)  # fmt: skip
    assert len(fits["display_name"]) == 255 and len(fits["asset_folder"]) == 255
    long_name, long_folder = "n" * 256, "f" * 100 + "/" + "g" * 155
    calls = {
        "upload": lambda **kw: sdk.uploader.upload(str(ROAD), public_id="answers/long-new", **kw),
        "explicit": lambda **kw: sdk.uploader.explicit("answers/long", type="upload", **kw),
        "update": lambda **kw: sdk.api.update("answers/long", **kw),
    }
    for call in calls.values():
        with pytest.raises(sdk.exceptions.BadRequest,
                           match="display_name is too long: 256 characters, at most 255"):  # fmt: skip
            call(display_name=long_name)
        with pytest.raises(sdk.exceptions.BadRequest,
                           match="asset_folder is too long: 256 characters, at most 255"):  # fmt: skip
            call(asset_folder=long_folder)
    with pytest.raises(sdk.exceptions.NotFound):  # refused before anything was stored
        sdk.api.resource("answers/long-new")
    shown = dict(sdk.api.resource("answers/long"))
    assert shown["display_name"] == "n" * 255 and len(shown["asset_folder"]) == 255


def test_an_empty_asset_folder_is_the_root_on_upload_and_update(sdk: Any, server: ServerProcess) -> None:
    """Sent, ``asset_folder=""`` files the asset at the root on upload as on update. (Cloudinary's SDKs drop
    an empty parameter from an upload or explicit, which then takes the public id's folder.)"""
    url = f"{server.url}/v1_1/{CLOUD}/image/upload"
    fields = {"public_id": "answers/empty/a", "asset_folder": ""}
    file = {"file": ("road.jpg", ROAD.read_bytes())}
    sent = httpx.post(url, data=fields, files=file, auth=(KEY, SECRET), timeout=60)
    assert sent.status_code == 200 and sent.json()["asset_folder"] == "", sent.text
    dropped = sdk.uploader.upload(str(ROAD), public_id="answers/empty/b", asset_folder="")
    assert dropped["asset_folder"] == "answers/empty"  # the SDK sent none
    moved = sdk.api.update("answers/empty/b", asset_folder="")
    assert moved["asset_folder"] == ""
    assert dict(sdk.api.resource("answers/empty/b"))["asset_folder"] == ""
    slashed = sdk.uploader.upload(str(ROAD), public_id="c", folder="answers/slashed/", asset_folder="/x/")
    assert (slashed["public_id"], slashed["asset_folder"]) == ("answers/slashed/c", "x")


def test_an_eager_transformation_with_a_format_is_written_with_it(sdk: Any) -> None:
    """Cloudinary writes the format after the transformation (``sp_full_hd/mp4`` in its SDKs' sample eager
    notification); the Admin API's ``derived`` lists the transformation with its ``format`` apart."""
    up = sdk.uploader.upload(str(ROAD), public_id="answers/eager",
                             eager=[{"width": 50, "format": "png"}, {"width": 40}])  # fmt: skip
    assert [(e["transformation"], e["format"]) for e in up["eager"]] == [("w_50/png", "png"), ("w_40", "jpg")]
    assert up["eager"][0]["url"].endswith(f"/w_50/v{up['version']}/answers/eager.png")
    done = sdk.uploader.explicit("answers/eager", type="upload", eager=[{"width": 30, "format": "webp"}])
    assert done["eager"][0]["transformation"] == "w_30/webp" and done["eager"][0]["format"] == "webp"
    derived = dict(sdk.api.resource("answers/eager"))["derived"]
    assert sorted((d["transformation"], d["format"]) for d in derived) == [
        ("w_30", "webp"), ("w_40", "jpg"), ("w_50", "png")]  # fmt: skip
