"""The best level's map tidying: small islands off, small holes filled, everything else untouched."""

from __future__ import annotations

import numpy as np

from transform.segment.tidy import HOLE_FRACTION, ISLAND_FRACTION, tidy


def test_small_islands_go_and_small_holes_fill_but_large_ones_stay() -> None:
    prob = np.full((200, 200), 0.1, dtype=np.float32)
    prob[20:120, 20:120] = 0.9  # the object: 10,000 px
    prob[60:63, 60:63] = 0.2  # a pinhole (9 px): filled
    prob[30:60, 80:110] = 0.3  # a hole of 900 px, 9 % of the object: kept
    prob[150:153, 150:153] = 0.8  # a speck (9 px): dropped
    prob[140:190, 20:70] = 0.7  # a second object, 2,500 px (a quarter of the first): kept
    out = tidy(prob)
    assert out is not prob and prob[61, 61] == np.float32(0.2)  # a new array; the input unchanged
    assert np.all(out[60:63, 60:63] == 1.0)
    assert np.all(out[30:60, 80:110] == np.float32(0.3))
    assert np.all(out[150:153, 150:153] == 0.0)
    assert np.all(out[140:190, 20:70] == np.float32(0.7))
    untouched = np.ones_like(prob, dtype=bool)
    for rows, cols in ((slice(60, 63), slice(60, 63)), (slice(150, 153), slice(150, 153))):
        untouched[rows, cols] = False
    assert np.array_equal(out[untouched], prob[untouched])
    assert 0 < HOLE_FRACTION < ISLAND_FRACTION < 1


def test_an_empty_or_uniform_map_is_returned_as_it_is() -> None:
    for prob in (np.zeros((50, 50), dtype=np.float32), np.full((50, 50), 0.9, dtype=np.float32)):
        assert np.array_equal(tidy(prob), prob)
