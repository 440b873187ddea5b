"""IsNetSegmenter: photograph -> model input -> probability map -> full-size alpha mask.

Pre-processing follows rembg's recipe for isnet-general-use (model.md recipe B, measured slightly
better than the npm package's): Lanczos resize to the model size, divide by the image's own maximum,
subtract 0.5; the output is min-max normalised before it is brought back to full size.
"""

from __future__ import annotations

import numpy as np
import pyvips

from transform.seam import Mask
from transform.segment.model import FloatArray, Model, Normalization

#: Bump when pre- or post-processing changes what masks look like: it is part of every mask cache key.
PIPELINE_VERSION = "1"
MAX_SIDE = 6144


class IsNetSegmenter:
    """Implements ``transform.seam.Segmenter``; thread-safe (holds nothing mutable)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        recipe = model.config.recipe
        if recipe == "custom":
            n = model.config.norm
            recipe = "m" + "_".join(f"{v:g}" for v in (*n.mean, *n.std))
        self.model_id = f"{model.sha256[:12]}-p{PIPELINE_VERSION}-{recipe}"

    def segment(self, image: pyvips.Image, *, fine_edges: bool) -> Mask:
        rgb = prepare(image)
        raw = self.probability(rgb)
        prob = stretch(raw)
        alpha = _upsample(prob, rgb)
        if fine_edges:
            alpha = _fine_edges(rgb, alpha)
        return Mask(to_uchar(alpha, rgb.width, rgb.height), _confidence(raw))

    def probability(self, rgb: pyvips.Image) -> FloatArray:
        """The model's raw mask (values in [0, 1]) for an sRGB 3-band uchar image, at model size."""
        width, height = self.model.size
        small = rgb.thumbnail_image(width, height=height, size="force")
        return self.model.run(to_batch(small.numpy(), self.model.config.norm))


def prepare(image: pyvips.Image) -> pyvips.Image:
    """Fit into MAX_SIDE, flatten transparency onto white, convert to 3-band 8-bit sRGB, in memory.

    Kept in memory because both the model input and the full-size guide read it.
    """
    if max(image.width, image.height) > MAX_SIDE:
        image = image.thumbnail_image(MAX_SIDE, height=MAX_SIDE)
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.interpretation != "srgb" or image.bands != 3:
        image = image.colourspace("srgb")
    if image.bands > 3:
        image = image.extract_band(0, n=3)
    if image.format != "uchar":
        image = image.cast("uchar")
    return image.copy_memory()


def to_batch(pixels: np.ndarray, norm: Normalization) -> FloatArray:
    x = pixels.astype(np.float32)
    x /= max(float(x.max()), 1e-6) if norm.divide_by_max else 255.0
    x -= np.asarray(norm.mean, dtype=np.float32)
    x /= np.asarray(norm.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[np.newaxis])


def stretch(prob: FloatArray) -> FloatArray:
    lo, hi = float(prob.min()), float(prob.max())
    if hi - lo < 1e-6:
        return prob
    return ((prob - lo) / (hi - lo)).astype(np.float32)


def to_uchar(alpha: np.ndarray | pyvips.Image, width: int, height: int) -> pyvips.Image:
    if isinstance(alpha, np.ndarray):
        data = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        mask = pyvips.Image.new_from_array(data)
    else:
        mask = (alpha * 255.0 + 0.5).cast("uchar") if alpha.format != "uchar" else alpha
    if (mask.width, mask.height) != (width, height) or mask.bands != 1:
        raise ValueError(f"mask is {mask.width}x{mask.height}x{mask.bands}, expected {width}x{height}x1")
    return mask.copy(interpretation="b-w")


def resize_to(prob: FloatArray, width: int, height: int) -> pyvips.Image:
    """Plain Lanczos upsampling of the probability map (rembg's way); float image in [0, 1]."""
    image = pyvips.Image.new_from_array(prob)
    return image.thumbnail_image(width, height=height, size="force").clamp(min=0.0, max=1.0)


def _upsample(prob: FloatArray, guide: pyvips.Image) -> np.ndarray | pyvips.Image:
    try:
        from transform.segment.refine import upsample_mask
    except ImportError:  # until the edge-aware upsampler lands
        return resize_to(prob, guide.width, guide.height)
    result: np.ndarray | pyvips.Image = upsample_mask(prob, guide)
    return result


def _fine_edges(rgb: pyvips.Image, alpha: np.ndarray | pyvips.Image) -> np.ndarray | pyvips.Image:
    try:
        from transform.segment.matting import fine_edges
    except ImportError:  # until the matting step lands
        return alpha
    result: np.ndarray | pyvips.Image = fine_edges(rgb, alpha)
    return result


def _confidence(raw: FloatArray) -> float:
    try:
        from transform.segment.confidence import score
    except ImportError:  # until the confidence score lands: share of decisive pixels
        return float(np.mean((raw < 0.1) | (raw > 0.9)))
    return float(score(raw))
