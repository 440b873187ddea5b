"""Cut-out compositing: straight alpha, foreground colours at soft edges, no fringe, no halo."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from transform.segment.compose import apply_alpha


def disc(width: int, height: int, edge: float) -> np.ndarray:
    """Alpha of a centred disc with a soft edge ``edge`` pixels wide, float32 in [0, 1]."""
    yy, xx = np.mgrid[0:height, 0:width]
    d = np.hypot(yy - height / 2, xx - width / 2)
    return np.clip((min(width, height) * 0.3 - d) / edge + 0.5, 0, 1).astype(np.float32)


def composite(fg: tuple[int, int, int], bg: tuple[int, int, int], alpha: np.ndarray) -> pyvips.Image:
    """The photograph a camera would see: ``fg`` over ``bg`` with ``alpha``."""
    a = alpha[..., None]
    pixels = a * np.array(fg, dtype=np.float32) + (1 - a) * np.array(bg, dtype=np.float32)
    return pyvips.Image.new_from_array(np.round(pixels).astype(np.uint8)).copy(interpretation="srgb")


def uchar(alpha: np.ndarray) -> pyvips.Image:
    return pyvips.Image.new_from_array(np.round(alpha * 255).astype(np.uint8))


def test_white_object_on_black_keeps_white_edges() -> None:
    alpha = disc(400, 300, edge=12)
    out = apply_alpha(composite((255, 255, 255), (0, 0, 0), alpha), uchar(alpha)).numpy()
    assert out.shape == (300, 400, 4)
    band = (alpha > 0.05) & (alpha < 0.95)
    edge_rgb = out[band][:, :3].astype(np.float32)
    # Keeping the photograph's colour would give about 128 on average; premultiplying, darker still.
    assert edge_rgb.mean() > 235
    assert np.percentile(edge_rgb, 5) > 215


def test_dark_object_on_white_has_no_light_halo() -> None:
    alpha = disc(400, 300, edge=12)
    fg = (40, 90, 30)
    out = apply_alpha(composite(fg, (255, 255, 255), alpha), uchar(alpha)).numpy()
    band = (alpha > 0.05) & (alpha < 0.95)
    error = np.abs(out[band][:, :3].astype(np.float32) - np.array(fg, dtype=np.float32))
    assert error.mean() < 20


def test_straight_alpha_and_opaque_pixels_unchanged() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(64, 80, 3), dtype=np.uint8)
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    alpha = np.zeros((64, 80), dtype=np.float32)
    alpha[10:50, 20:70] = 1
    out = apply_alpha(image, uchar(alpha)).numpy()
    assert np.array_equal(out[..., 3], np.round(alpha * 255).astype(np.uint8))
    inner = alpha == 1
    assert np.abs(out[inner][:, :3].astype(int) - pixels[inner].astype(int)).max() <= 1


def test_existing_alpha_is_combined() -> None:
    image = pyvips.Image.black(32, 32, bands=3).copy(interpretation="srgb").bandjoin(128)
    out = apply_alpha(image, uchar(np.ones((32, 32), dtype=np.float32))).numpy()
    assert out.shape == (32, 32, 4)
    assert abs(int(out[..., 3].mean()) - 128) <= 1


def test_greyscale_input_gives_rgba() -> None:
    image = pyvips.Image.black(20, 10).copy(interpretation="b-w") + 200
    out = apply_alpha(image.cast("uchar"), uchar(np.ones((10, 20), dtype=np.float32)))
    assert (out.bands, out.format, out.interpretation) == (4, "uchar", "srgb")


def test_size_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="alpha is 10x10"):
        apply_alpha(pyvips.Image.black(20, 20, bands=3), pyvips.Image.black(10, 10))


@pytest.mark.parametrize(("width", "height"), [(1, 1), (1, 5), (5, 1)])
def test_tiny_images_keep_their_colours(width: int, height: int) -> None:
    pixels = np.full((height, width, 3), (200, 50, 30), dtype=np.uint8)
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    out = apply_alpha(image, uchar(np.full((height, width), 0.5, dtype=np.float32))).numpy()
    assert out.reshape(-1, 4).tolist() == [[200, 50, 30, 128]] * (width * height)
