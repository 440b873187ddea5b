"""Fine edges: closed-form alpha matting of the uncertain band around the mask, for fur and hair.

The network's map is smooth at strand scale, and where it is unsure (mid-grey) its value says little.
First the unsure pixels get their target alpha from a colour model learnt from the sure ones
(``colour_model``). From that target we derive a trimap (sure foreground, sure background, and an
unknown band between them), then solve Levin, Lischinski & Weiss's closed-form matting ("A Closed-Form
Solution to Natural Image Matting", 2008) for the band only: the matting Laplacian is built just for
the 3x3 windows that touch the band, and the sparse system is solved by conjugate gradients starting
from the target, which a weak data term also holds the solution to. Work happens at a capped
resolution (``WORK_PIXELS``; the band is capped too, ``MAX_BAND``, by narrowing it and then by
coarsening the resolution), and the result is brought to full size with a guided upsampling, so
memory stays bounded whatever the photograph's size.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pyvips
from scipy import sparse
from scipy.ndimage import binary_dilation, binary_erosion
from scipy.sparse.linalg import cg

from transform.segment.colour_model import foreground_posterior
from transform.segment.guided import F32, apply_full, coefficients, from_numpy, guide_at, resize_to, to_numpy

#: Contrast gain of the guided upsampling that makes the mask these fine edges start from (the
#: default pipeline's is ``refine.GAIN``). A firmer seed turns unsure pixels "sure" before the colour
#: model sees them. On alphamatting (square Lanczos model input) SAD was 33.8 with 1.0, 32.2 with 1.1,
#: 32.1 with 1.25, 32.9 with 1.4, 33.8 with 1.5 and 36.1 with 1.75 (2026-12-02).
SEED_GAIN = 1.25
#: Working resolution cap (pixels). The closed-form system costs about 400 MB per megapixel of band.
WORK_PIXELS = 1_000_000
#: At most this many 3x3 windows go into the Laplacian (about 100 bytes each while building).
MAX_BAND = 250_000
#: Alpha above HI is sure foreground, below LO sure background: these seed the colour model, and,
#: eroded by BAND_FRACTION of the working size's longest side, fix the trimap. 0.02/0.98 scored a
#: little better than 0.05/0.95 on alphamatting (SAD 36.1 vs 36.4).
LO, HI = 0.02, 0.98
BAND_FRACTION = 1 / 128
#: Closed-form matting regulariser and solver settings.
EPS = 1e-7
LAMBDA = 100.0
#: Weight of the target alpha inside the band: keeps the solution near the colour model's answer
#: where the photo's local colour lines give no evidence either way. 1e-2 to 1e-1 scored alike on
#: alphamatting; 1e-4 (a nearly free solve) let wide unsure regions drift (SAD +2.3).
PRIOR = 1e-2
MAX_ITER = 500
TOLERANCE = 1e-5
#: Guided upsampling of the matte to full size.
UP_RADIUS, UP_EPS = 1, 1e-5


def working_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, math.sqrt(WORK_PIXELS / (width * height)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def fine_edges(guide: pyvips.Image, alpha: F32) -> F32:
    """A sharper, strand-aware version of ``alpha`` (float32, ``guide``'s size, [0, 1])."""
    width, height = working_size(guide.width, guide.height)
    for _ in range(3):
        image = guide_at(guide, width, height)
        target = _target(image, _resize(alpha, width, height))
        unknown = _trimap(target, max(1, round(max(width, height) * BAND_FRACTION)))
        count = np.count_nonzero(unknown)
        if count <= MAX_BAND:
            break
        # Even a one-pixel band is too wide (a photo where the network is unsure almost everywhere):
        # solve at a coarser resolution, so that memory stays bounded.
        scale = 0.9 * math.sqrt(MAX_BAND / count)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    if count > MAX_BAND:
        matte = target
    elif not unknown.any():
        return alpha
    else:
        weights = np.where(unknown, np.float32(PRIOR), np.float32(LAMBDA)).astype(np.float32)
        matte = solve(image, target, weights, unknown)
    if (width, height) == (guide.width, guide.height):
        return matte
    a, b = coefficients(image, matte, UP_RADIUS, UP_EPS)
    return apply_full(guide, a, b)


def _trimap(target: F32, band: int) -> npt.NDArray[np.bool_]:
    """The unknown pixels: a band of ``band`` pixels, narrowed while it holds more than MAX_BAND."""
    unknown = _unknown(target, band)
    while np.count_nonzero(unknown) > MAX_BAND and band > 1:
        band = max(1, band // 2)
        unknown = _unknown(target, band)
    return unknown


def _target(image: F32, alpha: F32) -> F32:
    """``alpha`` with its unsure pixels replaced by the colour model's foreground probability."""
    fg, bg = alpha > HI, alpha < LO
    posterior = foreground_posterior(image, fg, bg)
    if posterior is None:
        return alpha
    return np.where(fg | bg, alpha, posterior).astype(np.float32)


def _unknown(alpha: F32, band: int) -> npt.NDArray[np.bool_]:
    fg = _erode(alpha > HI, band)
    bg = _erode(alpha < LO, band)
    out: npt.NDArray[np.bool_] = ~(fg | bg)
    return out


def _erode(mask: npt.NDArray[np.bool_], band: int) -> npt.NDArray[np.bool_]:
    """Erosion by a (2 band + 1)-pixel square, as a row then a column pass: the same result for a
    fraction of the work (the band grows with the longer side, so a 6144 x 160 banner took 10 s)."""
    rows = binary_erosion(mask, structure=np.ones((1, 2 * band + 1), dtype=bool), border_value=1)
    out: npt.NDArray[np.bool_] = binary_erosion(
        rows, structure=np.ones((2 * band + 1, 1), dtype=bool), border_value=1
    )
    return out


def _resize(alpha: F32, width: int, height: int) -> F32:
    if alpha.shape == (height, width):
        return alpha.astype(np.float32, copy=False)
    out = to_numpy(resize_to(from_numpy(alpha), width, height))
    return np.clip(out, 0, 1, out=out)


def solve(image: F32, target: F32, weights: F32, active: npt.NDArray[np.bool_]) -> F32:
    """Minimise ``a' L a + sum(weights * (a - target)^2)`` over the pixels of ``image`` (HxWx3 in
    [0, 1]) whose 3x3 windows touch ``active``, ``L`` being the closed-form matting Laplacian; other
    pixels keep ``target``. Weights of pixels next to the active area should be large (they are the
    boundary condition)."""
    h, w = target.shape
    centres = _window_centres(active)
    if centres.size == 0:
        return target
    offsets = np.array([dy * w + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dtype=np.int64)
    idx = centres[:, None] + offsets[None, :]  # (n, 9) flat pixel indices of each window
    x = image.reshape(-1, 3)[idx].astype(np.float64)  # (n, 9, 3)
    xc = x - x.mean(axis=1, keepdims=True)
    cov = np.matmul(xc.transpose(0, 2, 1), xc) / 9 + (EPS / 9) * np.eye(3)
    inv = np.linalg.inv(cov)
    vals = np.matmul(np.matmul(xc, inv), xc.transpose(0, 2, 1))
    vals = (np.eye(9)[None] - (1 + vals) / 9).astype(np.float32)
    del x, xc, cov, inv

    touched, local = np.unique(idx, return_inverse=True)
    # int32 indices: the 81 entries per window are the largest arrays of the solve (int64 rows and
    # cols alone took ~400 MB at MAX_BAND).
    local = local.reshape(idx.shape).astype(np.int32)
    m = touched.size
    rows = np.repeat(local, 9, axis=1).ravel()
    cols = np.tile(local, (1, 9)).ravel()
    lap = sparse.csr_matrix((vals.ravel(), (rows, cols)), shape=(m, m), dtype=np.float64)
    del rows, cols, vals

    t = target.reshape(-1)[touched].astype(np.float64)
    d = weights.reshape(-1)[touched].astype(np.float64)
    free = active.reshape(-1)[touched]
    # Pixels outside ``active`` are fixed at ``target``: eliminating them keeps the right-hand side
    # (and so the solver's stopping test) about the free pixels only.
    lap_ff = lap[free][:, free]
    rhs = d[free] * t[free] - lap[free][:, ~free] @ t[~free]
    system = lap_ff + sparse.diags(d[free])
    precond = sparse.diags(1 / np.maximum(system.diagonal(), 1e-12))
    sol, _ = cg(system, rhs, x0=t[free], rtol=TOLERANCE, maxiter=MAX_ITER, M=precond)
    out = target.copy().reshape(-1)
    out[touched[free]] = np.clip(sol, 0, 1)
    return out.reshape(h, w)


def _window_centres(unknown: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Flat indices of the interior pixels whose 3x3 window touches an unknown pixel."""
    near = binary_dilation(unknown, structure=np.ones((3, 3), dtype=bool))
    near[[0, -1], :] = False
    near[:, [0, -1]] = False
    return np.flatnonzero(near).astype(np.int64)
