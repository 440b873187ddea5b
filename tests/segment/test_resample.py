"""The network's input resampler: true Lanczos-3 when an axis grows, libvips' reduce when it shrinks."""

from __future__ import annotations

import numpy as np
import pyvips

from transform.segment.resample import to_model_size, weights


def grey(pixels: np.ndarray) -> pyvips.Image:
    return pyvips.Image.new_from_array(pixels.astype(np.uint8)).cast("uchar")


def test_upscale_matches_pil_lanczos() -> None:
    # PIL 13.0 ``Image.resize((16, 3), Image.Resampling.LANCZOS)`` of this 7x3 image (rembg's resize),
    # recorded once: overshoot clipped to 0 and 255, centres aligned.
    src = np.repeat(np.array([[0, 0, 255, 255, 40, 200, 10]]), 3, axis=0)
    expected = [10, 0, 0, 5, 116, 235, 255, 255, 200, 79, 44, 128, 200, 139, 37, 0]
    out = to_model_size(grey(src), 16, 3)
    assert out.shape == (3, 16, 1) and out.dtype == np.uint8
    assert out[:, :, 0].tolist() == [expected] * 3


def test_weights_are_normalised_and_symmetric() -> None:
    index, w = weights(400, 1024)
    assert index.shape == w.shape == (1024, 6)
    assert np.allclose(w.sum(axis=1), 1, atol=1e-6)
    assert index.min() == 0 and index.max() == 399
    # Doubling: output pixels 2k and 2k+1 sit a quarter pixel either side of source pixel k.
    _, w2 = weights(10, 20)
    assert np.allclose(w2[8], w2[9][::-1], atol=1e-6)


def test_flat_image_stays_flat_and_shapes_are_exact() -> None:
    image = (pyvips.Image.black(400, 267, bands=3) + [200, 30, 90]).cast("uchar").copy(interpretation="srgb")
    out = to_model_size(image, 1024, 1024)
    assert out.shape == (1024, 1024, 3)
    assert np.all(out == np.array([200, 30, 90], dtype=np.uint8))
    # One axis shrinks (libvips), the other grows (numpy); odd sizes.
    wide = (pyvips.Image.black(3001, 333, bands=3) + 77).cast("uchar")
    assert to_model_size(wide, 1024, 1000).shape == (1000, 1024, 3)
    big = (pyvips.Image.black(2500, 1999, bands=3) + 77).cast("uchar")
    out = to_model_size(big, 1024, 1024)
    assert out.shape == (1024, 1024, 3) and np.all(out == 77)


def test_upscale_keeps_a_step_edge_in_place() -> None:
    src = np.zeros((8, 400), dtype=np.uint8)
    src[:, 200:] = 255
    row = to_model_size(grey(src), 1024, 8)[0, :, 0].astype(int)
    # The edge lies at 200/400 of the width: output pixel 511.5 is the crossing.
    assert row[:505].max() <= 3 and row[519:].min() >= 252
    assert row[511] < 128 < row[512]


def test_transparency_is_flattened_onto_white_in_16_bits_too() -> None:
    """A 16-bit PNG with alpha (remove-bg reads files as they are) went onto near black: libvips' flatten
    counts the background in the image's own range."""
    from transform.segment.segmenter import prepare

    x = pyvips.Image.xyz(64, 48)[0]
    alpha8 = (x > 32).ifthenelse(255, 0).cast("uchar")
    grey = (x * 0 + 90).cast("uchar")
    rgba8 = grey.bandjoin([grey, grey, alpha8]).copy(interpretation="srgb")
    rgba16 = (rgba8.cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16")
    greya16 = rgba16.extract_band(0).bandjoin(rgba16.extract_band(3)).copy(interpretation="grey16")
    for image in (rgba8, rgba16, greya16):
        flat = prepare(image)
        assert (flat.bands, flat.format) == (3, "uchar")
        assert flat.getpoint(0, 0) == [255.0, 255.0, 255.0], image.interpretation  # transparent -> white
        assert abs(flat.getpoint(60, 0)[0] - 90) <= 1  # opaque keeps its colour
