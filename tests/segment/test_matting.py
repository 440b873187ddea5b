"""Fine edges: the colour model that decides unsure pixels, and the matting pass around it."""

from __future__ import annotations

import numpy as np
import pyvips

from transform.segment import colour_model, matting


def photo(pixels: np.ndarray) -> pyvips.Image:
    return pyvips.Image.new_from_array(pixels.astype(np.uint8)).copy(interpretation="srgb")


def test_colour_model_learns_colours_from_the_seeds() -> None:
    image = np.zeros((60, 90, 3), dtype=np.float32)
    image[:, :30] = (0.9, 0.1, 0.1)  # red: foreground seeds
    image[:, 30:60] = (0.1, 0.2, 0.9)  # blue: background seeds
    image[:, 60:] = (0.1, 0.9, 0.1)  # green: never seen
    fg = np.zeros((60, 90), dtype=bool)
    fg[:, :20] = True
    bg = np.zeros((60, 90), dtype=bool)
    bg[:, 40:50] = True

    p = colour_model.foreground_posterior(image, fg, bg)

    assert p is not None and p.shape == (60, 90) and p.dtype == np.float32
    assert p[:, 20:30].min() > 0.99  # unseeded red pixels look like the foreground
    assert p[:, 30:40].max() < 0.01
    assert abs(float(p[:, 70].mean()) - 0.5) < 0.01  # an unseen colour stays undecided
    assert colour_model.foreground_posterior(image, fg, np.zeros_like(bg)) is None


def test_fine_edges_decide_unsure_regions_by_colour() -> None:
    # A red object on a blue background. The network got the left half right but was unsure (0.5)
    # over the right half, where the object goes on.
    rng = np.random.default_rng(5)
    height, width = 200, 300
    truth = np.zeros((height, width), dtype=np.float32)
    truth[50:150, 40:260] = 1
    fg, bg = np.array([210, 40, 30.0]), np.array([30, 70, 200.0])
    pixels = truth[..., None] * fg + (1 - truth[..., None]) * bg + rng.normal(0, 3, (height, width, 3))
    network = truth.copy()
    network[:, 150:] = 0.5

    alpha = matting.fine_edges(photo(np.clip(pixels, 0, 255)), network)

    assert alpha.shape == truth.shape and alpha.dtype == np.float32
    assert np.abs(alpha - truth).sum() < 0.1 * np.abs(network - truth).sum()
    assert alpha[100, 200] > 0.95 and alpha[20, 200] < 0.05


def test_fine_edges_without_seeds_keep_the_mask() -> None:
    # Unsure everywhere: there is nothing to learn colours from, so the mask is not invented.
    image = (pyvips.Image.black(120, 80, bands=3) + 90).cast("uchar").copy(interpretation="srgb")
    network = np.full((80, 120), 0.6, dtype=np.float32)
    alpha = matting.fine_edges(image, network)
    assert np.allclose(alpha, 0.6, atol=0.02)


def test_fine_edges_bound_a_huge_unknown_region() -> None:
    # Half the photo unsure: more than MAX_BAND pixels at the working size, so the solve coarsens.
    rng = np.random.default_rng(7)
    height, width = 1000, 1000
    pixels = rng.integers(0, 256, (height, width, 3)).astype(np.float64)
    network = np.zeros((height, width), dtype=np.float32)
    network[:, :250] = 1
    network[:, 500:] = 0.5
    alpha = matting.fine_edges(photo(pixels), network)
    assert alpha.shape == (height, width)
    assert alpha[:, :200].min() > 0.95


def test_band_erosion_is_the_square_one_in_two_passes() -> None:
    """The row-then-column erosion equals erosion by the full square (and is what keeps fine edges on
    long thin images from costing seconds)."""
    from scipy.ndimage import binary_erosion

    rng = np.random.default_rng(3)
    for shape, band in [((162, 1500), 48), ((120, 90), 8), ((9, 40), 3), ((5, 5), 1)]:
        mask = binary_erosion(rng.random(shape) > 0.2)
        square = binary_erosion(mask, structure=np.ones((2 * band + 1,) * 2, dtype=bool), border_value=1)
        assert np.array_equal(matting._erode(mask, band), square), (shape, band)
