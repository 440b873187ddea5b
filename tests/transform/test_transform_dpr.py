"""dpr_ multiplies every length a component gives in pixels, not only w_ and h_: Cloudinary tunes each
parameter the ratio concerns ("How does using DPR differ from setting multiplied dimension values?": a
blur's strength, a text overlay's font size), so that the image looks the same on the screen. A URL at
dpr_2.0 draws exactly what the URL with every length doubled draws at dpr_1.0."""

from __future__ import annotations

from pathlib import Path

import pytest
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
