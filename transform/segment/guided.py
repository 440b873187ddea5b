"""Guided-filter primitives shared by the mask refiner, the matting step and the compositor.

Everything heavy runs at a capped *working* resolution in numpy (float32); only the last, local step
(``a . I + b`` with the guided filter's coefficients) runs at full size, lazily in libvips, so memory
stays bounded for 36 MP photographs (He & Sun, "Fast Guided Filter", 2015).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyvips
from scipy.ndimage import uniform_filter

F32 = npt.NDArray[np.float32]


def box(x: F32, r: int) -> F32:
    """Mean over a (2r+1)x(2r+1) window in the first two axes, reflecting at the borders."""
    if r <= 0:
        return x
    size = (2 * r + 1, 2 * r + 1) + (1,) * (x.ndim - 2)
    out: F32 = uniform_filter(x, size=size, mode="reflect")
    return out


def rgb(image: pyvips.Image) -> pyvips.Image:
    """The image as 3-band 8-bit sRGB, alpha dropped."""
    if image.hasalpha():
        image = image.extract_band(0, n=image.bands - 1)
    if image.bands == 1 and image.format == "uchar":
        return image.bandjoin([image, image]).copy(interpretation="srgb")
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.bands > 3:
        image = image.extract_band(0, n=3)
    return image.cast("uchar") if image.format != "uchar" else image


def resize_to(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """Resize to exactly ``width`` x ``height`` (aspect may change): Lanczos down, bilinear-free up."""
    if (image.width, image.height) == (width, height):
        return image
    out = image.resize(width / image.width, vscale=height / image.height, kernel="lanczos3")
    if (out.width, out.height) != (width, height):  # rounding in libvips can leave one pixel off
        out = out.gravity("north-west", width, height, extend="copy")
    return out


def to_numpy(image: pyvips.Image) -> F32:
    """A pyvips image as float32 HxW (one band) or HxWxB."""
    arr = np.asarray(image.numpy(), dtype=np.float32)
    return arr


def from_numpy(arr: F32) -> pyvips.Image:
    return pyvips.Image.new_from_array(np.ascontiguousarray(arr, dtype=np.float32))


def map_at(alpha: pyvips.Image, width: int, height: int) -> F32:
    """A one-band 8-bit map as float32 HxW in [0, 1] at the given size."""
    out = to_numpy(resize_to(alpha.cast("float") / 255, width, height))
    return np.clip(out, 0, 1, out=out)


def work_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def guide_at(image: pyvips.Image, width: int, height: int) -> F32:
    """The photograph as float32 HxWx3 in [0, 1] at the given size."""
    return to_numpy(resize_to(rgb(image), width, height)) / np.float32(255)


def coefficients(guide: F32, p: F32, r: int, eps: float) -> tuple[F32, F32]:
    """Colour guided filter (He, Sun, Tang 2013): per-pixel ``A`` (HxWx3) and ``b`` (HxW), already
    averaged over the window, so that the filtered output is ``sum(A * guide, axis=2) + b``."""
    mean_i = box(guide, r)
    mean_p = box(p, r)
    cov = box(guide * p[..., None], r) - mean_i * mean_p[..., None]

    def var(i: int, j: int) -> F32:
        return box(guide[..., i] * guide[..., j], r) - mean_i[..., i] * mean_i[..., j]

    e = np.float32(eps)
    a11, a12, a13 = var(0, 0) + e, var(0, 1), var(0, 2)
    a22, a23, a33 = var(1, 1) + e, var(1, 2), var(2, 2) + e
    c11 = a22 * a33 - a23 * a23
    c12 = a13 * a23 - a12 * a33
    c13 = a12 * a23 - a13 * a22
    c22 = a11 * a33 - a13 * a13
    c23 = a13 * a12 - a11 * a23
    c33 = a11 * a22 - a12 * a12
    det = a11 * c11 + a12 * c12 + a13 * c13
    cv0, cv1, cv2 = cov[..., 0], cov[..., 1], cov[..., 2]
    rows = ((c11, c12, c13), (c12, c22, c23), (c13, c23, c33))
    a = np.stack([r0 * cv0 + r1 * cv1 + r2 * cv2 for r0, r1, r2 in rows], axis=2) / det[..., None]
    b = mean_p - np.sum(a * mean_i, axis=2)
    return box(a.astype(np.float32), r), box(b.astype(np.float32), r)


def apply_full(image: pyvips.Image, a: F32, b: F32) -> F32:
    """``sum(A * I) + b`` at the photograph's full size, clipped to [0, 1], with ``A`` and ``b`` upsampled
    bilinearly from the working size. Runs in libvips tiles: only the float32 result is held whole."""
    width, height = image.width, image.height
    if a.shape[:2] == (height, width):
        guide = guide_at(image, width, height)
        full: F32 = np.sum(a * guide, axis=2) + b
        return np.clip(full, 0, 1, out=full)
    coef = from_numpy(np.concatenate([a, b[..., None]], axis=2))
    coef = coef.resize(width / coef.width, vscale=height / coef.height, kernel="linear")
    coef = coef.gravity("north-west", width, height, extend="copy")
    guide = rgb(image).cast("float") / 255
    q = (coef.extract_band(0, n=3) * guide).bandmean() * 3 + coef.extract_band(3)
    out = to_numpy(q.cast("float"))
    return np.clip(out, 0, 1, out=out)
