"""Fine edges: closed-form alpha matting of the uncertain band around the mask, for fur and hair.

The network's map is smooth at strand scale. From the refined alpha we derive a trimap (sure
foreground, sure background, and an unknown band between them), then solve Levin, Lischinski & Weiss's
closed-form matting ("A Closed-Form Solution to Natural Image Matting", 2008) for the band only: the
matting Laplacian is built just for the 3x3 windows that touch the band, and the sparse system is
solved by conjugate gradients starting from the refined alpha. Work happens at a capped resolution
(``WORK_PIXELS``; the band is capped too, ``MAX_BAND``), and the result is brought to full size with a
guided upsampling, so memory stays bounded whatever the photograph's size.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pyvips
from scipy import sparse
from scipy.ndimage import binary_dilation, binary_erosion
from scipy.sparse.linalg import cg

from transform.segment.confidence import score
from transform.segment.guided import F32, apply_full, coefficients, from_numpy, guide_at, resize_to

#: Working resolution cap (pixels). The closed-form system costs about 400 MB per megapixel of band.
WORK_PIXELS = 1_000_000
#: At most this many 3x3 windows go into the Laplacian (about 100 bytes each while building).
MAX_BAND = 250_000
#: Trimap: alpha above HI is sure foreground, below LO sure background, after eroding both by
#: BAND_FRACTION of the working size's longest side.
LO, HI = 0.05, 0.95
BAND_FRACTION = 1 / 128
#: Closed-form matting regulariser and solver settings.
EPS = 1e-7
LAMBDA = 100.0
#: Weight of the network's own alpha inside the band: keeps the solution near it where the photo
#: gives no evidence either way (and makes the system well conditioned).
PRIOR = 1e-4
MAX_ITER = 500
TOLERANCE = 1e-5
#: Below this confidence (``confidence.score`` of the refined alpha) the mask itself is likely wrong,
#: and matting would spread the error along the photo's edges: the alpha is returned unchanged.
MIN_CONFIDENCE = 0.4
#: Guided upsampling of the matte to full size.
UP_RADIUS, UP_EPS = 1, 1e-5


def working_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, math.sqrt(WORK_PIXELS / (width * height)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def fine_edges(guide: pyvips.Image, alpha: F32) -> F32:
    """A sharper, strand-aware version of ``alpha`` (float32, ``guide``'s size, [0, 1])."""
    width, height = working_size(guide.width, guide.height)
    image = guide_at(guide, width, height)
    a0 = _resize(alpha, width, height)
    if score(a0) < MIN_CONFIDENCE:
        return alpha
    band = max(1, round(max(width, height) * BAND_FRACTION))
    unknown = _unknown(a0, band)
    while np.count_nonzero(unknown) > MAX_BAND and band > 1:
        band = max(1, band // 2)
        unknown = _unknown(a0, band)
    if not unknown.any():
        return alpha
    weights = np.where(unknown, np.float32(PRIOR), np.float32(LAMBDA)).astype(np.float32)
    matte = solve(image, a0, weights, unknown)
    if (width, height) == (guide.width, guide.height):
        return matte
    a, b = coefficients(image, matte, UP_RADIUS, UP_EPS)
    return apply_full(guide, a, b)


def _unknown(alpha: F32, band: int) -> npt.NDArray[np.bool_]:
    structure = np.ones((2 * band + 1, 2 * band + 1), dtype=bool)
    fg = binary_erosion(alpha > HI, structure=structure, border_value=1)
    bg = binary_erosion(alpha < LO, structure=structure, border_value=1)
    out: npt.NDArray[np.bool_] = ~(fg | bg)
    return out


def _resize(alpha: F32, width: int, height: int) -> F32:
    if alpha.shape == (height, width):
        return alpha.astype(np.float32, copy=False)
    out = np.asarray(resize_to(from_numpy(alpha), width, height).numpy(), dtype=np.float32)
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
    local = local.reshape(idx.shape)
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
