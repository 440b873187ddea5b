"""dpr_ multiplies every length a component gives in pixels, not only w_ and h_: Cloudinary tunes each
parameter the ratio concerns ("How does using DPR differ from setting multiplied dimension values?": a
blur's strength, a text overlay's font size), so that the image looks the same on the screen. A URL at
dpr_2.0 draws exactly what the URL with every length doubled draws at dpr_1.0, where its lengths are
measured on an image at the ratio; those measured on the original before the chain is sized, a crop's
region before the chain is sized, and fractions of an image already at the ratio stay (transform/ratio.py):
the result at dpr_2.0 is the result at dpr_1.0 with twice the pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
from transform_helpers import run

from grammar import parse_transformation
from grammar.errors import BadRequest
from transform import compile_plan

# (at dpr_2.0, the same with every length doubled)
SAME = [
    ("c_scale,w_100/r_10/dpr_2.0", "c_scale,w_200/r_20"),
    ("c_scale,w_100/r_5:10:0:20/dpr_2.0", "c_scale,w_200/r_10:20:0:40"),
    ("c_scale,w_100/r_max/dpr_2.0", "c_scale,w_200/r_max"),
    ("c_scale,w_100/bo_2px_solid_red/dpr_2.0", "c_scale,w_200/bo_4px_solid_red"),
    ("c_scale,w_100/e_blur:100/dpr_2.0", "c_scale,w_200/e_blur:200"),
    ("c_crop,h_40,w_50,x_10,y_10,dpr_2.0", "c_crop,h_80,w_100,x_20,y_20"),  # its own component's
    ("c_crop,dpr_2.0,h_40,w_50,x_0.1,y_0.2", "c_crop,h_80,w_100,x_0.1,y_0.2"),  # fractions stay
    ("c_scale,w_100/co_red,e_shadow:50,x_5,y_-5/dpr_2.0", "c_scale,w_200/co_red,e_shadow:50,x_10,y_-10"),
    ("c_scale,w_100/co_red,e_outline:3:10/dpr_2.0", "c_scale,w_200/co_red,e_outline:6:20"),
    ("c_scale,w_100/e_margin:5:10p/dpr_2.0", "c_scale,w_200/e_margin:10:10p"),
    ("c_scale,w_100/e_roi:10:5:60:50p/dpr_2.0", "c_scale,w_200/e_roi:20:10:120:50p"),
    (
        "c_scale,w_160/l_text:Arial_10_letter_spacing_2:Hi/fl_layer_apply,g_north_west,x_5,y_5/dpr_2.0",
        "c_scale,w_320/l_text:Arial_20_letter_spacing_4:Hi/fl_layer_apply,g_north_west,x_10,y_10",
    ),
    (
        "c_scale,w_160/l_logo,c_scale,w_20/fl_layer_apply,g_south_east,x_4,y_6/dpr_2.0",
        "c_scale,w_320/l_logo,c_scale,w_40/fl_layer_apply,g_south_east,x_8,y_12",
    ),
    # A text box (c_fit,w_ in a text layer's component) and its font at the component's own dpr_: this was a
    # 400 ("dpr_ needs w_ or h_"), the box taking the w_ away from the resize.
    (
        "c_fit,dpr_2.0,l_text:Arial_10:Hello%20there%20world,w_40/fl_layer_apply",
        "c_fit,l_text:Arial_20:Hello%20there%20world,w_80/fl_layer_apply",
    ),
    ("c_scale,w_100/e_blur:100/dpr_0.5", "c_scale,w_50/e_blur:50"),
    ("c_scale,w_100/bo_1px_solid_red/dpr_0.5", "c_scale,w_50/bo_1px_solid_red"),  # never below 1 px
]


@pytest.mark.parametrize(("at_dpr", "doubled"), SAME)
def test_dpr_multiplies_every_length(files: dict[str, Path], at_dpr: str, doubled: str) -> None:
    scaled = run(at_dpr, files["photo"], files, extension="png")
    plain = run(doubled, files["photo"], files, extension="png")
    assert (scaled.width, scaled.height) == (plain.width, plain.height)
    assert scaled.data == plain.data


def test_levels_angles_and_colours_are_not_lengths(files: dict[str, Path]) -> None:
    for chain in ("e_sharpen:300", "o_40", "a_30", "co_red,e_colorize:40", "e_shadow:50", "e_trim:20"):
        scaled = run(f"c_scale,w_100/{chain}/dpr_2.0", files["photo"], files, extension="png")
        plain = run(f"c_scale,w_200/{chain}", files["photo"], files, extension="png")
        assert scaled.data == plain.data, chain


def test_the_derivative_names_what_is_drawn() -> None:
    """Cached results are keyed by what is drawn: r_10 at dpr_2.0 is r_20 (a result cached before dpr_
    scaled the radius is never served for it), while the URL's own text stays as written."""
    plan = compile_plan(parse_transformation("c_scale,w_100/r_10/dpr_2.0"))
    assert plan.canonical == "c_scale,w_100/r_10/dpr_2.0"
    assert plan.derivative == "c_scale,w_100/r_20/dpr_2.0"
    unchanged = compile_plan(parse_transformation("c_scale,w_100/dpr_2.0"))
    assert unchanged.derivative == unchanged.canonical == "c_scale,w_100/dpr_2.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "c_scale,w_100/e_blur:1500/dpr_2.0",
            "Invalid transformation parameter - e_blur:1500: blur strength 1500 times dpr_2.0 is 3000, "
            "beyond 1 to 2000",
        ),
        (
            "c_scale,w_100/bo_600px_solid_red/dpr_2.0",
            "Invalid transformation parameter - bo_600px_solid_red: border width 600 times dpr_2.0 is "
            "1200, beyond 1 to 1000",
        ),
        (
            "c_scale,w_100/l_text:Arial_600:Hi/fl_layer_apply/dpr_2.0",
            "Invalid transformation parameter - l_text:Arial_600:Hi: text size 600 times dpr_2.0 is 1200, "
            "beyond 1 to 1000",
        ),
        (
            "c_crop,dpr_3.0,h_10,w_10,x_9000,y_0",
            "Invalid transformation parameter - x_9000: offset 9000 times dpr_3.0 is 27000, "
            "beyond -16384 to 16384",
        ),
        (
            "c_scale,w_100/co_red,e_outline:80/dpr_2.0",
            "Invalid transformation parameter - e_outline:80: outline width 80 times dpr_2.0 is 160, "
            "beyond 1 to 100",
        ),
    ],
)
def test_a_length_beyond_its_bounds_at_dpr_is_a_400(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_plan(parse_transformation(text))
    assert caught.value.public == message


@pytest.mark.parametrize(
    "text",
    [
        "dpr_2.0/c_scale,w_100/dpr_3.0",  # two dpr_ components
        "c_scale,dpr_2.0,w_100/dpr_3.0",  # the component's own would leave the chain's unused
        "dpr_3.0/c_scale,dpr_2.0,w_100",
        "c_scale,w_300/l_logo,c_scale,dpr_1.0,w_20/fl_layer_apply/dpr_2.0",  # in a layer too
    ],
)
def test_two_different_ratios_are_a_400(text: str) -> None:
    """One delivered image has one device pixel ratio: a dpr_ of its own component and a different one
    in another component would leave one of them silently unused."""
    with pytest.raises(BadRequest) as caught:
        compile_plan(parse_transformation(text))
    assert caught.value.public == "Invalid transformation: dpr_ is given twice, with different values"


def test_the_same_ratio_written_twice_is_one() -> None:
    assert compile_plan(parse_transformation("c_scale,dpr_2.0,w_100/dpr_2.0")).steps
    assert compile_plan(parse_transformation("c_scale,dpr_2.0,w_100/c_crop,dpr_3.0,w_20")).steps  # no chain's


# (at dpr_2.0, the same at dpr_1.0 with only what the ratio multiplies multiplied): lengths before the chain
# is sized act on the original, the same at every ratio (until 2027-01 they were multiplied too: text, r_,
# bo_, a layer's size and place, a crop's region twice as large relative to the image).
WHERE_AT_THE_RATIO = [
    ("r_60/l_text:Arial_60:Hi,co_white/fl_layer_apply,g_north_west,x_40,y_40/c_scale,w_100/dpr_2.0",
     "r_60/l_text:Arial_60:Hi,co_white/fl_layer_apply,g_north_west,x_40,y_40/c_scale,w_200"),
    ("bo_10px_solid_red/c_scale,w_100/dpr_2.0", "bo_10px_solid_red/c_scale,w_200"),
    ("co_black,e_shadow:60,x_20,y_20/c_scale,w_100/dpr_2.0", "co_black,e_shadow:60,x_20,y_20/c_scale,w_200"),
    # A crop or an mpad before the chain is sized: the same region of the original, in twice the pixels.
    ("c_crop,w_200,h_200,x_100,y_100/c_scale,w_100/dpr_2.0", "c_crop,w_200,h_200,x_100,y_100/c_scale,w_200"),
    ("c_mpad,w_600,h_600,b_red/c_scale,w_120/dpr_2.0", "c_mpad,w_600,h_600,b_red/c_scale,w_240"),
    # The last sizing of the chain gets the ratio, a crop too: dpr_ multiplies the delivered size.
    ("c_crop,w_100,h_100,x_10,y_10/dpr_2.0", "c_crop,w_200,h_200,x_20,y_20"),
    # Image layers placed on the original: their size and place stay; after, lengths at the ratio (r_20).
    ("l_logo/c_scale,w_100/r_10/fl_layer_apply,g_south_east,x_20,y_20/c_scale,w_120/r_10/dpr_2.0",
     "l_logo/c_scale,w_100/r_10/fl_layer_apply,g_south_east,x_20,y_20/c_scale,w_240/r_20"),
    ("l_logo,c_scale,w_30,g_north_east,x_5,y_5,r_4/c_scale,w_150/dpr_2.0",
     "l_logo,c_scale,w_30,g_north_east,x_5,y_5,r_4/c_scale,w_300"),
    ("l_text:Arial_40:Hi,co_white/c_scale,w_100/fl_layer_apply,g_center/c_scale,w_150/dpr_2.0",
     "l_text:Arial_40:Hi,co_white/c_scale,w_100/fl_layer_apply,g_center/c_scale,w_300"),
    # On a chain at the ratio: a layer's own crop is of its original (stays), its scaling and place double;
    # a one-component layer's r_ rounds the logo before its w_ sizes it (stays).
    ("c_scale,w_160/l_road/c_crop,w_200,h_150,x_50,y_40/c_scale,w_60/fl_layer_apply,g_north_east,x_6,y_6/"
     "dpr_2.0",
     "c_scale,w_320/l_road/c_crop,w_200,h_150,x_50,y_40/c_scale,w_120/fl_layer_apply,g_north_east,x_12,y_12"),
    ("c_scale,w_150/l_logo,c_scale,w_30,g_north_east,x_5,y_5,r_4/dpr_2.0",
     "c_scale,w_300/l_logo,c_scale,w_60,g_north_east,x_10,y_10,r_4"),
    # Fractions: of the original, multiplied (the chain's first sizing); of an image at the ratio, not.
    ("c_scale,w_0.25/r_10/dpr_2.0", "c_scale,w_0.5/r_20"),
    ("c_scale,w_120/c_scale,w_0.5/dpr_2.0", "c_scale,w_240/c_scale,w_0.5"),
    ("c_scale,w_100/c_pad,w_150,h_1.0,b_red/dpr_2.0", "c_scale,w_200/c_pad,w_300,h_1.0,b_red"),
    # fl_relative: a fraction of the base, which is at the ratio already: 0.3 of 200 px is 60 (was 115).
    ("c_scale,w_100/l_logo/c_scale,fl_relative,w_0.3/fl_layer_apply,g_north_west/dpr_2.0",
     "c_scale,w_200/l_logo/c_scale,w_60/fl_layer_apply,g_north_west"),
    ("c_scale,w_100/l_logo/fl_layer_apply,fl_relative,g_north_west,w_0.3/dpr_2.0",
     "c_scale,w_200/l_logo/fl_layer_apply,g_north_west,w_60"),
    ("c_scale,w_200/l_logo/c_scale,dpr_2.0,fl_relative,w_0.3/fl_layer_apply,g_north_west",
     "c_scale,w_200/l_logo/c_scale,w_60/fl_layer_apply,g_north_west"),  # its own dpr_ neither
    # Each branch of an if_ block from where the chain stood at the if_; a crop is the last sizing of its way.
    ("if_w_gt_1000/c_scale,w_100/if_else/c_scale,w_0.5/if_end/r_10/dpr_2.0",
     "if_w_gt_1000/c_scale,w_200/if_else/c_scale,w_1.0/if_end/r_20"),
    ("if_w_gt_100/c_crop,w_50,h_50/if_else/c_scale,w_100/if_end/dpr_2.0",
     "if_w_gt_100/c_crop,w_100,h_100/if_else/c_scale,w_200/if_end"),
]  # fmt: skip


@pytest.mark.parametrize(("at_dpr", "plain"), WHERE_AT_THE_RATIO)
def test_dpr_multiplies_what_is_measured_on_an_image_at_the_ratio(
    files: dict[str, Path], at_dpr: str, plain: str
) -> None:
    scaled = run(at_dpr, files["road"], files, extension="png")
    expected = run(plain, files["road"], files, extension="png")
    assert (scaled.width, scaled.height) == (expected.width, expected.height)
    assert scaled.data == expected.data


def _pixels(image: pyvips.Image) -> np.ndarray:
    return np.asarray(image.numpy(), dtype=np.float64)


# Chains with lengths before and after their sizing: text and image layers, r_, bo_, placements, crops.
LOOKS_THE_SAME = [
    "r_60/l_text:Arial_60:Hi,co_white/fl_layer_apply,g_north_west,x_40,y_40/c_scale,w_100",
    "c_scale,w_100/r_20/l_text:Arial_20:Hi,co_white/fl_layer_apply,g_north_west,x_10,y_10",
    "bo_10px_solid_red/c_scale,w_100/bo_2px_solid_blue",
    "c_crop,w_200,h_200,x_100,y_100/c_scale,w_100/r_10",
    "l_logo/c_scale,w_100/r_10/fl_layer_apply,g_south_east,x_20,y_20/c_scale,w_120/r_10",
    "c_scale,w_200/l_logo/c_scale,w_50/r_5/fl_layer_apply,g_south_east,x_10,y_10/bo_3px_solid_blue",
    "c_scale,w_100/l_logo/c_scale,fl_relative,w_0.3/fl_layer_apply,g_north_west",
    "l_text:Arial_40:Hi,co_white/c_scale,w_100/fl_layer_apply,g_center/c_scale,w_150",
    "c_scale,w_160/l_road/c_crop,w_200,h_150,x_50,y_40/c_scale,w_60/fl_layer_apply,g_north_east,x_6,y_6",
    "c_scale,w_120/c_scale,w_0.5",
    # e_anti_removal's warp and grain are lengths on the layer, at the ratio the layer ends at: a text, an
    # image layer sized in its own chain or by fl_layer_apply, the one-component form (0.2 to 0.6; before
    # they were: 1.2 to 7.9, a finer warp and a finer, fainter-when-shrunk grain at dpr_2.0).
    "c_scale,w_200/l_text:Arial_40_bold:Hi,co_white/fl_layer_apply,e_anti_removal:100",
    "c_scale,w_200/l_logo/c_scale,w_80/fl_layer_apply,e_anti_removal:100,g_center",
    "c_scale,w_200/l_road/fl_layer_apply,c_scale,e_anti_removal:100,w_120",
    "c_scale,w_200/c_scale,e_anti_removal:100,l_road,w_120",
]


@pytest.mark.parametrize("chain", LOOKS_THE_SAME)
def test_the_result_at_dpr_2_is_the_result_at_dpr_1_with_twice_the_pixels(
    files: dict[str, Path], chain: str
) -> None:
    """What the ratio is for: shown at half its size, the dpr_2.0 result looks as the dpr_1.0 one. Each 2x2
    block of the dpr_2.0 result averaged is the dpr_1.0 pixel, but for resampling (at most 1.1 on average
    here; a text twice too large, a layer at the wrong size or place, a crop of another region: 3.7 to 22).
    A side may differ by a pixel (rounded halves: 112.5 px)."""
    one, two = (
        pyvips.Image.new_from_buffer(run(text, files["road"], files, extension="png").data, "")
        for text in (chain, f"{chain}/dpr_2.0")
    )
    assert abs(two.width - 2 * one.width) <= 1 and abs(two.height - 2 * one.height) <= 1
    shown = two.shrink(2, 2)
    width, height = min(one.width, shown.width), min(one.height, shown.height)
    difference = np.abs(_pixels(one.crop(0, 0, width, height)) - _pixels(shown.crop(0, 0, width, height)))
    assert difference.mean() < 2.0, difference.mean()


def test_the_derivative_says_where_the_ratio_leaves_a_size() -> None:
    """Cached results are keyed by what is drawn: a size the chain's ratio leaves says dpr_1.0 (a result
    cached when every sized component took the ratio is never served for it), a length it leaves is as
    written, and a size it multiplies goes without saying (the chain's dpr_ component is in the key)."""
    cases = {
        "c_crop,h_200,w_200,x_100,y_100/c_scale,w_100/dpr_2.0":
            "c_crop,dpr_1.0,h_200,w_200,x_100,y_100/c_scale,w_100/dpr_2.0",
        "r_60/l_text:Arial_60:Hi/fl_layer_apply,x_40/c_scale,w_100/dpr_2.0":
            "r_60/l_text:Arial_60:Hi/fl_layer_apply,x_40/c_scale,w_100/dpr_2.0",
        "c_scale,w_100/l_logo/c_scale,fl_relative,w_0.3/fl_layer_apply/dpr_2.0":
            "c_scale,w_100/l_logo/c_scale,dpr_1.0,fl_relative,w_0.3/fl_layer_apply/dpr_2.0",
        "c_scale,w_100/c_scale,w_0.5/r_10/dpr_2.0": "c_scale,w_100/c_scale,dpr_1.0,w_0.5/r_20/dpr_2.0",
        "l_logo/c_scale,w_50/fl_layer_apply,x_5/c_scale,w_100/dpr_2.0":
            "l_logo/c_scale,dpr_1.0,w_50/fl_layer_apply,x_5/c_scale,w_100/dpr_2.0",
    }  # fmt: skip
    for text, derivative in cases.items():
        assert compile_plan(parse_transformation(text)).derivative == derivative, text
