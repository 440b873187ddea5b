"""A global colour model of the photograph's foreground and background, learnt from the mask itself.

Where the network is unsure (alpha between the sure thresholds) its value says little: on the
alphamatting set a mid-grey network pixel is mostly either plain foreground or plain background, and
the photo's colours decide which better than the network's map does. Colour histograms of the pixels
the network *is* sure about (as GrabCut does with its colour models) give, for every colour, the
posterior probability of foreground; ``fine_edges`` uses it as the target alpha of the unsure pixels.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from transform.segment.guided import F32

#: Bins per RGB channel (32^3 = 32,768 cells, 256 KB per histogram at float64).
BINS = 32
#: Smoothing of the histograms, in bins: colours never seen among the seeds borrow from neighbours.
SIGMA = 1.0
#: Fewer seed pixels than this on either side and the model is not trusted (nothing to learn from).
MIN_SEEDS = 64


def foreground_posterior(image: F32, fg: npt.NDArray[np.bool_], bg: npt.NDArray[np.bool_]) -> F32 | None:
    """P(foreground | colour) for every pixel of ``image`` (HxWx3 in [0, 1]), with equal priors, from
    the colours of the seed pixels ``fg`` and ``bg``; None when either side has too few seeds."""
    if np.count_nonzero(fg) < MIN_SEEDS or np.count_nonzero(bg) < MIN_SEEDS:
        return None
    q = np.minimum((image * BINS).astype(np.int32), BINS - 1)
    cells = (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]
    del q
    hist_fg = _density(cells[fg])
    hist_bg = _density(cells[bg])
    # The tiny constants make a colour that neither side has seen come out undecided (0.5).
    posterior = (hist_fg + 1e-9) / (hist_fg + hist_bg + 2e-9)
    out: F32 = posterior.astype(np.float32)[cells]
    return out


def _density(cells: npt.NDArray[np.int32]) -> npt.NDArray[np.float64]:
    counts = np.bincount(cells, minlength=BINS**3).reshape(BINS, BINS, BINS).astype(np.float64)
    smooth = _gaussian(counts)
    return smooth.ravel() / max(float(smooth.sum()), 1.0)


def _gaussian(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Separable Gaussian blur (SIGMA, truncated at 3 SIGMA, zeros outside). In numpy: the histogram is
    tiny, and scipy.ndimage costs a process about 0.3 s to import."""
    r = max(1, round(3 * SIGMA))
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / SIGMA) ** 2)
    taps /= taps.sum()
    for axis in range(x.ndim):
        padded = np.pad(x, [(r, r) if a == axis else (0, 0) for a in range(x.ndim)])
        n = x.shape[axis]
        out = np.zeros_like(x)
        for k, w in enumerate(taps):
            out += w * np.take(padded, np.arange(k, k + n), axis=axis)
        x = out
    return x
