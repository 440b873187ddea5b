"""Background-removal masks cached per source image, so every size and format of one cut-out shares
one model run (``e_background_removal/c_scale,w_400`` and ``..._w_800`` infer once); faces likewise, one
detection per source image for every face URL."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import pyvips

from cache import BlobStore, Entry, face_key, mask_key
from cutout import metrics
from transform import Plan, faces
from transform.faces import Detector, Face, FaceSource
from transform.faces.centerface import DETECTOR_ID, default_detector
from transform.seam import Mask, MaskSource, Segmenter


class CachedMasks:
    """A ``transform.seam.MaskSource`` that runs the segmenter only on a cache miss."""

    def __init__(self, segmenter: Segmenter, cache: BlobStore) -> None:
        self.segmenter = segmenter
        self.cache = cache

    def storing_while(self, valid: Callable[[], bool]) -> MaskSource:
        """The same masks, but a new one is stored only if ``valid()`` still holds when it is made
        (the original did not change while the model ran)."""
        return partial(self, store=valid)

    def __call__(
        self, image: pyvips.Image, *, key: str, fine_edges: bool, store: Callable[[], bool] = lambda: True
    ) -> Mask:
        cache_key = mask_key(key, self.segmenter.model_id, fine_edges)
        entry = self.cache.get(cache_key)
        if entry is not None:
            alpha = pyvips.Image.new_from_buffer(entry.data, "")
            if (alpha.width, alpha.height) == (image.width, image.height):
                return Mask(alpha, float(entry.meta["confidence"]))
        started = time.perf_counter()
        mask = self.segmenter.segment(image, fine_edges=fine_edges)
        metrics.inference_seconds.observe(time.perf_counter() - started)
        metrics.inference_total.inc()
        if not store():
            return mask
        # PNG is lossless and small for masks; a 6144x6144 alpha is a few hundred KB.
        data = mask.alpha.pngsave_buffer(compression=1)
        self.cache.put(cache_key, Entry.of(data, format="png", confidence=mask.confidence,
                                           width=image.width, height=image.height))
        return mask


class CachedFaces:
    """A ``transform.faces.FaceSource`` that runs the face detector only on a cache miss."""

    def __init__(self, cache: BlobStore, detector: Callable[[], Detector] = default_detector) -> None:
        self.cache = cache
        self.detector = detector

    def storing_while(self, valid: Callable[[], bool]) -> FaceSource:
        return partial(self, store=valid)

    def __call__(
        self, image: pyvips.Image, *, key: str, store: Callable[[], bool] = lambda: True
    ) -> tuple[Face, ...]:
        detector = self.detector()
        cache_key = face_key(key, detector.detector_id)
        entry = self.cache.get(cache_key)
        if entry is not None:
            return faces.decode(entry.data)
        found = detector.detect(image)
        if store():
            self.cache.put(cache_key, Entry.of(faces.encode(found), format="json", faces=len(found)))
        return found


class Segmentation:
    """The segmenter in use (or none) and its cached masks, shared by the resolver (the model is in the
    keys of cut-outs) and the scheduler; ``cutout eager`` loads the model only once a line needs it."""

    def __init__(self, segmenter: Segmenter | None, blobs: BlobStore) -> None:
        self._blobs = blobs
        self.faces = CachedFaces(blobs)
        self.use(segmenter)

    def use(self, segmenter: Segmenter | None) -> None:
        self.segmenter = segmenter
        self.masks = CachedMasks(segmenter, self._blobs) if segmenter is not None else None

    def model_for(self, plan: Plan, *, segmenting: bool | None = None) -> str:
        """The model's id for a plan that removes a background (part of its key), and the face detector's
        for one with a face gravity, else ''. ``segmenting``: whether the model runs, when known better
        than by the plan (not on an animation: ``Prepared.segmenting``)."""
        runs = plan.needs_segmentation if segmenting is None else segmenting
        model = self.segmenter.model_id if runs and self.segmenter is not None else ""
        return f"{model}+{DETECTOR_ID}" if plan.needs_faces else model
