"""Edge-aware upsampling of the network's probability map (1024 px long) to the photograph's size.

A plain stretch of a 1024 map onto a 12 MP photo gives soft, blocky edges. Here the map is first
resized to a working size (the photo's size, capped), then passed through a colour guided filter whose
guide is the photo itself: inside each window the output is an affine function of the photo's colour,
so the mask's edge snaps to the photo's edge. The filter's coefficients are upsampled to full size and
applied to the full-size photo (fast guided filter), which keeps strand-level detail beyond the cap.
A contrast gain around 0.5 then firms up the edge.
"""

from __future__ import annotations

import numpy as np
import pyvips

from transform.segment.guided import (
    F32,
    apply_full,
    apply_uchar,
    coefficients,
    from_numpy,
    guide_at,
    resize_to,
    to_numpy,
    work_size,
)

#: Longest side of the working resolution (the guided filter's coefficients are smooth, so they
#: upsample well; the photo's own detail comes back in the full-size step). 1024 is the network's own
#: resolution: 2048 cost 4x the time for no measured gain (4x-upscaled eval sets, bench/RESULTS.md),
#: 512 lost alphamatting IoU on 800 px photos.
WORK_SIDE = 1024
#: Window radius as a fraction of the working size's longest side, and the regulariser: a small eps
#: follows colour edges closely, a large one keeps the network's own soft map.
RADIUS_FRACTION = 1 / 256
EPS = 1e-3
#: Contrast around 0.5 applied after filtering: the min-max-stretched sigmoid map is too soft at
#: edges. Any gain from 1.25 to 2 lowers MAE on both evaluation sets against none (binary ECSSD wants
#: more, soft alphamatting mattes less; their sum is flat over 1.5-2). 1.5 was chosen with libvips'
#: bicubic model input; with the true Lanczos input (``resample.py``) 1.75 keeps both sets' MAE at or
#: below what 1.5 gave before (bench/RESULTS.md, 2026-12-01). A gain around 0.5 does not move the 0.5
#: threshold, so IoU is unchanged. Fine edges seed their trimap with their own gain
#: (``matting.SEED_GAIN``).
GAIN = 1.75


def upsample_mask(
    prob: F32, guide: pyvips.Image, *, radius: int | None = None, eps: float = EPS, gain: float = GAIN
) -> F32:
    """The probability map ``prob`` (float32 HxW in [0, 1], any size) as a float32 alpha map of
    ``guide``'s full size, in [0, 1], with edges that follow the photograph's edges."""
    a, b = _fit(prob, guide, radius, eps, gain)
    return apply_full(guide, a, b)


def upsample_alpha(
    prob: F32, guide: pyvips.Image, *, radius: int | None = None, eps: float = EPS, gain: float = GAIN
) -> pyvips.Image:
    """``upsample_mask`` as a one-band 8-bit image (0..255), made in libvips tiles straight from the
    small coefficients: at 12 MP this skips three full-size float32 arrays and their passes."""
    a, b = _fit(prob, guide, radius, eps, gain)
    return apply_uchar(guide, a, b)


def _fit(prob: F32, guide: pyvips.Image, radius: int | None, eps: float, gain: float) -> tuple[F32, F32]:
    """The guided filter's coefficients at the working size, with the contrast gain folded in: the
    gain is affine, so ``gain * (A I + b - 0.5) + 0.5`` is ``(gain A) I + gain (b - 0.5) + 0.5``."""
    width, height = work_size(guide.width, guide.height, WORK_SIDE)
    p = resize_map(prob, width, height)
    r = radius if radius is not None else max(1, round(max(width, height) * RADIUS_FRACTION))
    a, b = coefficients(guide_at(guide, width, height), p, r, eps)
    g = np.float32(gain)
    a *= g
    b -= np.float32(0.5)
    b *= g
    b += np.float32(0.5)
    return a, b


def resize_map(prob: F32, width: int, height: int) -> F32:
    out = to_numpy(resize_to(from_numpy(prob), width, height))
    return np.clip(out, 0, 1, out=out)
