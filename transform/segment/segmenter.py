"""IsNetSegmenter: photograph -> model input -> probability map -> full-size alpha mask.

Pre-processing follows rembg's recipe for isnet-general-use (model.md recipe B, measured slightly
better than the npm package's): Lanczos resize to the model size (a true Lanczos-3 both ways,
``resample.py``: libvips upscales with bicubic whatever kernel it is given), divide by the image's own
maximum, subtract 0.5; the output is min-max normalised before it is brought back to full size with
the edge-aware upsampler (``refine.py``).

The network sees every photo squeezed to its square training size, as in the recipe. Running it at the
photo's own aspect ratio (``CUTOUT_MODEL_ASPECT=keep``, the default from 2026-12-02 to 2026-12-06) is
0.78x the time for a 4:3 photo and won +0.005 IoU on the 64 photos it was chosen on, but lost the object
almost entirely on some photos nobody had tuned on (ecssd_val200: 0.876 mean IoU against the square
input's 0.894, 24 photos more than 0.05 below the raw model; bench/RESULTS.md, 2026-12-06).

Quality levels (``CUTOUT_QUALITY``): ``default`` runs the network once; ``best`` runs it on the photo
and on its mirror image, at the trained size and again at 3/4 of it (``SMALL_SCALE``: 3.1x the
inference), averages each scale's two maps where they agree (``AGREEMENT``), then the two scales' maps
where those agree (``SCALE_AGREEMENT``), and tidies the hard mask (``tidy.py``: small islands off,
small holes filled) before the same post-processing. Where the trained size's two maps disagree and one
mask holds the other (``NESTED``), the larger is kept alone: one view found a part the other missed;
unless the larger is the mirror's and neither map is sure (``REVIEW_BELOW``): then the photo's own.
"""

from __future__ import annotations

import numpy as np
import pyvips

from transform.seam import SEGMENT_MAX_SIDE as MAX_SIDE
from transform.seam import Mask
from transform.segment.confidence import REVIEW_BELOW, score
from transform.segment.model import (
    QUALITIES,
    FloatArray,
    Model,
    Normalization,
    SegmenterConfigError,
    release_arena,
    stepped,
)
from transform.segment.refine import resize_map, upsample_alpha, upsample_mask
from transform.segment.resample import to_model_size

#: Bump when pre- or post-processing changes what masks look like: it is part of every mask cache key.
PIPELINE_VERSION = "6"  # 6: the square input is the default again; quality levels
#: ``best`` averages the maps of the photo and of its mirror image when their masks (p > 0.5) overlap
#: at least this much (IoU); below it they found different objects, and the more confident map is kept
#: alone (an average of two different objects is half of each). Chosen on ecssd_val200, confirmed on
#: ecssd_subset64 (bench/RESULTS.md, 2026-12-06).
AGREEMENT = 0.9
#: ``best`` also runs the network at this fraction of its trained size (768x768 for 1024x1024; a
#: model with a fixed input runs only the trained size): the object is seen at another scale, and the
#: two scales' maps are averaged where their masks overlap at least ``SCALE_AGREEMENT`` (else the
#: trained size's map is kept). ecssd_val200 0.9085 -> 0.9110 IoU, MAE 0.0237 -> 0.0231; confirmed on
#: ecssd_subset64 0.9434 -> 0.9464, 0.0180 -> 0.0167 (bench/RESULTS.md, session 10). A 7/8 scale
#: scored the same for more time (0.9103); 0.9 as the scales' agreement 0.9103 and 0.9463.
SMALL_SCALE = 0.75
SCALE_AGREEMENT = 0.8
#: Where the photo's and its mirror image's maps disagree at the trained size and at least this much of
#: one's mask lies inside the other's, ``best`` keeps the larger map alone (no average, and the smaller
#: scale does not join): one view found a part of the object the other missed, such as a squirrel's grey
#: tail at p about 0.5, which an average or the smaller scale (which misses it too) would take away
#: again. Otherwise the surer map, as before. ecssd_val200 0.9110 -> 0.9111 IoU, photos under the floor
#: 2 -> 1 (0733 0.684 -> 0.810); ecssd_subset64 0.9464 -> 0.9537, MAE 0.0167 -> 0.0160; alphamatting
#: 0.8534 -> 0.8539, SAD 39.2 -> 38.9 (bench/RESULTS.md, session 15; 0.95 scored 0.9116 on ecssd_val200
#: but put one ecssd_subset64 photo under the floor).
#: Except where the mirror's map is the larger and neither map scores ``REVIEW_BELOW`` (the confidence a
#: person is asked to check; chosen for the score on 2026-12-06, not retuned): neither view is sure,
#: so the mirror's extra part (the sand before the pyramids of ecssd_val200 0021) is not trusted and the
#: photo's own map, the default's, is kept alone. It changes one photo on each ECSSD set and wins both:
#: ecssd_val200 0.9111 -> 0.9114 IoU, MAE 0.0231 -> 0.0228, photos under the floor 1 -> 0 (0021 0.458 ->
#: 0.512); ecssd_subset64 0.9537 -> 0.9544, MAE 0.0160 -> 0.0155 (0752 +0.042); alphamatting unchanged
#: (bench/RESULTS.md, session 16). Any threshold from 0.27 to 0.39 changes the same two photos.
NESTED = 0.98
#: Bumped per quality level when only that level's masks change (its cut-outs' cache keys with it),
#: so that the other levels' cached masks stay valid. 2: ``best`` tidies its map (session 9);
#: 3: and adds the smaller scale (session 10); 4: and keeps the larger of two nested maps (session 15);
#: 5: but not the mirror's when neither is sure (session 16).
LEVEL_VERSIONS = {"best": "5"}


class IsNetSegmenter:
    """Implements ``transform.seam.Segmenter``; thread-safe (holds nothing mutable)."""

    def __init__(self, model: Model, *, quality: str = "default", aspect: bool | None = None) -> None:
        """``aspect``: run the network at the photo's aspect ratio (default: as the model is
        configured, ``CUTOUT_MODEL_ASPECT``); only for a model with a dynamic input."""
        if quality not in QUALITIES:
            raise SegmenterConfigError(f"quality {quality!r}: expected one of {', '.join(QUALITIES)}")
        self.model = model
        self.quality = quality
        self.aspect = model.keep_aspect if aspect is None else aspect
        if self.aspect and not model.dynamic:
            raise SegmenterConfigError(f"the model at {model.config.path} cannot keep the aspect ratio")
        recipe = model.config.recipe
        if recipe == "custom":
            n = model.config.norm
            recipe = "m" + "_".join(f"{v:g}" for v in (*n.mean, *n.std))
        width, height = model.size
        shape = "aspect" if self.aspect else "stretch"
        # Everything that changes the masks: it is part of every mask and cut-out cache key.
        level = f"{quality}{LEVEL_VERSIONS.get(quality, '')}"
        self.model_id = f"{model.sha256[:12]}-p{PIPELINE_VERSION}-{recipe}-{width}x{height}-{shape}-{level}"

    def segment(self, image: pyvips.Image, *, fine_edges: bool) -> Mask:
        rgb = prepare(image)
        release = release_arena(rgb.width, rgb.height, fine_edges=fine_edges)
        if fine_edges:  # the square input's softer map gives the matting its band
            raw = self.probability(rgb, release=release)
        elif self.quality == "best":
            raw = self.averaged(rgb, release=release)
        else:
            raw = self.probability(rgb, release=release, keep_aspect=self.aspect)
        # Confidence reads the raw map: min-max stretching would make an empty scene look decisive.
        confidence = score(raw)
        if not fine_edges:
            mapped = stretch(raw)
            if self.quality == "best":  # the cut-out's map is tidied, not the one confidence reads
                from transform.segment.tidy import tidy  # deferred: scipy, for the best level only

                mapped = tidy(mapped)
            return Mask(upsample_alpha(mapped, rgb), confidence)
        # Deferred: matting needs scipy (sparse solver), whose import costs about 0.3 s a process.
        from transform.segment.matting import SEED_GAIN
        from transform.segment.matting import fine_edges as refine_edges

        alpha = refine_edges(rgb, upsample_mask(stretch(raw), rgb, gain=SEED_GAIN))
        return Mask(to_uchar(alpha, rgb.width, rgb.height), confidence)

    def probability(
        self,
        rgb: pyvips.Image,
        *,
        release: bool = False,
        keep_aspect: bool = False,
        mirror: bool = False,
        size: tuple[int, int] | None = None,
    ) -> FloatArray:
        """The model's raw mask (values in [0, 1]) for an sRGB 3-band uchar image, at the network's
        input size for it: the model size, or the photo's aspect ratio with ``keep_aspect``
        (``Model.input_size``), or ``size`` (width, height; a dynamic model only); ``mirror``: the photo
        goes in mirrored left to right, and the map comes back unmirrored.

        ``release``: the inference gives its memory back when done (``model.release_arena``)."""
        width, height = size or self.model.input_size(rgb.width, rgb.height, keep_aspect=keep_aspect)
        pixels = to_model_size(rgb, width, height)
        if mirror:
            pixels = pixels[:, ::-1]
        prob = self.model.run(to_batch(pixels, self.model.config.norm), release=release)
        return np.ascontiguousarray(prob[:, ::-1]) if mirror else prob

    def averaged(self, rgb: pyvips.Image, *, release: bool = False) -> FloatArray:
        """``best``'s map: the photo and its mirror image at the trained size and at ``SMALL_SCALE``
        of it (``mirrored``), the smaller scale's map joining the trained size's where they agree."""
        if not self.model.dynamic:
            return self.mirrored(rgb, release=release)
        # The arena is given back after the trained size's pair as well when asked: that pair may be
        # the last inference (a kept larger map), and the smaller scale needs less of it.
        trained, held = self.paired(rgb, release=release, nesting=True)
        if held:
            return trained
        side = stepped(min(self.model.size) * SMALL_SCALE)
        small = self.mirrored(rgb, release=release, size=(side, side))
        small = resize_map(small, trained.shape[1], trained.shape[0])
        if overlap(trained, small) < SCALE_AGREEMENT:
            return trained
        # A new array, not in place: see ``mirrored``.
        mean: FloatArray = (trained + small) * np.float32(0.5)
        return mean

    def mirrored(
        self, rgb: pyvips.Image, *, release: bool = False, size: tuple[int, int] | None = None
    ) -> FloatArray:
        """The mean of the photo's and its mirror image's maps where they agree, else the more
        confident of the two (at the trained size, the larger where one mask holds the other)."""
        return self.paired(rgb, release=release, size=size, nesting=size is None)[0]

    def paired(
        self,
        rgb: pyvips.Image,
        *,
        release: bool = False,
        size: tuple[int, int] | None = None,
        nesting: bool = False,
    ) -> tuple[FloatArray, bool]:
        """``mirrored``'s map, and whether it is the larger of two nested masks (``nesting``: looked
        for only when asked, see ``NESTED``)."""
        plain = self.probability(rgb, size=size)
        flipped = self.probability(rgb, release=release, mirror=True, size=size)
        if overlap(plain, flipped) < AGREEMENT:
            sure_plain, sure_flipped = score(plain), score(flipped)
            larger = holder(plain, flipped) if nesting else None
            if larger is flipped and max(sure_plain, sure_flipped) < REVIEW_BELOW:
                # Both views would be sent to a person for review (``REVIEW_BELOW``): the mirror's extra
                # part is not trusted, and the photo's own map (the default's) is kept alone.
                return plain, True
            if larger is not None:
                return larger, True
            return (plain if sure_plain >= sure_flipped else flipped), False
        # A new array, not in place: a caller's model may hand back a map it keeps (bench/quality.py's
        # memo shares one square run among recipe B, the default and fine edges).
        mean: FloatArray = (plain + flipped) * np.float32(0.5)
        return mean, False


def overlap(a: FloatArray, b: FloatArray) -> float:
    """IoU of the two maps' masks (p > 0.5); 1.0 when both are empty."""
    sure_a, sure_b = a > 0.5, b > 0.5
    union = np.count_nonzero(sure_a | sure_b)
    return np.count_nonzero(sure_a & sure_b) / union if union else 1.0


def holder(a: FloatArray, b: FloatArray) -> FloatArray | None:
    """The map whose mask (p > 0.5) is the larger and holds at least ``NESTED`` of the other's (all of
    an empty one), if either does; None when neither holds the other or they are the same size."""
    sure_a, sure_b = a > 0.5, b > 0.5
    size_a, size_b = np.count_nonzero(sure_a), np.count_nonzero(sure_b)
    if size_a == size_b:
        return None
    big, small, size_small = (a, sure_b, size_b) if size_a > size_b else (b, sure_a, size_a)
    held = np.count_nonzero(small & (big > 0.5)) / size_small if size_small else 1.0
    return big if held >= NESTED else None


def prepare(image: pyvips.Image) -> pyvips.Image:
    """Fit into MAX_SIDE, flatten transparency onto white, convert to 3-band 8-bit sRGB, in memory.

    Kept in memory because both the model input and the full-size guide read it.
    """
    if max(image.width, image.height) > MAX_SIDE:
        image = image.thumbnail_image(MAX_SIDE, height=MAX_SIDE)
    if image.hasalpha():
        white = 65535 if image.format == "ushort" else 255  # flatten counts in the image's own range
        image = image.flatten(background=[white] * (image.bands - 1))
    if image.interpretation != "srgb" or image.bands != 3:
        image = image.colourspace("srgb")
    if image.bands > 3:
        image = image.extract_band(0, n=3)
    if image.format != "uchar":
        image = image.cast("uchar")
    return image.copy_memory()


def to_batch(pixels: np.ndarray, norm: Normalization) -> FloatArray:
    """The network's NCHW float input: ``(x / top - mean) / std`` per channel, ``top`` the image's
    maximum (``divide_by_max``) or 255.

    One pass per channel straight from the 8-bit pixels into the planar output, the division folded
    into one scale and one shift: the obvious form (a float copy, three whole-array passes, then a
    transposed copy) cost 6x as long, about 1 % of a small photo's whole background removal."""
    height, width, bands = pixels.shape
    top = max(float(pixels.max()), 1e-6) if norm.divide_by_max else 255.0
    out = np.empty((1, bands, height, width), dtype=np.float32)
    for k in range(bands):
        np.multiply(pixels[..., k], np.float32(1.0 / (top * norm.std[k])), out=out[0, k], dtype=np.float32)
        out[0, k] -= np.float32(norm.mean[k] / norm.std[k])
    return out


def stretch(prob: FloatArray) -> FloatArray:
    lo, hi = float(prob.min()), float(prob.max())
    if hi - lo < 1e-6:
        return prob
    return ((prob - lo) / (hi - lo)).astype(np.float32)


def to_uchar(alpha: FloatArray, width: int, height: int) -> pyvips.Image:
    if alpha.shape != (height, width):
        raise ValueError(f"alpha is {alpha.shape[1]}x{alpha.shape[0]}, expected {width}x{height}")
    # In place: at 6144x6144 every float temporary is another 150 MB.
    scaled = np.multiply(alpha, np.float32(255), dtype=np.float32)
    scaled += np.float32(0.5)
    np.clip(scaled, 0, 255, out=scaled)
    return pyvips.Image.new_from_array(scaled.astype(np.uint8), interpretation="b-w")
