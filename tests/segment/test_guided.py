"""Guided-filter primitives and the fast mask path: box means, 8-bit output, lean imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import pyvips

from transform.segment.guided import apply_full, apply_uchar, box, coefficients, guide_at, to_numpy
from transform.segment.refine import upsample_alpha, upsample_mask
from transform.segment.segmenter import to_uchar


def reflect_box(x: np.ndarray, r: int) -> np.ndarray:
    """Brute-force window mean with half-sample reflection (the edge pixel repeated), any r."""
    h, w = x.shape[:2]
    rows = [_reflect(i, h) for i in range(-r, h + r)]
    cols = [_reflect(j, w) for j in range(-r, w + r)]
    padded = x[rows][:, cols].astype(np.float64)
    out = np.zeros(x.shape, dtype=np.float64)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out += padded[dy : dy + h, dx : dx + w]
    return out / (2 * r + 1) ** 2


def _reflect(i: int, n: int) -> int:
    period = 2 * n
    i %= period
    return i if i < n else period - 1 - i


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (9, 4, 3), (40, 31, 2)])
@pytest.mark.parametrize("r", [1, 2, 6])
def test_box_is_the_reflected_window_mean(shape: tuple[int, ...], r: int) -> None:
    x = np.random.default_rng(1).random(shape).astype(np.float32)
    out = box(x, r)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, reflect_box(x, r), atol=1e-6)


def test_box_keeps_precision_over_long_rows() -> None:
    # float32 running sums over 4000 values near 1 would be off by ~1e-4; the filter needs ~1e-6.
    x = np.full((3, 4000), 0.9, dtype=np.float32)
    x[:, ::2] = 0.95
    out = box(x, 8)
    np.testing.assert_allclose(out[:, 100:-100], reflect_box(x, 8)[:, 100:-100], atol=2e-6)


def photo(height: int, width: int, seed: int = 0) -> pyvips.Image:
    rng = np.random.default_rng(seed)
    pixels = np.zeros((height, width, 3), dtype=np.float64)
    pixels[:, : width // 2] = (220, 60, 40)
    pixels[:, width // 2 :] = (40, 80, 200)
    pixels += rng.normal(0, 6, pixels.shape)
    arr = np.clip(pixels, 0, 255).astype(np.uint8)
    return pyvips.Image.new_from_array(arr).copy(interpretation="srgb")


def test_uchar_output_matches_the_float_path() -> None:
    image = photo(90, 120)
    guide = guide_at(image, 60, 45)
    p = np.zeros((45, 60), dtype=np.float32)
    p[:, :31] = 1
    a, b = coefficients(guide, p, 2, 1e-3)
    full = apply_full(image, a, b)
    small = apply_uchar(image, a, b)
    assert (small.width, small.height, small.bands, small.format) == (120, 90, 1, "uchar")
    expected = to_uchar(full, 120, 90).numpy().astype(int)
    assert np.abs(small.numpy().astype(int) - expected).max() <= 1


def test_upsample_alpha_is_the_8_bit_upsample_mask() -> None:
    image = photo(300, 400, seed=2)
    prob = np.zeros((1024, 1024), dtype=np.float32)
    prob[:, :512] = 1
    alpha = upsample_alpha(prob, image)
    expected = to_uchar(upsample_mask(prob, image), 400, 300).numpy().astype(int)
    assert np.abs(alpha.numpy().astype(int) - expected).max() <= 1
    row = alpha.numpy()[150]
    assert row[:195].min() == 255 and row[205:].max() == 0  # the edge follows the photo's, at x = 200


@pytest.mark.parametrize(("width", "height", "bands"), [(1, 1, 1), (1, 1, 3), (1, 4, 1), (4, 1, 1)])
def test_to_numpy_keeps_every_axis(width: int, height: int, bands: int) -> None:
    image = pyvips.Image.black(width, height, bands=bands)  # pyvips gives a 1x1 one-band image as 0-d
    assert to_numpy(image).shape == ((height, width) if bands == 1 else (height, width, bands))


@pytest.mark.parametrize(("width", "height"), [(1, 1), (1, 6), (6, 1)])
def test_upsample_of_a_tiny_photo(width: int, height: int) -> None:
    prob = np.ones((1024, 1024), dtype=np.float32)
    alpha = upsample_alpha(prob, photo(height, width))
    assert (alpha.width, alpha.height) == (width, height)
    assert upsample_mask(prob, photo(height, width)).shape == (height, width)


def test_mask_path_does_not_import_scipy() -> None:
    # scipy costs a whole `cutout remove-bg` process about 0.3 s; only fine edges need it.
    code = (
        "import sys, cutout.cmd_remove_bg, transform.segment.refine, transform.segment.compose; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_flat_blocks_are_skipped_without_changing_the_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    from transform.segment import guided

    image = photo(1500, 2000, seed=4)
    prob = np.zeros((1024, 1024), dtype=np.float32)
    prob[300:700, 200:512] = 1  # an object on the left half: most of the map is flat
    a, b = refine_fit(prob, image)
    assert guided._block_states(a, b, 2000, 1500) is not None  # the skipping path is taken
    skipped = apply_uchar(image, a, b).numpy()
    monkeypatch.setattr(guided, "MIN_FLAT_SHARE", 2.0)  # no block skipped: one whole-image pass
    whole = apply_uchar(image, a, b).numpy()
    assert np.array_equal(skipped, whole)
    assert skipped.min() == 0 and skipped.max() == 255


def refine_fit(prob: np.ndarray, image: pyvips.Image) -> tuple[np.ndarray, np.ndarray]:
    from transform.segment.refine import GAIN, _fit

    return _fit(prob, image, None, 1e-3, GAIN)
