"""``custom_coordinates`` on upload, explicit and the Admin API's update, with Cloudinary's own SDK against a
real `cutout serve`, and ``g_custom`` delivering the region they name (pixels checked); the parsing alone
first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pyvips

from cutout.upload import params
from cutout.upload.errors import UploadError
from tests.app.server_process import ServerProcess
from tests.upload.conftest import CLOUD

WIDTH, HEIGHT = 600, 400
RED = [20, 40, 120, 80]  # x, y, w, h
GREEN = [450, 250, 100, 100]


@pytest.mark.parametrize(
    ("given", "regions"),
    [
        ("20,40,120,80", [(20, 40, 120, 80)]),
        (" 1, 2, 3, 4 | 5,6,7,8", [(1, 2, 3, 4), (5, 6, 7, 8)]),
        ("", []),
    ],
)
def test_custom_coordinates_are_parsed(given: str, regions: list[tuple[int, ...]]) -> None:
    assert params.custom_coordinates({"custom_coordinates": given}) == regions
    assert params.custom_coordinates({}) is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("1,2,3", "'1,2,3' is not a region: four non-negative integers"),
        ("1,2,3,4,5", "is not a region"),
        ("-1,2,3,4", "is not a region"),
        ("1.5,2,3,4", "is not a region"),
        ("a,b,c,d", "is not a region"),
        ("1,2,3,4|", "'' is not a region"),
        ("1,2,0,4", "is an empty region"),
        ("|".join(["1,1,1,1"] * 101), "at most 100 regions"),
    ],
)
def test_bad_custom_coordinates_are_a_400_naming_them(given: str, message: str) -> None:
    with pytest.raises(UploadError, match=message) as caught:
        params.custom_coordinates({"custom_coordinates": given})
    assert caught.value.status == 400 and "custom_coordinates" in str(caught.value)


def test_regions_must_be_inside_the_image() -> None:
    kept = params.inside([(0, 0, 600, 400), (599, 399, 1, 1)], 600, 400)
    assert kept == [[0, 0, 600, 400], [599, 399, 1, 1]]
    for region in [(1, 0, 600, 400), (0, 351, 10, 50)]:
        with pytest.raises(UploadError, match=r"custom_coordinates: the region .* is not inside the image"):
            params.inside([region], 600, 400)


def _original(path: Path) -> Path:
    """Grey, a red block and a green block: where each crop landed shows in its pixels."""
    grey = (pyvips.Image.black(WIDTH, HEIGHT, bands=3) + 128).cast("uchar")
    red = (pyvips.Image.black(RED[2], RED[3], bands=3) + [255, 0, 0]).cast("uchar")
    green = (pyvips.Image.black(GREEN[2], GREEN[3], bands=3) + [0, 255, 0]).cast("uchar")
    grey.insert(red, RED[0], RED[1]).insert(green, GREEN[0], GREEN[1]).write_to_file(str(path))
    return path


def _delivered(server: ServerProcess, transformation: str, public_id: str, save: Path | None = None) -> Any:
    served = httpx.get(f"{server.url}/{CLOUD}/image/upload/{transformation}/{public_id}.png", timeout=60)
    assert served.status_code == 200, served.text
    if save is not None:
        save.write_bytes(served.content)
    return np.asarray(pyvips.Image.new_from_buffer(served.content, "").numpy())


def _is(pixel: Any, colour: tuple[int, int, int]) -> bool:
    return bool(np.abs(pixel[:3].astype(int) - np.array(colour)).max() <= 8)


def test_custom_coordinates_with_the_sdk_end_to_end(sdk: Any, server: ServerProcess, tmp_path: Path) -> None:
    source = _original(tmp_path / "blocks.png")
    up = sdk.uploader.upload(str(source), public_id="coords/blocks", custom_coordinates=[RED, GREEN])
    # Cloudinary's custom_focus_areas page: "The response includes the set coordinates".
    assert up["width"] == WIDTH and up["coordinates"] == {"custom": [RED, GREEN]}
    shown = dict(sdk.api.resource("coords/blocks", coordinates=True))
    assert shown["coordinates"] == {"custom": [RED, GREEN]}
    assert "coordinates" not in dict(sdk.api.resource("coords/blocks"))

    # c_crop alone: exactly the first region; c_fill keeps it where the centre would cut it.
    crop = _delivered(server, "c_crop,g_custom", "coords/blocks", tmp_path / "crop.png")
    assert crop.shape[:2] == (RED[3], RED[2])
    assert _is(crop[5, 5], (255, 0, 0)) and _is(crop[-5, -5], (255, 0, 0))
    fill = _delivered(server, "c_fill,g_custom,h_200,w_200", "coords/blocks", tmp_path / "fill.png")
    centre = _delivered(server, "c_fill,g_center,h_200,w_200", "coords/blocks")
    assert fill.shape[:2] == (200, 200)
    assert _is(fill[40, 40], (255, 0, 0)) and not _is(centre[40, 40], (255, 0, 0))

    # An update moves the region: the same URLs show the new one at once (never the cached crop).
    updated = dict(sdk.api.update("coords/blocks", custom_coordinates=GREEN))
    assert updated["version"] == up["version"]
    assert dict(sdk.api.resource("coords/blocks", coordinates=True))["coordinates"] == {"custom": [GREEN]}
    crop = _delivered(server, "c_crop,g_custom", "coords/blocks", tmp_path / "crop_updated.png")
    assert crop.shape[:2] == (GREEN[3], GREEN[2]) and _is(crop[50, 50], (0, 255, 0))
    fill = _delivered(server, "c_fill,g_custom,h_200,w_200", "coords/blocks", tmp_path / "fill_updated.png")
    assert _is(fill[150, 150], (0, 255, 0)) and not _is(fill[40, 40], (255, 0, 0))

    # explicit sets them too; an empty value clears them: g_custom is then the centre, as Cloudinary's.
    sdk.uploader.explicit("coords/blocks", type="upload", custom_coordinates="20,40,120,80")
    assert _delivered(server, "c_crop,g_custom", "coords/blocks").shape[:2] == (RED[3], RED[2])
    sdk.api.update("coords/blocks", custom_coordinates="")
    assert dict(sdk.api.resource("coords/blocks", coordinates=True))["coordinates"] == {}
    assert _delivered(server, "c_crop,g_custom", "coords/blocks").shape[:2] == (HEIGHT, WIDTH)
    assert np.array_equal(_delivered(server, "c_fill,g_custom,h_200,w_200", "coords/blocks"), centre)


def test_bad_coordinates_are_refused_and_nothing_changes(sdk: Any, tmp_path: Path) -> None:
    source = _original(tmp_path / "blocks.png")
    with pytest.raises(sdk.exceptions.BadRequest, match="the region 500,0,200,10 is not inside the image"):
        sdk.uploader.upload(str(source), public_id="coords/outside", custom_coordinates="500,0,200,10")
    with pytest.raises(sdk.exceptions.NotFound):
        sdk.api.resource("coords/outside")
    sdk.uploader.upload(str(source), public_id="coords/kept", custom_coordinates=RED)
    with pytest.raises(sdk.exceptions.BadRequest, match="custom_coordinates: '1,2,3' is not a region"):
        sdk.api.update("coords/kept", custom_coordinates="1,2,3")
    with pytest.raises(sdk.exceptions.BadRequest, match="is not inside the image"):
        sdk.uploader.explicit("coords/kept", type="upload", custom_coordinates=[0, 0, 601, 1])
    assert dict(sdk.api.resource("coords/kept", coordinates=True))["coordinates"] == {"custom": [RED]}
    with pytest.raises(sdk.exceptions.BadRequest, match="Parameter face_coordinates is not supported"):
        sdk.uploader.upload(str(source), public_id="coords/faces", face_coordinates=[RED])


def test_a_new_upload_and_a_restore_keep_only_coordinates_of_their_image(sdk: Any, tmp_path: Path) -> None:
    big = _original(tmp_path / "blocks.png")
    small = tmp_path / "small.png"
    pyvips.Image.new_from_file(str(big)).resize(0.5).write_to_file(str(small))
    first = sdk.uploader.upload(str(small), public_id="coords/restored", backup=True)
    sdk.uploader.upload(str(big), public_id="coords/restored", backup=True, custom_coordinates=GREEN)
    assert dict(sdk.api.resource("coords/restored", coordinates=True))["coordinates"] == {"custom": [GREEN]}
    # The 300x200 version back: GREEN is outside it, so it no longer describes the asset.
    sdk.api.restore(["coords/restored"], versions=[first["version_id"]])
    restored = dict(sdk.api.resource("coords/restored", coordinates=True))
    assert restored["width"] == WIDTH // 2 and restored["coordinates"] == {}
    # An upload over the id is a new image: coordinates only if it brings its own.
    sdk.api.update("coords/restored", custom_coordinates=[1, 1, 10, 10])
    sdk.uploader.upload(str(big), public_id="coords/restored")
    assert dict(sdk.api.resource("coords/restored", coordinates=True))["coordinates"] == {}


def test_an_eager_g_custom_crop_uses_the_coordinates_of_its_upload(sdk: Any, tmp_path: Path) -> None:
    source = _original(tmp_path / "blocks.png")
    up = sdk.uploader.upload(str(source), public_id="coords/eager", custom_coordinates=GREEN,
                             eager=[{"crop": "crop", "gravity": "custom"}])  # fmt: skip
    [made] = up["eager"]
    assert made["transformation"] == "c_crop,g_custom" and (made["width"], made["height"]) == (100, 100)
