"""g_custom: crops on the asset's custom coordinates (``AssetFacts.custom``, fractions of the original, as
the server reads them from the asset's record), and Cloudinary's fallbacks for an asset without any."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from grammar import parse_transformation
from grammar.errors import BadRequest
from transform import compile_plan, negotiate_format, render
from transform.expressions import AssetFacts

WIDTH, HEIGHT = 600, 400
RED = (20, 40, 120, 80)  # x, y, w, h in the original
GREEN = (450, 250, 100, 100)


def _original() -> bytes:
    """Grey, a red block and a green block: where each crop landed shows in its pixels."""
    grey = pyvips.Image.black(WIDTH, HEIGHT, bands=3) + 128
    red = (pyvips.Image.black(RED[2], RED[3], bands=3) + [255, 0, 0]).cast("uchar")
    green = (pyvips.Image.black(GREEN[2], GREEN[3], bands=3) + [0, 255, 0]).cast("uchar")
    image = grey.cast("uchar").insert(red, RED[0], RED[1]).insert(green, GREEN[0], GREEN[1])
    return bytes(image.write_to_buffer(".png"))


ORIGINAL = _original()


def _fractions(*regions: tuple[int, int, int, int]) -> AssetFacts:
    return AssetFacts(custom=tuple((x / WIDTH, y / HEIGHT, w / WIDTH, h / HEIGHT) for x, y, w, h in regions))


def _render(transformation: str, asset: AssetFacts | None) -> np.ndarray:
    plan = compile_plan(parse_transformation(transformation))
    choice = negotiate_format(plan, extension="png", accept=None)
    rendered = render(plan, ORIGINAL, source_key="custom-test", choice=choice, asset=asset)
    return np.asarray(pyvips.Image.new_from_buffer(rendered.data, "").numpy())


def _is(pixel: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool(np.abs(pixel[:3].astype(int) - np.array(colour)).max() <= 8)


def test_the_plan_reads_the_asset_record() -> None:
    for transformation in ("c_crop,g_custom", "c_fill,g_custom,h_10,w_10", "c_thumb,g_custom:face,h_9,w_9",
                           "if_w_gt_10/c_fill,g_custom,h_10,w_10/if_end"):  # fmt: skip
        assert compile_plan(parse_transformation(transformation)).needs_asset, transformation
    assert not compile_plan(parse_transformation("c_fill,g_center,h_10,w_10")).needs_asset
    assert compile_plan(parse_transformation("c_crop,g_custom:face")).needs_faces


def test_crop_without_a_size_is_exactly_the_first_region() -> None:
    out = _render("c_crop,g_custom", _fractions(RED, GREEN))
    assert out.shape[:2] == (RED[3], RED[2])
    assert all(_is(p, (255, 0, 0)) for p in out.reshape(-1, out.shape[2])[:: 97])
    out = _render("c_crop,g_custom", _fractions(GREEN))
    assert out.shape[:2] == (GREEN[3], GREEN[2]) and _is(out[50, 50], (0, 255, 0))


def test_crop_with_a_size_is_centred_on_the_region() -> None:
    out = _render("c_crop,g_custom,h_200,w_200", _fractions(GREEN))
    # The green box's centre (500, 300) is the window's, moved inside the image: x 400..600, y 200..400.
    assert out.shape[:2] == (200, 200)
    assert _is(out[100, 100], (0, 255, 0)) and _is(out[45, 45], (128, 128, 128))


def test_fill_keeps_the_region_where_the_centre_would_cut_it() -> None:
    custom = _render("c_fill,g_custom,h_200,w_200", _fractions(RED))
    centre = _render("c_fill,g_center,h_200,w_200", None)
    # Scaled by 1/2: the red box is at x 10..70, y 20..60 of the 300x200 image; the window starts at 0.
    assert custom.shape[:2] == centre.shape[:2] == (200, 200)
    assert _is(custom[40, 40], (255, 0, 0)) and not _is(centre[40, 40], (255, 0, 0))


def test_thumb_is_the_region_scaled() -> None:
    out = _render("c_thumb,g_custom,h_100,w_100", _fractions(GREEN))
    assert out.shape[:2] == (100, 100) and _is(out[50, 50], (0, 255, 0)) and _is(out[5, 5], (0, 255, 0))


def test_ar_and_zoom_crop_around_the_region() -> None:
    out = _render("ar_1.0,c_crop,g_custom,z_0.5", _fractions(GREEN))
    assert out.shape[:2] == (200, 200) and _is(out[100, 100], (0, 255, 0)) and _is(out[10, 10], (128,) * 3)


def test_a_resize_before_the_crop_keeps_the_region() -> None:
    out = _render("c_scale,w_300/c_crop,g_custom", _fractions(GREEN))
    assert out.shape[:2] == (50, 50) and _is(out[25, 25], (0, 255, 0))


def test_without_custom_coordinates_g_custom_is_the_centre() -> None:
    assert _render("c_crop,g_custom", None).shape[:2] == (HEIGHT, WIDTH)  # no region: the whole image
    for size in ("c_fill,h_200,w_200", "c_crop,h_100,w_100", "c_thumb,h_50,w_80"):
        assert np.array_equal(_render(f"{size},g_custom", AssetFacts()), _render(f"{size},g_center", None))


@pytest.mark.parametrize(
    ("transformation", "message"),
    [
        ("c_scale,g_custom,w_100", "custom gravity needs c_fill"),
        ("c_fill,g_custom:dog,w_100", "g_custom takes face or faces"),
        ("c_fill,g_custom_no_override,w_100", "gravity custom_no_override is not supported"),
        ("c_fill,g_custom,h_10", None),
        ("l_logo/c_crop,g_custom/fl_layer_apply", "g_custom cannot crop inside a layer"),
        ("l_logo/fl_layer_apply,g_custom", "g_custom cannot place a layer"),
        ("c_fill,g_custom,z_2", "c_fill needs w_, h_ or ar_"),
    ],
)
def test_refusals(transformation: str, message: str | None) -> None:
    if message is None:
        compile_plan(parse_transformation(transformation))
        return
    with pytest.raises(BadRequest, match=message):
        compile_plan(parse_transformation(transformation))


def test_the_key_token_changes_with_the_coordinates() -> None:
    facts = (AssetFacts(), _fractions(RED), _fractions(GREEN), _fractions(RED, GREEN))
    tokens = {one.token for one in facts}
    assert len(tokens) == 4
    assert AssetFacts(("t",)).token == repr((["t"], []))  # unchanged for an asset without coordinates
