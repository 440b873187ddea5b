"""e_blackwhite, e_hue, e_gamma, e_vignette, e_pixelate(_region), e_unsharp_mask, e_make_transparent,
e_replace_color and e_opacity_threshold: their canonical forms, their 400s, and their pixels on small
synthetic images whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips
from transform_helpers import run

from grammar import parse_transformation
from grammar.errors import BadRequest
from transform import compile_plan
from transform.ops.detail import vignette_mask
from transform.ops.keying import border_colour, predominant_colour


def _png(array: np.ndarray) -> bytes:
    """An 8-bit sRGB PNG of an (h, w, 3 or 4) array."""
    height, width, bands = array.shape
    image = pyvips.Image.new_from_memory(np.ascontiguousarray(array, dtype=np.uint8).tobytes(), width,
                                         height, bands, "uchar")  # fmt: skip
    return bytes(image.copy(interpretation="srgb").pngsave_buffer())


def _out(transformation: str, array: np.ndarray) -> np.ndarray:
    rendered = run(transformation, _png(array), {}, extension="png")
    return np.asarray(pyvips.Image.new_from_buffer(rendered.data, "").numpy(), dtype=np.int32)


def _flat(rgb: tuple[int, ...], width: int = 8, height: int = 8) -> np.ndarray:
    return np.tile(np.array(rgb, dtype=np.uint8), (height, width, 1))


CANONICAL = [
    ("e_blackwhite:50", "e_blackwhite"),
    ("e_blackwhite:level_20", "e_blackwhite:20"),
    ("e_hue:80", "e_hue"),
    ("e_hue:-100", "e_hue:-100"),
    ("e_gamma:0", "e_gamma"),
    ("e_gamma:level_150", "e_gamma:150"),
    ("e_vignette:20", "e_vignette"),
    ("e_vignette:0", "e_vignette:0"),
    ("e_pixelate:5", "e_pixelate"),
    ("e_pixelate:200", "e_pixelate:200"),
    ("e_pixelate_region:10,y_20,w_100,x_10,h_50", "e_pixelate_region:10,h_50,w_100,x_10,y_20"),
    ("e_unsharp_mask:100", "e_unsharp_mask"),
    ("e_unsharp_mask:2000", "e_unsharp_mask:2000"),
    ("e_make_transparent:10", "e_make_transparent"),
    ("e_make_transparent:5,co_RGB:FF0000", "co_rgb:ff0000,e_make_transparent:5"),
    ("e_replace_color:orange:50", "e_replace_color:orange"),
    ("e_replace_color:AA7812", "e_replace_color:aa7812"),
    ("e_replace_color:rgb:aa7812:60:green", "e_replace_color:aa7812:60:green"),
    ("e_replace_color:orange::2b38aa", "e_replace_color:orange:50:2b38aa"),
    ("e_opacity_threshold:50", "e_opacity_threshold"),
    ("e_opacity_threshold:level_20", "e_opacity_threshold:20"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_canonical(text: str, canonical: str) -> None:
    assert compile_plan(parse_transformation(text)).canonical == canonical
    assert compile_plan(parse_transformation(canonical)).canonical == canonical


REFUSED = [
    ("e_blackwhite:101", "blackwhite level must be an integer from 0 to 100"),
    ("e_hue:-101", "hue level must be an integer from -100 to 100"),
    ("e_hue:x", "hue level must be an integer from -100 to 100"),
    ("e_gamma:-51", "gamma level must be an integer from -50 to 150"),
    ("e_gamma:151", "gamma level must be an integer from -50 to 150"),
    ("e_vignette:101", "vignette strength must be an integer from 0 to 100"),
    ("e_pixelate:0", "pixel square size must be an integer from 1 to 200"),
    ("e_pixelate:201", "pixel square size must be an integer from 1 to 200"),
    ("e_pixelate_region:1.5,w_10,h_10", "pixel square size must be an integer from 1 to 200"),
    ("e_unsharp_mask:2001", "unsharp_mask strength must be an integer from 1 to 2000"),
    ("e_make_transparent:101", "make_transparent tolerance must be an integer from 0 to 100"),
    ("e_replace_color", "replace_color takes <to colour>[:<tolerance 0-100>][:<from colour>]"),
    ("e_replace_color:reddish", "; reddish is not supported"),
    ("e_replace_color:red:101", "replace_color tolerance must be an integer from 0 to 100"),
    ("e_replace_color:red:50:blah", "; blah is not supported"),
    ("e_replace_color:red:50:blue:x", "replace_color takes <to colour>"),
    ("e_opacity_threshold:0", "opacity_threshold level must be an integer from 1 to 100"),
    ("co_red,e_replace_color:blue", "co_ needs e_colorize, e_make_transparent, e_outline or e_shadow"),
    ("e_pixelate_region,g_faces", "g_faces: g_ needs"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_refused_with_the_parameter_and_its_range(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_plan(parse_transformation(text))
    assert message in str(caught.value)
    assert str(caught.value).startswith("Invalid transformation parameter - ")


# -- point operations ---------------------------------------------------------------------------------


def test_blackwhite_thresholds_the_luma() -> None:
    greys = np.concatenate([_flat((100, 100, 100), 4), _flat((200, 200, 200), 4)], axis=1)
    out = _out("e_blackwhite", greys)  # threshold 50 % = 127.5
    assert out.shape == (8, 8, 3)
    assert (out[:, :4] == 0).all() and (out[:, 4:] == 255).all()
    assert (_out("e_blackwhite:80", greys) == 0).all()  # 200 < 204
    assert (_out("e_blackwhite:0", greys) == 255).all()


def _lab(rgb: np.ndarray) -> np.ndarray:
    image = pyvips.Image.new_from_memory(rgb.astype(np.uint8).tobytes(), 1, 1, 3, "uchar")
    return np.array(image.copy(interpretation="srgb").colourspace("lab").getpoint(0, 0))


def test_hue_turns_the_hue_and_keeps_lightness_and_alpha() -> None:
    red = np.dstack([_flat((170, 110, 100)), np.full((8, 8, 1), 90, np.uint8)])  # in gamut turned
    half = _out("e_hue:100", red)
    r, g, b, a = half[0, 0]
    assert g > r and b > r  # half way round from red: a cyan
    assert (half[..., 3] == 90).all()
    before, after = _lab(np.array([170, 110, 100])), _lab(half[0, 0, :3])
    assert abs(before[0] - after[0]) < 3  # the lightness stays
    # Both ends of the range are half way round, and level 0 changes nothing.
    assert np.abs(_out("e_hue:-100", red) - half).max() <= 1
    assert np.abs(_out("e_hue:0", red) - red).max() <= 1
    assert np.abs(_out("e_hue", red) - half).max() > 20  # the default, 80, is another turn


def test_gamma_is_a_power_curve() -> None:
    dark = _flat((64, 64, 64))
    assert (_out("e_gamma", dark) == 64).all()  # default 0: no change
    assert (_out("e_gamma:100", dark) == 128).all()  # 255 * (64/255) ** (1/2) = 127.8
    assert (_out("e_gamma:-50", dark) == 16).all()  # 255 * (64/255) ** 2 = 16.1
    assert (_out("e_gamma:150", _flat((0, 255, 255))) == [0, 255, 255]).all()  # the ends stay


def test_opacity_threshold_makes_alpha_all_or_nothing() -> None:
    rgba = _flat((10, 20, 30, 0), 4, 1)
    rgba[0, :, 3] = [50, 127, 128, 200]
    assert list(_out("e_opacity_threshold", rgba)[0, :, 3]) == [0, 0, 255, 255]  # 127.5
    assert list(_out("e_opacity_threshold:20", rgba)[0, :, 3]) == [0, 255, 255, 255]  # 51
    assert (_out("e_opacity_threshold:20", rgba)[0, :, :3] == [10, 20, 30]).all()
    opaque = _flat((10, 20, 30))
    assert (_out("e_opacity_threshold", opaque) == opaque).all()


# -- neighbourhoods -----------------------------------------------------------------------------------


def test_vignette_darkens_the_corners_not_the_centre() -> None:
    grey = _flat((200, 200, 200), 60, 40)
    out = _out("e_vignette", grey)
    assert (out[18:22, 28:32] == 200).all()
    assert out[0, 0, 0] < 30 and out[-1, -1, 0] < 30  # the default's corners: nearly black
    assert out[0, 0, 0] < out[0, 10, 0] < out[0, 30, 0]
    assert (_out("e_vignette:0", grey) == grey).all()
    # A stronger vignette darkens more of the image.
    mask = vignette_mask(60, 40, 20).numpy()
    assert (vignette_mask(60, 40, 80).numpy() <= mask + 1e-6).all() and mask.min() >= 0


def test_pixelate_averages_squares() -> None:
    stripes = np.zeros((8, 10, 3), np.uint8)
    stripes[:, 1::2] = 200  # columns 0, 200, 0, 200...
    out = _out("e_pixelate:4", stripes)
    assert out.shape == (8, 10, 3)
    assert (out[:, :8] == 100).all()
    assert (out[:, 8:] == 100).all()  # the cut last column of squares: its own two columns
    assert (_out("e_pixelate:1", stripes) == stripes).all()


def test_pixelate_keeps_transparent_colours_out() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :2] = [255, 0, 0, 255]  # red, opaque; the rest black and fully transparent
    out = _out("e_pixelate:4", rgba)
    assert (out[..., 3] == 128).all() and (out[..., :3] == [255, 0, 0]).all()


def test_pixelate_region_changes_only_its_box() -> None:
    stripes = np.zeros((20, 20, 3), np.uint8)
    stripes[:, 1::2] = 200
    out = _out("e_pixelate_region:2,h_8,w_8,x_4,y_6", stripes)
    assert (out[6:14, 4:12] == 100).all()
    outside = np.ones((20, 20), bool)
    outside[6:14, 4:12] = False
    assert (out[outside] == stripes[outside]).all()
    # Fractions of the image, as c_crop's; no box: the whole image.
    assert (_out("e_pixelate_region:2,h_0.5,w_0.5", stripes)[:10, :10] == 100).all()
    assert (_out("e_pixelate_region:2", stripes) == 100).all()


def test_unsharp_mask_overshoots_at_edges_only() -> None:
    step = np.concatenate([_flat((100, 100, 100), 10, 4), _flat((150, 150, 150), 10, 4)], axis=1)
    out = _out("e_unsharp_mask", step)
    assert out[0, 9, 0] < 100 and out[0, 10, 0] > 150  # a darker and a lighter rim at the edge
    assert out[0, 0, 0] == 100 and out[0, -1, 0] == 150  # flat areas as they were
    stronger = _out("e_unsharp_mask:400", step)
    assert stronger[0, 9, 0] < out[0, 9, 0] and stronger[0, 10, 0] > out[0, 10, 0]


# -- colour keys ----------------------------------------------------------------------------------------


def _ring() -> np.ndarray:
    """White, with a black ring (rows/columns 3..12 of 16) holding a white inside (6..9)."""
    image = _flat((255, 255, 255), 16, 16)
    image[3:13, 3:13] = [0, 0, 0]
    image[6:10, 6:10] = [250, 250, 250]  # near white: within the default tolerance
    return image


def test_make_transparent_takes_the_edges_colour_where_it_touches_the_edges() -> None:
    assert border_colour(pyvips.Image.new_from_memory(_ring().tobytes(), 16, 16, 3, "uchar")) == [255.0] * 3
    out = _out("e_make_transparent", _ring())
    assert out.shape == (16, 16, 4)
    assert (out[:3, :, 3] == 0).all() and (out[:, 13:, 3] == 0).all()  # the backdrop
    assert (out[3:13, 3, 3] == 255).all()  # the ring
    assert (out[6:10, 6:10, 3] == 255).all()  # the white inside the ring is not the backdrop
    assert (out[..., :3] == _ring()).all()  # colours unchanged


def test_make_transparent_with_a_colour_keys_it_out_everywhere() -> None:
    out = _out("co_white,e_make_transparent", _ring())
    assert (out[6:10, 6:10, 3] == 0).all() and (out[:3, :, 3] == 0).all()
    assert (out[3:13, 3, 3] == 255).all()
    # Tolerance 0: only the exact colour (250 is not white).
    exact = _out("co_white,e_make_transparent:0", _ring())
    assert (exact[6:10, 6:10, 3] == 255).all() and (exact[0, 0, 3] == 0)
    black = _out("co_black,e_make_transparent", _ring())
    assert (black[3:6, 3:13, 3] == 0).all() and (black[0, 0, 3] == 255)


def test_make_transparent_keeps_what_was_transparent() -> None:
    rgba = np.dstack([_ring(), np.full((16, 16, 1), 255, np.uint8)])
    rgba[7, 7, 3] = 0
    out = _out("co_red,e_make_transparent", rgba)  # no red anywhere
    assert out[7, 7, 3] == 0 and (out[..., 3].sum() == 255 * (16 * 16 - 1))


def _halves() -> np.ndarray:
    """Three quarters red (and a darker red shade), a quarter blue."""
    image = _flat((200, 30, 30), 16, 8)
    image[:, 12:] = [30, 40, 200]
    image[0, :12] = [150, 20, 20]
    return image


def test_replace_color_maps_the_colour_and_its_shades() -> None:
    out = _out("e_replace_color:green:50:c81e1e", _halves())
    g_red, g_shade = out[4, 0], out[0, 0]
    assert g_red[1] > g_red[0] and g_red[1] > g_red[2]  # green now
    assert g_shade[1] > g_shade[0] and g_shade.sum() < g_red.sum()  # a darker green for the darker red
    assert (out[:, 12:] == [30, 40, 200]).all()  # the blue is far from red: untouched
    # Default source: the predominant colour (the red); tolerance 0 (and another red): nothing changes.
    assert np.abs(_out("e_replace_color:green", _halves())[4, 0] - g_red).max() <= 4
    assert (_out("e_replace_color:green:0:rgb:ff0000", _halves()) == _halves()).all()


def test_replace_color_bare_hex_and_alpha() -> None:
    rgba = np.dstack([_halves(), np.full((8, 16, 1), 77, np.uint8)])
    out = _out("e_replace_color:0000ff:40:c81e1e", rgba)
    assert out[4, 0, 2] > out[4, 0, 0] and (out[..., 3] == 77).all()


def test_predominant_colour_is_the_most_common_one() -> None:
    image = pyvips.Image.new_from_memory(_halves().tobytes(), 16, 8, 3, "uchar")
    assert np.abs(np.array(predominant_colour(image)) - [200, 30, 30]).max() < 1
