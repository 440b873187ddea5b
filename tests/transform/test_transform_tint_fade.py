"""e_tint, e_red / e_green / e_blue and e_gradient_fade: canonical forms, 400s naming what is allowed, and
what each does to synthetic images, measured: a channel's mean, the tint layer's colour at the dark and
light ends, the gradient's stops, and the fade's alpha along the direction it is given."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips
from transform_helpers import run

from grammar import parse_transformation
from grammar.errors import BadRequest
from transform import compile_plan
from transform.ops.args import Color
from transform.ops.tint import Stop, positions


def _png(array: np.ndarray) -> bytes:
    height, width, bands = array.shape
    data = np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    image = pyvips.Image.new_from_memory(data, width, height, bands, "uchar")
    return bytes(image.copy(interpretation="srgb").pngsave_buffer())


def _out(transformation: str, source: np.ndarray, extension: str = "png") -> np.ndarray:
    rendered = run(transformation, _png(source), {}, extension=extension)
    return np.asarray(pyvips.Image.new_from_buffer(rendered.data, "").numpy(), dtype=np.float64)


def _ramp(low: float = 0, high: float = 255, alpha: float | None = None) -> np.ndarray:
    """A 64x32 horizontal ramp of greys (dark on the left), opaque or with a constant alpha."""
    grey = np.tile(np.linspace(low, high, 64)[None, :, None], (32, 1, 3))
    if alpha is not None:
        grey = np.concatenate([grey, np.full((32, 64, 1), alpha)], axis=2)
    return grey.round()


def _photo() -> np.ndarray:
    """A 40x30 image of mixed colours (each band its own pattern)."""
    y, x = np.mgrid[0:30, 0:40]
    return np.stack([(x * 6) % 256, (y * 8) % 256, ((x + y) * 4) % 256], axis=2).astype(np.float64)


def canonical(text: str) -> str:
    return compile_plan(parse_transformation(text)).canonical


CANONICAL = [
    ("e_tint:60", "e_tint"),
    ("e_tint:60:red", "e_tint"),
    ("e_tint:red", "e_tint"),
    ("e_tint:80", "e_tint:80"),
    ("e_tint:equalize:80:red:50p:blue:60p:yellow:40p", "e_tint:equalize:80:red:50p:blue:60p:yellow:40p"),
    ("e_tint:blue:green", "e_tint:60:blue:green"),
    ("e_tint:80:blue:green:rgb:47DA8B", "e_tint:80:blue:green:rgb:47da8b"),
    ("e_tint:50:rgb:6F71EA:40p:yellow:35p", "e_tint:50:rgb:6f71ea:40p:yellow:35p"),
    ("e_red:0", "e_red"),
    ("e_red:50", "e_red:50"),
    ("e_green:-20", "e_green:-20"),
    ("e_blue:100", "e_blue:100"),
    ("e_gradient_fade:20", "e_gradient_fade"),
    ("e_gradient_fade:symmetric:25,x_0.15,y_0.15", "e_gradient_fade:symmetric:25,x_0.15,y_0.15"),
    ("b_rgb:000000,e_gradient_fade,y_-0.50", "b_rgb:000000,e_gradient_fade,y_-0.5"),
    # symmetric_pad in a padding component: the resize runs it before its pad, and writes it.
    (
        "ar_16:9,b_auto,e_gradient_fade:symmetric_pad,x_0.2,c_pad,g_east",
        "ar_16:9,b_auto,c_pad,e_gradient_fade:symmetric_pad,g_east,x_0.2",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CANONICAL)
def test_canonical_forms(text: str, expected: str) -> None:
    assert canonical(text) == expected


ERRORS = [
    ("e_tint:101", "tint amount must be an integer from 0 to 100"),
    ("e_tint:60:nocolour", "nocolour is not a colour"),
    ("e_tint:60:red:50", "a tint position is written 50p, after its colour"),
    ("e_tint:50p", "tint position 50p must follow a colour"),
    ("e_tint:red:101p", "tint position must be from 0p to 100p"),
    ("e_tint:" + ":".join(["red"] * 11), "tint takes at most 10 colours"),
    ("e_red:101", "red level must be an integer from -100 to 100"),
    ("e_green:x", "green level must be an integer from -100 to 100"),
    ("e_blue:-101", "blue level must be an integer from -100 to 100"),
    ("e_gradient_fade:101", "gradient_fade strength must be an integer from 0 to 100"),
    ("e_gradient_fade:both", "gradient_fade takes an optional mode, symmetric or symmetric_pad"),
    ("e_gradient_fade:symmetric:20:30", "gradient_fade takes an optional mode"),
    ("e_gradient_fade:y_-0.4", "y_ is a parameter of its own, in the same component: e_gradient_fade,y_-0.4"),
    ("e_gradient_fade,x_100000", "x must be an integer from -16384 to 16384"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_bad_values_are_400s_naming_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_plan(parse_transformation(text))
    assert caught.value.status == 400
    assert message in caught.value.public
    assert text.split(",")[-1].split(":")[0].split("_")[0] in caught.value.public


# -- e_red, e_green, e_blue -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "band"), [("red", 0), ("green", 1), ("blue", 2)])
def test_a_channel_level_scales_that_channel_only(name: str, band: int) -> None:
    source = _photo()
    raised = _out(f"e_{name}:50", source)
    assert raised[..., band].mean() > source[..., band].mean() * 1.3
    others = [b for b in range(3) if b != band]
    assert np.abs(raised[..., others] - source[..., others]).max() <= 1
    removed = _out(f"e_{name}:-100", source)
    assert removed[..., band].max() == 0
    assert np.array_equal(_out(f"e_{name}", source), source)  # the default, 0: no change


def test_a_channel_level_keeps_black_and_alpha() -> None:
    source = _ramp(alpha=100)
    out = _out("e_red:100", source)
    assert out[:, 0, 0].max() == 0  # black stays black (a gain, not an offset)
    assert np.array_equal(out[..., 3], source[..., 3])
    assert (out[..., 0] >= out[..., 1]).all() and out[:, 40, 0].mean() > out[:, 40, 1].mean() + 50


# -- e_tint -----------------------------------------------------------------------------------------------


def test_the_default_tint_is_60_percent_red() -> None:
    source = _ramp()
    out = _out("e_tint", source)
    expected = source * 0.4 + np.array([255, 0, 0]) * 0.6
    assert np.abs(out - expected).max() <= 1


def test_two_colours_map_dark_to_the_first_and_light_to_the_second() -> None:
    out = _out("e_tint:100:blue:yellow", _ramp())
    assert np.abs(out[:, 0] - [0, 0, 255]).max() <= 1  # black -> blue
    assert np.abs(out[:, -1] - [255, 255, 0]).max() <= 1  # white -> yellow
    middle = out[:, 32]
    assert 100 < middle[0, 0] < 160 and 100 < middle[0, 2] < 160  # half way between


def test_a_colour_position_moves_where_it_lies_on_the_luma() -> None:
    early = _out("e_tint:100:black:white:20p:white", _ramp())
    late = _out("e_tint:100:black:white:80p:white", _ramp())
    assert early[:, 13].mean() > 230  # 20 % of the luma: already white
    assert late[:, 13].mean() < 70


def test_amount_0_changes_nothing_and_alpha_is_kept() -> None:
    source = _ramp(alpha=90)
    assert np.array_equal(_out("e_tint:0:green", source), source)
    out = _out("e_tint:100:green", source)
    assert np.array_equal(out[..., 3], source[..., 3])
    assert np.abs(out[..., :3] - [0, 128, 0]).max() <= 1  # one colour: a flat layer


def test_a_translucent_colour_tints_less() -> None:
    out = _out("e_tint:100:rgb:ff000080", _ramp())
    assert 120 < out[:, -1, 1].mean() < 135  # half of white's green kept (0x80 = 50 %)


def test_equalize_spreads_a_flat_image_over_the_whole_gradient() -> None:
    flat = _ramp(100, 150)
    plain = _out("e_tint:100:black:white", flat)
    equalized = _out("e_tint:equalize:100:black:white", flat)
    assert plain.max() - plain.min() < 70
    assert equalized.max() - equalized.min() > 220


def test_equalize_measures_an_opaque_alpha_image_with_no_bright_pixel() -> None:
    """Its masked histogram is short (libvips sizes a ushort histogram by the highest value): was a 500."""
    dark = _ramp(20, 180, alpha=255)
    equalized = _out("e_tint:equalize:100:black:white", dark)
    assert equalized[:, :, 0].max() - equalized[:, :, 0].min() > 220


@pytest.mark.parametrize(
    ("places", "expected"),
    [
        ([None], [0.0]),
        ([None, None], [0.0, 100.0]),
        ([None, None, None, None], [0.0, 100 / 3, 200 / 3, 100.0]),
        ([50, None, None], [50.0, 75.0, 100.0]),
        ([50, 60, 40], [50.0, 60.0, 60.0]),  # below an earlier one: raised to it (a hard edge)
        ([None, 80, None, None], [0.0, 80.0, 90.0, 100.0]),
    ],
)
def test_positions_follow_the_css_colour_stop_rules(places: list[int | None], expected: list[float]) -> None:
    stops = tuple(Stop(Color(0, 0, 0, 255, "black"), p) for p in places)
    assert positions(stops) == pytest.approx(expected)


# -- e_gradient_fade --------------------------------------------------------------------------------------


def _alpha(transformation: str) -> np.ndarray:
    out = _out(transformation, np.full((40, 60, 3), 200.0))
    assert out.shape[2] == 4
    return out[..., 3]


def test_the_default_fade_is_the_top_half() -> None:
    alpha = _alpha("e_gradient_fade")
    column = alpha[:, 30]
    assert column[0] < 5 and (column[20:] == 255).all()
    assert (np.diff(column) >= 0).all() and (alpha == alpha[:, :1]).all()  # rows alike


@pytest.mark.parametrize(
    ("direction", "edge", "inside"),
    [
        ("y_-0.5", (39, 30), (10, 30)),  # from the bottom
        ("x_0.25", (20, 0), (20, 30)),  # from the left, a quarter of the width
        ("x_-20", (20, 59), (20, 30)),  # from the right, 20 pixels
    ],
)
def test_the_fade_starts_at_the_edge_it_names(
    direction: str, edge: tuple[int, int], inside: tuple[int, int]
) -> None:
    alpha = _alpha(f"e_gradient_fade,{direction}")
    assert alpha[edge] < 10 and alpha[inside] == 255


def test_symmetric_fades_both_edges_and_x_with_y_both_directions() -> None:
    alpha = _alpha("e_gradient_fade:symmetric,x_0.2")
    assert alpha[20, 0] < 10 and alpha[20, 59] < 10 and alpha[20, 30] == 255
    both = _alpha("e_gradient_fade,x_0.2,y_0.2")
    assert both[0, 30] < 10 and both[20, 0] < 10 and both[30, 50] == 255


def test_a_stronger_fade_leaves_less() -> None:
    means = [_alpha(f"e_gradient_fade:{s},y_0.5")[:20].mean() for s in (0, 20, 100)]
    assert means[0] > means[1] > means[2]
    linear = _alpha("e_gradient_fade:0,y_40")[:, 30]
    assert np.abs(linear - (np.arange(40) + 0.5) / 40 * 255).max() <= 1  # strength 0: a straight ramp


def test_the_fade_goes_to_the_components_background_colour() -> None:
    out = _out("b_black,e_gradient_fade,y_-0.5", np.full((40, 60, 3), 200.0), extension="jpg")
    assert out.shape[2] == 3
    assert out[-1].mean() < 12 and abs(out[5].mean() - 200) < 4


def test_symmetric_pad_fades_the_image_into_the_pad() -> None:
    source = np.full((40, 40, 3), 200.0)
    out = _out("b_rgb:0000ff,c_pad,e_gradient_fade:symmetric_pad,h_40,w_80,x_0.25", source, extension="jpg")
    assert out.shape == (40, 80, 3)
    assert np.abs(out[:, 5] - [0, 0, 255]).max() < 12  # the pad, untouched
    assert np.abs(out[20, 21] - [0, 0, 255]).max() < 40  # the image's left edge: nearly the pad colour
    assert np.abs(out[20, 58] - [0, 0, 255]).max() < 40  # and its right edge
    assert np.abs(out[20, 40] - 200).max() < 6  # its middle: as it was
    # Without a pad it is the symmetric fade, to transparent.
    alpha = _alpha("e_gradient_fade:symmetric_pad,x_0.25")
    assert alpha[20, 0] < 10 and alpha[20, 59] < 10 and alpha[20, 30] == 255
