"""How sure the network is about a mask, as one number in [0, 1].

The score is ``presence * exp(-K * U / A)`` where, over the probability map ``p``:

* ``U = sum(1 - |2p - 1|)`` is the total *uncertainty*: 0 for a pixel at 0 or 1, 1 for a pixel at 0.5;
* ``A = sum(p > 0.5)`` is the foreground area, so ``U / A`` is the uncertain area per unit of
  foreground. A crisp map is uncertain only along a thin edge and scores close to 1; a mushy one
  (large half-grey regions) scores close to 0. ``K = 4``.
* ``presence = min(1, A / (0.002 * N))`` with ``N`` pixels: a map with (almost) no foreground
  means the network found nothing, which is not a confident cut-out however crisp it is.

What it is worth (bench/RESULTS.md, 2026-12-06): on ecssd_val200 its rank correlation with the mask's
IoU is 0.71, and a score under ``REVIEW_BELOW`` flags 12 of the 16 cut-outs with IoU < 0.7 and 11 of
the 184 others. Where it fails: a crisp mask of the wrong object scores high.

Example: a 100x100 square in a 1024x1024 map, its edge blurred by a Gaussian of sigma 1 px, scores
0.79 (sigma 2: 0.61); blurred into a wide ramp (sigma 10) it scores 0.08.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

K = 4.0
MIN_AREA_FRACTION = 0.002
#: Send a cut-out scoring under this to manual review (chosen on ecssd_val200, checked on
#: ecssd_subset64; the figures are in bench/RESULTS.md and the README).
REVIEW_BELOW = 0.3


def score(prob: npt.NDArray[np.floating]) -> float:
    p = np.asarray(prob, dtype=np.float32)
    if p.size == 0:
        return 0.0
    area = float(np.count_nonzero(p > 0.5))
    if area == 0:
        return 0.0
    uncertainty = float(np.sum(1 - np.abs(2 * p - 1), dtype=np.float64))
    presence = min(1.0, area / (MIN_AREA_FRACTION * p.size))
    return max(0.0, min(1.0, presence * math.exp(-K * uncertainty / area)))
