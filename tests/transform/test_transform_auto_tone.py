"""e_vibrance, e_auto_contrast, e_auto_brightness, e_auto_color and e_improve: canonical forms, 400s, and
each moving a dull, flat, dark or colour-cast synthetic image the way it should, measured (spread of the
luma, distance of the mean from mid-grey, spread of the band means, chroma gained); blend 0 changes
nothing, alpha is kept, greyscale and 16-bit originals come out right."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips
from transform_helpers import run

from grammar import parse_transformation
from grammar.errors import BadRequest
from transform import compile_plan


def _png(array: np.ndarray, fmt: str = "uchar", interpretation: str = "srgb") -> bytes:
    height, width, bands = array.shape
    dtype = np.uint16 if fmt == "ushort" else np.uint8
    data = np.ascontiguousarray(array, dtype=dtype).tobytes()
    image = pyvips.Image.new_from_memory(data, width, height, bands, fmt)
    return bytes(image.copy(interpretation=interpretation).pngsave_buffer())


def _out(transformation: str, source: np.ndarray | bytes) -> np.ndarray:
    data = source if isinstance(source, bytes) else _png(source)
    rendered = run(transformation, data, {}, extension="png")
    return np.asarray(pyvips.Image.new_from_buffer(rendered.data, "").numpy(), dtype=np.float64)


def _ramp(low: float, high: float, tint: tuple[float, float, float] = (0, 0, 0)) -> np.ndarray:
    """A 64x32 horizontal ramp of greys from low to high, plus a tint per band: a flat, dull image."""
    levels = np.linspace(low, high, 64)
    grey = np.tile(levels[None, :, None], (32, 1, 3)) + np.array(tint)
    return np.clip(grey, 0, 255).round()


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3] @ np.array([0.2126, 0.7152, 0.0722])


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """CIE LCh chroma of an (..., 3) array of sRGB values."""
    flat = np.ascontiguousarray(rgb.reshape(1, -1, 3), dtype=np.uint8)
    image = pyvips.Image.new_from_memory(flat.tobytes(), flat.shape[1], 1, 3, "uchar")
    return np.asarray(image.copy(interpretation="srgb").colourspace("lch").numpy())[0, :, 1]


def canonical(text: str) -> str:
    return compile_plan(parse_transformation(text)).canonical


CANONICAL = [
    ("e_vibrance:20", "e_vibrance"),
    ("e_vibrance:-100", "e_vibrance:-100"),
    ("e_auto_contrast:100", "e_auto_contrast"),
    ("e_auto_brightness:0", "e_auto_brightness:0"),
    ("e_auto_color:60", "e_auto_color:60"),
    ("e_improve:outdoor", "e_improve"),
    ("e_improve:outdoor:100", "e_improve"),
    ("e_improve:outdoor:40", "e_improve:40"),
    ("e_improve:40", "e_improve:40"),
    ("e_improve:indoor", "e_improve:indoor"),
    ("e_improve:indoor:100", "e_improve:indoor"),
    ("e_improve:indoor:0", "e_improve:indoor:0"),
]


@pytest.mark.parametrize(("text", "expected"), CANONICAL)
def test_canonical(text: str, expected: str) -> None:
    assert canonical(text) == expected
    assert canonical(expected) == expected


REFUSED = [
    ("e_vibrance:101", "vibrance strength must be an integer from -100 to 100"),
    ("e_vibrance:-101", "vibrance strength must be an integer from -100 to 100"),
    ("e_auto_contrast:101", "auto_contrast blend must be an integer from 0 to 100"),
    ("e_auto_brightness:-1", "auto_brightness blend must be an integer from 0 to 100"),
    ("e_auto_color:x", "auto_color blend must be an integer from 0 to 100"),
    ("e_improve:sunny", "improve takes an optional mode, indoor or outdoor (the default), then an optional"),
    ("e_improve:101", "improve blend must be an integer from 0 to 100"),
    ("e_improve:indoor:101", "improve blend must be an integer from 0 to 100"),
    ("e_improve:indoor:x", "improve blend must be an integer from 0 to 100"),
    ("e_improve:50:indoor", "improve takes an optional mode, indoor or outdoor"),
    ("e_improve:indoor:50:1", "improve blend must be an integer from 0 to 100"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_refused_with_the_effect_and_its_range(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        canonical(text)
    assert str(caught.value).startswith(f"Invalid transformation parameter - {text}: ")
    assert message in str(caught.value)


# -- e_vibrance -----------------------------------------------------------------------------------------


def test_vibrance_boosts_dull_colours_more_than_vivid_ones() -> None:
    image = np.zeros((8, 16, 3))
    image[:, :8] = [100, 130, 140]  # a dull teal
    image[:, 8:] = [40, 60, 220]  # a vivid blue
    before = _chroma(image[0])
    after = _chroma(_out("e_vibrance:60", image)[0])
    gain = after / before
    assert gain[0] > 1.3 and gain[0] > gain[8] + 0.2
    assert gain[8] < 1.1
    # The default (20) boosts less; level 0 changes nothing; below 0 the dull colour fades first.
    assert 1.02 < (_chroma(_out("e_vibrance", image)[0]) / before)[0] < gain[0]
    assert (_out("e_vibrance:0", image) == image).all()
    faded = _chroma(_out("e_vibrance:-60", image)[0]) / before
    assert faded[0] < 0.7 and faded[8] > faded[0]


def test_vibrance_spares_skin_and_greys() -> None:
    image = np.zeros((4, 12, 3))
    image[:, :4] = [200, 150, 125]  # a skin tone
    image[:, 4:8] = [125, 160, 200]  # a colour as dull, of another hue
    image[:, 8:] = [128, 128, 128]
    before = _chroma(image[0])
    out = _out("e_vibrance:100", image)
    gain = _chroma(out[0]) / np.maximum(before, 1e-6)
    assert gain[4] > 1.3 and gain[0] < gain[4] - 0.2
    assert np.abs(out[0, 8] - 128).max() <= 1  # grey has no chroma to boost


# -- automatic adjustments ------------------------------------------------------------------------------


def test_auto_contrast_stretches_the_range_keeping_the_hues() -> None:
    flat = _ramp(95, 170)
    out = _out("e_auto_contrast", flat)
    assert _luma(out).std() > 2.5 * _luma(flat).std()
    assert out.min() <= 5 and out.max() >= 250
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()  # greys stay grey
    half = _out("e_auto_contrast:50", flat)
    assert _luma(flat).std() < _luma(half).std() < _luma(out).std()
    assert (_out("e_auto_contrast:0", flat) == flat).all()


def test_auto_contrast_is_capped_on_a_nearly_flat_image() -> None:
    fog = _ramp(120, 130)
    out = _out("e_auto_contrast", fog)
    assert 3.5 < _luma(out).std() / _luma(fog).std() <= 4.05
    assert abs(out.mean() - fog.mean()) < 2  # the range's middle stays put


def test_auto_brightness_moves_the_median_towards_mid_grey() -> None:
    dark, bright = _ramp(30, 110), _ramp(170, 250)
    lifted, lowered = _out("e_auto_brightness", dark), _out("e_auto_brightness", bright)
    assert abs(np.median(_luma(lifted)) - 128) < 12 < abs(np.median(_luma(dark)) - 128)
    assert np.median(_luma(lowered)) < np.median(_luma(bright)) - 30  # (exponent capped at 2)
    half = _out("e_auto_brightness:50", dark)
    assert dark.mean() < half.mean() < lifted.mean()
    assert (_out("e_auto_brightness:0", dark) == dark).all()


def test_auto_color_levels_a_colour_cast_away() -> None:
    cast = _ramp(60, 160, tint=(50, 10, -30))  # warm: red up, blue down
    spread = np.ptp(cast.reshape(-1, 3).mean(axis=0))
    out = _out("e_auto_color", cast)
    assert np.ptp(out.reshape(-1, 3).mean(axis=0)) < spread / 4
    half = _out("e_auto_color:50", cast)
    assert spread / 4 < np.ptp(half.reshape(-1, 3).mean(axis=0)) < spread
    assert (_out("e_auto_color:0", cast) == cast).all()
    # Bands too narrow to stretch to full (the gain is capped) are still levelled alike.
    narrow = _ramp(100, 160, tint=(20, 0, -20))
    assert np.ptp(_out("e_auto_color", narrow).reshape(-1, 3).mean(axis=0)) < 2


def _cast(rgb: np.ndarray) -> float:
    """How far apart the band means are, relative to their mean: a contrast stretch widens the first
    and a cast removal narrows the quotient."""
    means = rgb.reshape(-1, 3).mean(axis=0)
    return float(np.ptp(means) / means.mean())


def test_improve_corrects_a_dull_cast_dark_image() -> None:
    dull = _ramp(30, 110, tint=(30, 10, -20))
    for transformation in ("e_improve", "e_improve:indoor"):
        out = _out(transformation, dull)
        assert _luma(out).std() > 1.5 * _luma(dull).std(), transformation
        assert abs(_luma(out).mean() - 128) < abs(_luma(dull).mean() - 128), transformation
        assert _cast(out) < _cast(dull) * 0.6, transformation
    indoor, outdoor = _out("e_improve:indoor", dull), _out("e_improve", dull)
    assert _cast(indoor) < _cast(outdoor)  # indoor lamps cast more: indoor levels the bands more
    assert (_out("e_improve:0", dull) == dull).all() and (_out("e_improve:indoor:0", dull) == dull).all()
    half = _out("e_improve:50", dull)
    assert np.abs(half - (dull + outdoor) / 2).max() <= 1


@pytest.mark.parametrize(
    "effect", ["e_vibrance:80", "e_auto_contrast", "e_auto_brightness", "e_auto_color", "e_improve:indoor"]
)
def test_alpha_is_kept_and_transparent_colours_are_not_measured(effect: str) -> None:
    flat = _ramp(100, 160, tint=(20, 0, -10))
    alpha = np.tile(np.linspace(255, 128, 64)[None, :, None], (32, 1, 1)).round()
    rgba = np.concatenate([flat, alpha], axis=2)
    rgba[:4] = [0, 0, 0, 0]  # transparent black rows: junk colour that must not widen the range
    out = _out(effect, rgba)
    assert (out[..., 3] == rgba[..., 3]).all()
    opaque = _out(effect, np.concatenate([flat, np.full((32, 64, 1), 255.0)], axis=2))
    assert np.abs(out[4:, :, :3] - opaque[4:, :, :3]).max() <= 2


def test_greyscale_and_16_bit_originals() -> None:
    grey16 = (_ramp(100, 160)[..., :1] * 257).astype(np.uint16)
    source = _png(grey16, fmt="ushort", interpretation="grey16")
    for effect in ("e_auto_contrast", "e_auto_color", "e_improve", "e_vibrance:100"):
        out = _out(effect, source)
        assert out.shape[2] in (1, 3), effect
        if out.shape[2] == 3:
            assert np.abs(out[..., 0] - out[..., 2]).max() <= 1, effect  # still grey
        if effect != "e_vibrance:100":
            assert out[..., 0].std() > 2 * _ramp(100, 160)[..., 0].std(), effect


def test_an_animation_is_measured_once_on_its_first_frame() -> None:
    """Measured on each frame, a dark and a light frame would get opposite curves (a flicker): every
    frame gets the first frame's."""
    dark, light = _ramp(30, 110), _ramp(110, 190)  # medians 70 and 150
    strip = np.concatenate([dark, light], axis=0).astype(np.uint8)
    image = pyvips.Image.new_from_memory(strip.tobytes(), 64, 64, 3, "uchar").copy(interpretation="srgb")
    image.set_type(pyvips.GValue.gint_type, "page-height", 32)
    rendered = run("e_auto_brightness", bytes(image.gifsave_buffer()), {}, extension="gif")
    frames = pyvips.Image.new_from_buffer(rendered.data, "", n=-1)
    assert rendered.frames == 2
    second = np.asarray(frames.crop(0, 32, 64, 32).numpy(), dtype=np.float64)[..., :3]
    # The first frame's curve lifts the light frame too; its own would have darkened it a little.
    assert second.mean() > light.mean() + 15
