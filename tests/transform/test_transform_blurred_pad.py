"""``b_blurred[:<intensity>][:<brightness>]`` as the pad of c_pad, c_lpad, c_mpad and c_fill_pad: the
padded area shows the image itself, scaled to fill the frame, blurred and brightened."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
from transform_helpers import run

from grammar.errors import BadRequest
from grammar.parse import parse_transformation
from transform.plan import compile_plan


def _solid(width: int, height: int, colour: list[int]) -> pyvips.Image:
    return (pyvips.Image.black(width, height) + colour).cast("uchar").copy(interpretation="srgb")


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``halves``: 40x20, red on the left, blue on the right; ``grey``: 40x20 of 100; ``hole``: 40x20
    opaque grey with a transparent middle."""
    folder = tmp_path_factory.mktemp("blurred")
    halves = _solid(20, 20, [255, 0, 0]).join(_solid(20, 20, [0, 0, 255]), "horizontal")
    hole = _solid(40, 20, [100, 100, 100, 255]).insert(_solid(10, 10, [0, 0, 0, 0]), 15, 5)
    paths = {"halves": folder / "halves.png", "grey": folder / "grey.png", "hole": folder / "hole.png"}
    halves.pngsave(str(paths["halves"]))
    _solid(40, 20, [100, 100, 100]).pngsave(str(paths["grey"]))
    hole.pngsave(str(paths["hole"]))
    return paths


def pixels_of(transformation: str, source: Path, sources: dict[str, Path]) -> np.ndarray:
    rendered = run(f"{transformation}/f_png", source, sources)
    image = pyvips.Image.new_from_buffer(rendered.data, "")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                      shape=(image.height, image.width, image.bands)).astype(int)  # fmt: skip


def test_the_pad_is_the_image_blurred_across_the_frame(sources: dict[str, Path]) -> None:
    out = pixels_of("b_blurred,c_pad,h_60,w_40", sources["halves"], sources)
    assert out.shape == (60, 40, 3)
    assert tuple(out[30, 2]) == (255, 0, 0) and tuple(out[30, 37]) == (0, 0, 255)  # the image, as it was
    # The pad above it: the image scaled to cover 40x60 (its middle third across), blurred: red fading
    # into blue from left to right, not one colour.
    top = out[2]
    assert top[0, 0] > top[0, 2] and top[-1, 2] > top[-1, 0]
    assert top[0, 0] > top[20, 0] > top[-1, 0]  # a blur: the middle is a mix
    assert 0 < top[20, 0] < 255 and 0 < top[20, 2] < 255


def test_intensity_blurs_more(sources: dict[str, Path]) -> None:
    def spread(intensity: int) -> int:
        top = pixels_of(f"b_blurred:{intensity},c_pad,h_60,w_40", sources["halves"], sources)[2]
        # Red a few pixels left of where the halves meet (the frame's middle) less red as far right.
        return int(top[17, 0] - top[22, 0])

    assert spread(1) > spread(100) > spread(2000) >= 0
    assert spread(1) > 250  # hardly blurred: the halves stay apart
    assert spread(2000) < 20  # hardly more than their mean


@pytest.mark.parametrize(
    ("brightness", "expected"), [(0, 100), (100, 200), (-100, 50), (-300, 12), (50, 141)]
)
def test_brightness_is_in_hundredths_of_a_stop(
    brightness: int, expected: int, sources: dict[str, Path]
) -> None:
    out = pixels_of(f"b_blurred:100:{brightness},c_pad,h_60,w_40", sources["grey"], sources)
    assert abs(out[2, 20, 0] - expected) <= 1 and abs(out[57, 5, 1] - expected) <= 1
    assert tuple(out[30, 20]) == (100, 100, 100)  # the image itself is left alone


@pytest.mark.parametrize("crop", ["c_lpad", "c_mpad", "c_pad"])
def test_every_pad_takes_it(crop: str, sources: dict[str, Path]) -> None:
    out = pixels_of(f"b_blurred:100:100,{crop},h_60,w_80", sources["grey"], sources)
    assert out.shape == (60, 80, 3)
    assert abs(out[2, 2, 0] - 200) <= 1


def test_fill_pad_takes_it(sources: dict[str, Path]) -> None:
    out = pixels_of("b_blurred:100:-100,c_fill_pad,g_auto,h_80,w_40", sources["grey"], sources)
    assert out.shape == (80, 40, 3)
    assert abs(out[2, 20, 0] - 50) <= 1 and abs(out[40, 20, 0] - 100) <= 1


def test_transparent_areas_show_the_blurred_image(sources: dict[str, Path]) -> None:
    """As a pad colour does, the blurred image also fills the image's transparent areas; its own
    transparent areas count as white there (as a JPEG shows them)."""
    out = pixels_of("b_blurred,c_pad,h_60,w_40", sources["hole"], sources)
    assert out.shape == (60, 40, 3)  # opaque
    # The hole, 3x larger in the frame-covering blurred copy (5..35 x 15..45), shows that copy's white.
    assert tuple(out[30, 20]) == (255, 255, 255)
    assert tuple(out[22, 2]) == (100, 100, 100)  # the image's own grey
    assert 100 < out[16, 20, 0] < 255  # the pad above it: grey blurred into the white


def test_the_canonical_form_and_the_key() -> None:
    def plan(text: str) -> str:
        return compile_plan(parse_transformation(text)).derivative

    assert plan("b_blurred:100,c_pad,h_60,w_40") == plan("b_blurred,c_pad,h_60,w_40")
    assert plan("b_blurred:100:0,c_pad,h_60,w_40") == "b_blurred,c_pad,h_60,w_40"
    keys = {plan(f"{b}c_pad,h_60,w_40") for b in ("", "b_white,", "b_blurred,", "b_blurred:200,",
                                                  "b_blurred:200:-20,", "b_auto,")}  # fmt: skip
    assert len(keys) == 6


@pytest.mark.parametrize(
    ("transformation", "named"),
    [
        ("b_blurred:0,c_pad,h_60,w_40", "b_blurred:0"),
        ("b_blurred:2001,c_pad,h_60,w_40", "b_blurred:2001"),
        ("b_blurred:100:101,c_pad,h_60,w_40", "b_blurred:100:101"),
        ("b_blurred:100:-301,c_pad,h_60,w_40", "b_blurred:100:-301"),
        ("b_blurred:soft,c_pad,h_60,w_40", "b_blurred:soft"),
        ("b_blurred:1:2:3,c_pad,h_60,w_40", "b_blurred:1:2:3"),
        ("b_blurred", "b_blurred"),  # no pad to fill
        ("b_blurred,c_scale,w_100", "b_blurred"),
        ("b_blurred:400/c_pad,h_60,w_40", "b_blurred:400"),
        ("b_blurred,l_text:Arial_20:Hi/fl_layer_apply", "b_blurred"),  # a text layer's background
    ],
)
def test_b_blurred_out_of_range_or_without_a_pad_is_a_400(transformation: str, named: str) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_plan(parse_transformation(transformation))
    assert caught.value.status == 400
    assert named in caught.value.public, caught.value.public
