"""Guided-filter primitives shared by the mask refiner, the matting step and the compositor.

Everything heavy runs at a capped *working* resolution in numpy (float32); only the last, local step
(``a . I + b`` with the guided filter's coefficients) runs at full size, lazily in libvips, so memory
stays bounded for 36 MP photographs (He & Sun, "Fast Guided Filter", 2015).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pyvips

F32 = npt.NDArray[np.float32]

#: Threads for ``coefficients`` on large maps, and the fewest rows worth a thread of their own.
MAX_THREADS = 4
MIN_BAND_ROWS = 256


def box(x: F32, r: int) -> F32:
    """Mean over a (2r+1)x(2r+1) window in the first two axes (HxW or HxWxC), reflecting at the
    borders (the edge pixel repeated, as scipy.ndimage's ``reflect``)."""
    if r <= 0:
        return x
    if x.ndim == 2:
        plane: F32 = box_planes(x[np.newaxis], r)[0]
        return plane
    planes = box_planes(np.ascontiguousarray(np.moveaxis(x, -1, 0)), r)
    return np.ascontiguousarray(np.moveaxis(planes, 0, -1))


def box_planes(x: F32, r: int) -> F32:
    """``box`` for a stack of planes (CxHxW), each filtered on its own.

    Running sums in numpy rather than scipy.ndimage: importing scipy costs a whole process about
    0.3 s, more than all the filtering. Planes keep each channel contiguous (interleaved channels made
    every later per-channel operation strided, twice as slow). Sums are float64: in float32 a running
    sum over 2000 pixels drifts by ~1e-4, a tenth of the guided filter's regulariser."""
    if r <= 0:
        return x
    if r <= SMALL_RADIUS:
        return _box_small(x, r)
    c, h, w = x.shape
    scale = 1.0 / (2 * r + 1)
    # Down the columns: one whole row per step (np.cumsum along a non-last axis walks memory column
    # by column and was 5-10x slower).
    padded = np.pad(x, ((0, 0), (r, r), (0, 0)), mode="symmetric")
    rows = np.empty(x.shape, dtype=np.float32)
    acc = padded[:, : 2 * r + 1].sum(axis=1, dtype=np.float64)
    np.multiply(acc, scale, out=rows[:, 0], casting="unsafe")
    for i in range(1, h):
        acc += padded[:, i + 2 * r]
        acc -= padded[:, i - 1]
        np.multiply(acc, scale, out=rows[:, i], casting="unsafe")
    # Along the rows: a cumulative sum over the contiguous last axis, one extra element in front so
    # that the window sum of output j is sums[j + 2r + 1] - sums[j].
    sums = np.cumsum(np.pad(rows, ((0, 0), (0, 0), (r + 1, r)), mode="symmetric"), axis=2, dtype=np.float64)
    out = sums[..., 2 * r + 1 :]
    out -= sums[..., :w]
    out *= scale
    return out.astype(np.float32)


#: Up to this radius a window sum is ``2r + 1`` shifted slices added in float32: no running sum, so
#: nothing drifts, and 2r + 1 whole-array adds beat a Python loop over the rows (the guided upsampler's
#: r = 2 at 400 px: 22 -> 5 ms for its 13 planes; r = 4 at 1024 px: 141 -> 98 ms).
SMALL_RADIUS = 8


def _box_small(x: F32, r: int) -> F32:
    _, h, w = x.shape
    window = 2 * r + 1
    padded = np.pad(x, ((0, 0), (r, r), (0, 0)), mode="symmetric")
    columns = padded[:, 0:h].copy()
    for d in range(1, window):
        columns += padded[:, d : d + h]
    padded = np.pad(columns, ((0, 0), (0, 0), (r, r)), mode="symmetric")
    out = padded[:, :, 0:w].copy()
    for d in range(1, window):
        out += padded[:, :, d : d + w]
    out *= np.float32(1.0 / (window * window))
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
    # pyvips squeezes a 1x1 one-band image to a 0-d array.
    shape = (image.height, image.width) if image.bands == 1 else (image.height, image.width, image.bands)
    return arr.reshape(shape)


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
    averaged over the window, so that the filtered output is ``sum(A * guide, axis=2) + b``.

    numpy runs on one core; large maps are cut into horizontal bands filtered in threads (numpy
    releases the GIL inside its loops). Each band reaches ``2r`` rows into its neighbours (two window
    means of radius ``r``), so the result is the same as in one piece."""
    height = p.shape[0]
    parts = min(len(os.sched_getaffinity(0)), MAX_THREADS, height // MIN_BAND_ROWS)
    if parts < 2:
        return _coefficients(guide, p, r, eps)
    cuts = [round(height * k / parts) for k in range(parts + 1)]
    bands = list(itertools.pairwise(cuts))
    spans = [(max(0, lo - 2 * r), min(height, hi + 2 * r)) for lo, hi in bands]
    with ThreadPoolExecutor(parts) as pool:
        done = list(pool.map(lambda s: _coefficients(guide[s[0] : s[1]], p[s[0] : s[1]], r, eps), spans))
    keep = [slice(lo - s0, hi - s0) for (lo, hi), (s0, _) in zip(bands, spans, strict=True)]
    a = np.concatenate([part[0][k] for part, k in zip(done, keep, strict=True)])
    b = np.concatenate([part[1][k] for part, k in zip(done, keep, strict=True)])
    return a, b


def _coefficients(guide: F32, p: F32, r: int, eps: float) -> tuple[F32, F32]:
    g = np.ascontiguousarray(np.moveaxis(guide, -1, 0), dtype=np.float32)
    g0, g1, g2 = g
    # Every window mean the filter needs, in one pass over one stack of planes: I (3), p, I p (3), and
    # the six distinct products I_i I_j.
    stack = np.empty((13, *p.shape), dtype=np.float32)
    stack[0:3] = g
    stack[3] = p
    np.multiply(g, p, out=stack[4:7])
    for k, (i, j) in enumerate(((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))):
        np.multiply(g[i], g[j], out=stack[7 + k])
    del g, g0, g1, g2
    means = box_planes(stack, r)
    del stack
    m0, m1, m2, mean_p = means[0], means[1], means[2], means[3]
    cv0, cv1, cv2 = means[4] - m0 * mean_p, means[5] - m1 * mean_p, means[6] - m2 * mean_p
    e = np.float32(eps)
    a11, a12, a13 = means[7] - m0 * m0 + e, means[8] - m0 * m1, means[9] - m0 * m2
    a22, a23, a33 = means[10] - m1 * m1 + e, means[11] - m1 * m2, means[12] - m2 * m2 + e
    c11 = a22 * a33 - a23 * a23
    c12 = a13 * a23 - a12 * a33
    c13 = a12 * a23 - a13 * a22
    c22 = a11 * a33 - a13 * a13
    c23 = a13 * a12 - a11 * a23
    c33 = a11 * a22 - a12 * a12
    inv_det = 1 / (a11 * c11 + a12 * c12 + a13 * c13)
    ab = np.empty((4, *p.shape), dtype=np.float32)
    for k, (r0, r1, r2) in enumerate(((c11, c12, c13), (c12, c22, c23), (c13, c23, c33))):
        ab[k] = (r0 * cv0 + r1 * cv1 + r2 * cv2) * inv_det
    ab[3] = mean_p - (ab[0] * m0 + ab[1] * m1 + ab[2] * m2)
    ab = box_planes(ab, r)
    return np.moveaxis(ab[:3], 0, -1), ab[3]


def affine_image(image: pyvips.Image, a: F32, b: F32, *, scale: float = 1.0) -> pyvips.Image:
    """``scale * (sum(A * I) + b)``, ``I`` the photograph in [0, 1], as a lazy one-band float libvips
    image of the photograph's full size, with ``A`` and ``b`` upsampled bilinearly from their own size.
    Nothing is computed (or held whole) until the caller asks for pixels; libvips then works in tiles."""
    width, height = image.width, image.height
    # Folding the 1/255 of the 8-bit guide and ``scale`` into the small coefficient arrays saves two
    # full-size multiplications per pixel.
    coef = np.concatenate([a * np.float32(scale / 255), (b * np.float32(scale))[..., None]], axis=2)
    vcoef = from_numpy(coef)
    if (vcoef.width, vcoef.height) != (width, height):
        vcoef = vcoef.resize(width / vcoef.width, vscale=height / vcoef.height, kernel="linear")
        vcoef = vcoef.gravity("north-west", width, height, extend="copy")
    guide = rgb(image)
    q: pyvips.Image = (vcoef.extract_band(0, n=3) * guide).bandmean() * 3 + vcoef.extract_band(3)
    return q


def apply_full(image: pyvips.Image, a: F32, b: F32) -> F32:
    """``sum(A * I) + b`` at the photograph's full size, clipped to [0, 1], with ``A`` and ``b`` upsampled
    bilinearly from the working size. Runs in libvips tiles: only the float32 result is held whole."""
    out = to_numpy(affine_image(image, a, b).cast("float"))
    return np.clip(out, 0, 1, out=out)


def apply_uchar(image: pyvips.Image, a: F32, b: F32) -> pyvips.Image:
    """``apply_full`` as a one-band 8-bit image (0..255, rounded) held in memory, without any
    full-size float array.

    Most of a mask is flat: where the coefficients around a block bound its output below 0.5 or above
    254.5 (bilinear weights are convex, and the photo lies in [0, 1]), the block is filled with 0 or
    255 without computing it. The other blocks (about a sixth of a 12 MP portrait) are computed by
    libvips, one crop of the lazy full-size image per run of neighbouring blocks."""
    width, height = image.width, image.height
    q = (affine_image(image, a, b, scale=255.0) + 0.5).cast("uchar")  # cast clamps, +0.5 rounds
    state = _block_states(a, b, width, height)
    if state is None:
        out: pyvips.Image = q.copy(interpretation="b-w").copy_memory()
        return out
    states, xs, ys = state
    pixels = np.empty((height, width), dtype=np.uint8)
    for row, (y0, y1) in enumerate(itertools.pairwise(ys)):
        col = 0
        while col < len(xs) - 1:
            end = col + 1
            while end < len(xs) - 1 and states[row, end] == states[row, col]:
                end += 1
            x0, x1 = xs[col], xs[end]
            if states[row, col] == _ACTIVE:
                pixels[y0:y1, x0:x1] = q.crop(x0, y0, x1 - x0, y1 - y0).numpy().reshape(y1 - y0, x1 - x0)
            else:
                pixels[y0:y1, x0:x1] = 255 if states[row, col] == _OPAQUE else 0
            col = end
    return pyvips.Image.new_from_array(pixels, interpretation="b-w")


#: ``apply_uchar`` blocks: this many coefficient pixels a side, and their states.
BLOCK = 32
_CLEAR, _OPAQUE, _ACTIVE = 0, 1, 2
#: Below this share of flat blocks, one whole-image pass is cheaper than many crops.
MIN_FLAT_SHARE = 0.3


def _block_states(
    a: F32, b: F32, width: int, height: int
) -> tuple[npt.NDArray[np.int8], list[int], list[int]] | None:
    """Per block of BLOCK x BLOCK coefficient pixels: clear, opaque or active, and the blocks' edges
    in full-size pixels; None when too few blocks are flat to be worth skipping."""
    h, w = b.shape
    if (w, h) == (width, height):
        return None
    hi = b + np.clip(a, 0, None).sum(axis=2)  # the most (A . I + b) can be for I in [0, 1]^3
    lo = b + np.clip(a, None, 0).sum(axis=2)
    # Margins of 0.1 of a grey level against float rounding in libvips.
    clear, opaque = hi < 0.4 / 255, lo > 1 - 0.4 / 255
    rows, cols = -(-h // BLOCK), -(-w // BLOCK)
    states = np.full((rows, cols), _ACTIVE, dtype=np.int8)
    for by in range(rows):
        # Two coefficient pixels of margin: the bilinear support of a block's pixels, whichever
        # pixel-centre convention the resize uses.
        sy = slice(max(0, by * BLOCK - 2), min(h, (by + 1) * BLOCK + 2))
        for bx in range(cols):
            sx = slice(max(0, bx * BLOCK - 2), min(w, (bx + 1) * BLOCK + 2))
            if clear[sy, sx].all():
                states[by, bx] = _CLEAR
            elif opaque[sy, sx].all():
                states[by, bx] = _OPAQUE
    if np.count_nonzero(states != _ACTIVE) < MIN_FLAT_SHARE * states.size:
        return None
    xs = [min(width, round(bx * BLOCK * width / w)) for bx in range(cols)] + [width]
    ys = [min(height, round(by * BLOCK * height / h)) for by in range(rows)] + [height]
    return states, xs, ys
