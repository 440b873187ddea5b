"""b_auto gradient modes (``b_auto:<mode>_gradient[_contrast][:2|4][:<direction>][:palette_...]``): URLs as
the SDK writes them and as the reference does, read back unchanged, and pads that really fade (a solid
pad, what b_auto without gradients gives, fails here)."""

from __future__ import annotations

from pathlib import Path

import cloudinary
import numpy as np
import pytest
import pyvips
from transform_helpers import run

from grammar import parse_path, parse_transformation
from grammar.errors import InvalidArgument
from transform import compile_plan
from transform.ops.args import color
from transform.ops.autopad import AutoBackground, Gradient, parse_auto


def sdk(background: str) -> str:
    url = cloudinary.CloudinaryImage("photo").build_url(
        cloud_name="demo", background=background, crop="pad", width=150, height=150
    )
    from urllib.parse import urlsplit

    return parse_path(urlsplit(url).path).raw_transformation


@pytest.mark.parametrize(
    "value",
    [
        "auto:predominant_gradient:2:diagonal_desc",  # the reference's example
        "auto:predominant_gradient:4:palette_red_green_blue_orange",  # the reference's example
        "auto:predominant_gradient_contrast:4:diagonal_desc:palette_red_blue",  # js-url-gen's test
        "auto:border_gradient",
        "auto:border_gradient_contrast:2:vertical",
        "auto:border_contrast:palette_red_green_blue",  # PHP SDK's test: a palette with a single colour
    ],
)
def test_the_sdk_forms_are_read_and_written_back(value: str) -> None:
    written = sdk(value)
    assert written == f"b_{value},c_pad,h_150,w_150"
    assert compile_plan(parse_transformation(written)).canonical == written
    assert str(parse_auto("b", value)) == value


@pytest.mark.parametrize(
    "value",
    ["auto:border:2", "auto:predominant_gradient:3", "auto:predominant_gradient:sideways",
     "auto:predominant_gradient:palette_notacolour", "auto:rainbow"],
)  # fmt: skip
def test_bad_forms_are_400s(value: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_auto("b", value)


def pad_of(data: bytes, rows: slice) -> np.ndarray:
    return np.asarray(pyvips.Image.new_from_buffer(data, "").numpy(), dtype=np.int16)[rows]


def test_two_colours_fade_along_the_direction(files: dict[str, Path]) -> None:
    # photo is 320x240: padded to 150x150 it is 150x113, with bands of 18 px above and below.
    for direction, first, last in [("horizontal", (9, 2), (9, 147)), ("diagonal_desc", (1, 1), (148, 148)),
                                   ("vertical", (1, 75), (148, 75))]:  # fmt: skip
        out = run(f"b_auto:predominant_gradient:2:{direction},c_pad,h_150,w_150", files["photo"], files,
                  extension="png")  # fmt: skip
        image = pad_of(out.data, slice(None))
        assert np.abs(image[first] - image[last]).max() > 30, direction  # not one solid colour


def test_four_colours_fill_the_corners() -> None:
    red, green, blue, white = (color("b", c, "colour") for c in ("red", "green", "blue", "white"))
    canvas = np.asarray(Gradient((red, green, blue, white)).canvas(40, 30).numpy())
    assert canvas[0, 0].tolist() == [255, 0, 0] and canvas[0, -1].tolist() == [0, 128, 0]
    assert canvas[-1, 0].tolist() == [0, 0, 255] and canvas[-1, -1].tolist() == [255, 255, 255]


def test_a_palette_limits_the_colours(files: dict[str, Path]) -> None:
    out = run("b_auto:predominant_gradient:2:palette_orange_purple,c_pad,h_300,w_300", files["photo"], files,
              extension="png")  # fmt: skip
    band = pad_of(out.data, slice(0, 20))
    allowed = np.array([[255, 165, 0], [128, 0, 128]])
    corners = [band[0, 0], band[0, -1]]
    for pixel in corners:
        assert np.abs(allowed - pixel).sum(axis=1).min() < 6, pixel


def test_gradient_modes_are_gradients() -> None:
    assert AutoBackground("border_gradient").gradient and not AutoBackground("border").gradient
