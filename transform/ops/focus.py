"""What a crop centres on when its gravity names content: faces (``g_face``, ``g_faces``, their
``:center``/``:auto`` fallbacks, ``g_auto:face[s]``) or the subject (``g_auto:subject``,
``g_auto:object``: the background-removal mask's object), and the regions ``c_thumb``, ``c_crop`` and
``c_auto`` cut around it.

Faces come from ``ctx.faces`` (one cached detection per source image); the subject from ``ctx.masks``
(the same cached mask as ``e_background_removal`` of that image, so 423 while it is made). A focus is a
box in fractions of the image, so it survives the scaling ``c_fill`` does before it cuts.

No face found: ``g_face``/``g_faces`` fall back to north, as Cloudinary documents ("defaults to north
gravity if no face is detected"), ``g_face:center`` to the centre, ``g_face:auto`` and ``g_auto:face``
to the automatic (attention) crop. An empty subject mask falls back to the automatic crop.

Custom coordinates (``g_custom``, ``g_custom:face``, ``g_custom:faces``) come from the asset's record
(``ctx.asset.custom``, fractions of the original): the first region is the focus; an asset without any
falls back to the centre, or to the face gravity named.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from grammar.errors import NotAvailable
from transform.faces import Face, largest, union
from transform.faces.centerface import DETECT_SIDE
from transform.ops.registry import Ctx
from transform.seam import fit_for_segmentation

#: gravity -> (which faces, gravity when none is found)
FACE_GRAVITIES = {
    "face": ("largest", "north"),
    "faces": ("all", "north"),
    "face:center": ("largest", "center"),
    "faces:center": ("all", "center"),
    "face:auto": ("largest", "auto"),
    "faces:auto": ("all", "auto"),
    "auto:face": ("largest", "auto"),
    "auto:faces": ("all", "auto"),
}
SUBJECT_GRAVITIES = ("auto:subject", "auto:object")
#: g_custom: the asset's first custom region (the Upload API's ``custom_coordinates``, kept on its record);
#: without one, the gravity named here (Cloudinary: g_custom "defaults to center gravity", g_custom:face
#: and g_custom:faces to face detection).
CUSTOM_GRAVITIES = {"custom": "center", "custom:face": "face", "custom:faces": "faces"}
CONTENT_GRAVITIES = (*FACE_GRAVITIES, *SUBJECT_GRAVITIES, *CUSTOM_GRAVITIES)
#: The content gravities that place a layer (fl_layer_apply,g_faces): on the largest face, on every face
#: (one copy each) or on the subject. The :center/:auto fallbacks name crops, not placements.
PLACING_GRAVITIES = ("face", "faces", "auto:face", "auto:faces", *SUBJECT_GRAVITIES)
#: The gravity a crop gets once its focus is found.
FOCUS = "focus"
#: How much wider and taller than the face box c_thumb's region is at z_1.0: the face about half the
#: thumbnail's height, with hair, neck and some shoulder (the look of Cloudinary's c_thumb,g_face avatars).
FACE_CONTEXT = 2.4
#: The same for a subject: its box and a little room around it.
SUBJECT_CONTEXT = 1.15
#: The same for a custom region: the region itself (the uploader drew it where the crop must go).
CUSTOM_CONTEXT = 1.0
#: Mask value (0-255) from which a pixel counts as subject.
SUBJECT_LEVEL = 128
#: Side of the mask thumbnail the subject's box is measured on.
PROBE = 512


def needs_faces(gravity: str | None) -> bool:
    """Whether the crop may detect faces (g_custom:face does for an asset without custom coordinates)."""
    return gravity in FACE_GRAVITIES or CUSTOM_GRAVITIES.get(gravity or "") in FACE_GRAVITIES


def needs_asset(gravity: str | None) -> bool:
    """Whether the crop reads the asset's record (its custom coordinates)."""
    return gravity in CUSTOM_GRAVITIES


def resolve_custom(gravity: str, ctx: Ctx) -> str:
    """What a custom gravity is for this asset: ``custom`` when its record has custom coordinates, else
    its documented fallback (center, or the face gravity of g_custom:face[s]). Others: as they are."""
    if gravity not in CUSTOM_GRAVITIES:
        return gravity
    return "custom" if ctx.asset.custom else CUSTOM_GRAVITIES[gravity]


def needs_mask(gravity: str | None) -> bool:
    return gravity in SUBJECT_GRAVITIES


def fallback(gravity: str) -> str:
    if gravity in CUSTOM_GRAVITIES:
        return CUSTOM_GRAVITIES[gravity]
    return FACE_GRAVITIES[gravity][1] if gravity in FACE_GRAVITIES else "auto"


def context(gravity: str | None) -> float:
    if gravity in CUSTOM_GRAVITIES:
        return CUSTOM_CONTEXT
    return FACE_CONTEXT if gravity in FACE_GRAVITIES else SUBJECT_CONTEXT


def find(gravity: str, ctx: Ctx, image: pyvips.Image, prefix: str) -> Face | None:
    """The box a content gravity centres on in ``image`` (fractions), or None when there is none."""
    key = f"{ctx.source_key}|{prefix}"
    if gravity in CUSTOM_GRAVITIES:
        # Fractions of the original (kept so by the server): they hold after a resize before the crop.
        first = ctx.asset.custom[0] if ctx.asset.custom else None
        return None if first is None else Face(*first, 1.0)
    if gravity in FACE_GRAVITIES:
        faces = detect(ctx, image, prefix)
        if not faces:
            return None
        return largest(faces) if FACE_GRAVITIES[gravity][0] == "largest" else union(faces)
    if ctx.masks is None:
        raise NotAvailable("Background removal is not available: no segmentation model")
    # The mask e_background_removal of this image would use (same fitting, same key): made once.
    with ctx.uncounted():  # the model
        fitted = fit_for_segmentation(image).copy_memory()
        mask = ctx.masks(fitted, key=key, fine_edges=False)
        return subject_box(mask.alpha)


def regions(gravity: str, ctx: Ctx, image: pyvips.Image, prefix: str) -> tuple[Face, ...]:
    """The boxes a placing gravity puts a layer on (fractions of ``image``): the largest face, every face,
    or the subject; empty when there is none."""
    if gravity in FACE_GRAVITIES:
        faces = detect(ctx, image, prefix)
        if FACE_GRAVITIES[gravity][0] == "largest" and faces:
            return (largest(faces),)
        return faces
    found = find(gravity, ctx, image, prefix)
    return () if found is None else (found,)


def detect(ctx: Ctx, image: pyvips.Image, prefix: str) -> tuple[Face, ...]:
    """The faces in ``image`` (the image after the steps ``prefix`` names), from the cache when known."""
    if ctx.faces is None:
        raise NotAvailable("Face detection is not available on this server")
    # The untouched original: the detector's input decoded with shrink-on-load (a 12-megapixel JPEG at
    # 1/8 scale) rather than the whole image the crop reads. Read only when the detection is not cached.
    seen = ctx.preview(DETECT_SIDE) if prefix == "" and ctx.preview is not None else image
    with ctx.uncounted():  # the detector
        return ctx.faces(seen, key=f"{ctx.source_key}|{prefix}")


def subject_box(alpha: pyvips.Image) -> Face | None:
    """The bounding box of the mask's opaque part, as fractions; None when nothing is opaque."""
    import numpy as np  # only when a subject gravity is rendered

    small = alpha.thumbnail_image(PROBE, height=PROBE) if max(alpha.width, alpha.height) > PROBE else alpha
    values = np.asarray(small.extract_band(0).numpy())
    ys, xs = np.nonzero(values >= SUBJECT_LEVEL)
    if len(ys) == 0:
        return None
    h, w = values.shape
    left, top, right, bottom = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    return Face(left / w, top / h, (right - left) / w, (bottom - top) / h, 1.0)


@dataclass(frozen=True)
class Region:
    left: int
    top: int
    width: int
    height: int


def around(
    size: tuple[int, int],
    focus: Face,
    aspect: float,
    *,
    spread: float,
    zoom: float = 1.0,
    at_least: tuple[float, float] = (0.0, 0.0),
) -> Region:
    """The ``aspect`` (width / height) region of an image of ``size`` holding the focus box grown
    ``spread / zoom`` times (and at least ``at_least`` pixels), centred on the focus, shrunk to fit the
    image and moved inside it."""
    iw, ih = size
    want_w = max(focus.width * iw * spread / zoom, at_least[0], 1.0)
    want_h = max(focus.height * ih * spread / zoom, at_least[1], 1.0)
    width = max(want_w, want_h * aspect)
    height = width / aspect
    shrink = min(1.0, iw / width, ih / height)
    width, height = max(1, min(iw, round(width * shrink))), max(1, min(ih, round(height * shrink)))
    cx, cy = (focus.left + focus.width / 2) * iw, (focus.top + focus.height / 2) * ih
    left = min(max(round(cx - width / 2), 0), iw - width)
    top = min(max(round(cy - height / 2), 0), ih - height)
    return Region(left, top, width, height)


def window(size: tuple[int, int], focus: Face, width: int, height: int, delta: tuple[int, int]) -> Region:
    """A ``width`` x ``height`` window of an image of ``size`` centred on the focus (moved by ``delta``),
    kept inside the image."""
    iw, ih = size
    cx, cy = (focus.left + focus.width / 2) * iw, (focus.top + focus.height / 2) * ih
    left = min(max(round(cx - width / 2) + delta[0], 0), iw - width)
    top = min(max(round(cy - height / 2) + delta[1], 0), ih - height)
    return Region(left, top, width, height)
