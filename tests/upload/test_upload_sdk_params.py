"""Upload API parameters checked against Cloudinary's documentation, with its own Python SDK against a real
`cutout serve`: a fractional ``timestamp``, explicit's documented ``overwrite``/``display_name``/
``asset_folder``, the ``coordinates`` an upload and explicit answer with, and background removal of an
animation refused by name."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.transform.transform_helpers import animation
from tests.upload.conftest import Receiver
from tests.upload.test_upload_sdk import ROAD, notified


def test_a_fractional_timestamp_signed_by_the_sdk_is_accepted(sdk: Any) -> None:
    # The SDK signs whatever timestamp it is given, as the string it sends (call_api -> sign_request).
    now = f"{time.time():.3f}"
    up = sdk.uploader.call_api("upload", {"timestamp": now, "public_id": "stamp/fraction"}, file=str(ROAD))
    assert up["public_id"] == "stamp/fraction" and up["width"] > 0
    with pytest.raises(sdk.exceptions.BadRequest, match="Invalid parameter - timestamp: 'soon'"):
        sdk.uploader.call_api("upload", {"timestamp": "soon", "public_id": "stamp/bad"}, file=str(ROAD))
    stale = f"{time.time() - 3700:.3f}"
    with pytest.raises(sdk.exceptions.AuthorizationRequired, match="Stale request"):
        sdk.uploader.call_api("upload", {"timestamp": stale, "public_id": "stamp/stale"}, file=str(ROAD))


def test_explicit_takes_its_documented_overwrite_display_name_and_asset_folder(sdk: Any) -> None:
    sdk.uploader.upload(str(ROAD), public_id="expl/road")
    done = sdk.uploader.explicit("expl/road", type="upload", overwrite=True, invalidate=True,
                                 display_name="Road at dusk", asset_folder="shop/roads",
                                 eager=[{"width": 40, "crop": "scale"}])  # fmt: skip
    assert done["display_name"] == "Road at dusk" and done["asset_folder"] == "shop/roads"
    assert done["eager"][0]["width"] == 40
    again = sdk.uploader.explicit("expl/road", type="upload", overwrite=False,
                                  eager=[{"width": 40, "crop": "scale"}])  # fmt: skip
    assert again["eager"][0]["bytes"] == done["eager"][0]["bytes"]
    shown = dict(sdk.api.resource("expl/road"))
    assert shown["display_name"] == "Road at dusk" and shown["asset_folder"] == "shop/roads"
    with pytest.raises(sdk.exceptions.BadRequest, match="overwrite must be true or false"):
        sdk.uploader.call_api("explicit", {"timestamp": str(int(time.time())), "public_id": "expl/road",
                                           "type": "upload", "overwrite": "maybe"})  # fmt: skip
    # Documented, not implemented here: named in the 400, nothing silently ignored.
    with pytest.raises(sdk.exceptions.BadRequest, match="Parameter face_coordinates is not supported"):
        sdk.uploader.explicit("expl/road", type="upload", face_coordinates=[[1, 1, 10, 10]])
    with pytest.raises(sdk.exceptions.BadRequest, match="Parameter async is not supported"):
        sdk.uploader.explicit("expl/road", type="upload", **{"async": True})


def test_upload_and_explicit_answer_with_the_coordinates_they_set(sdk: Any, receiver: Receiver) -> None:
    up = sdk.uploader.upload(str(ROAD), public_id="coords/echo", custom_coordinates=[[10, 20, 30, 40]],
                             notification_url=receiver.url)  # fmt: skip
    assert up["coordinates"] == {"custom": [[10, 20, 30, 40]]}
    assert notified(receiver, "coords/echo", "upload")["coordinates"] == up["coordinates"]
    plain = sdk.uploader.upload(str(ROAD), public_id="coords/plain")
    assert "coordinates" not in plain
    moved = sdk.uploader.explicit("coords/echo", type="upload",
                                  custom_coordinates=[[1, 2, 3, 4], [5, 6, 7, 8]])  # fmt: skip
    assert moved["coordinates"] == {"custom": [[1, 2, 3, 4], [5, 6, 7, 8]]}
    assert "coordinates" not in sdk.uploader.explicit("coords/echo", type="upload", tags=["t"])


def test_background_removal_of_an_animation_is_refused_by_name(sdk: Any, tmp_path: Path) -> None:
    gif = tmp_path / "spin.gif"
    gif.write_bytes(animation("gif"))
    refused = r"background_removal is not supported on an animated image \(4 frames\)"
    with pytest.raises(sdk.exceptions.BadRequest, match=refused):
        sdk.uploader.upload(str(gif), public_id="anim/spin", background_removal="cloudinary_ai")
    with pytest.raises(sdk.exceptions.NotFound):  # nothing was stored
        sdk.api.resource("anim/spin")
    kept = sdk.uploader.upload(str(gif), public_id="anim/spin")
    assert kept["pages"] == 4
    for call in (lambda: sdk.api.update("anim/spin", background_removal="cloudinary_ai"),
                 lambda: sdk.uploader.explicit("anim/spin", type="upload",
                                               background_removal="cloudinary_ai:fine_edges")):  # fmt: skip
        with pytest.raises(sdk.exceptions.BadRequest, match="not supported on an animated image"):
            call()
    shown = dict(sdk.api.resource("anim/spin"))
    assert shown["pages"] == 4 and shown["format"] == "gif" and "info" not in shown
