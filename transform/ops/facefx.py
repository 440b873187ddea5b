"""Effects on the faces the detector finds (transform/faces): ``e_blur_faces[:<strength>]`` and
``e_pixelate_faces[:<square size>]``, Cloudinary's privacy effects. Each face's box is blurred (strength
1-2000, default 500; sigma strength / 20 px, as ``e_blur``) or pixelated into squares (1-200 px, default
5); the rest of the image is untouched, and an image with no face comes back unchanged. Faces come from the
same cached detection as the face gravities (one per original)."""

from __future__ import annotations

import math

import pyvips

from transform.faces import Face
from transform.ops import args, focus
from transform.ops.registry import Action, Ctx, EffectSpec, effect

BLUR_DEFAULT = 500
PIXELATE_DEFAULT = 5


#: Both are lengths on the image (a blur's radius, a square's side): a device pixel ratio multiplies them.
BLUR = args.Level("blur_faces", "blur strength", 1, 2000, BLUR_DEFAULT)
PIXELATE = args.Level("pixelate_faces", "pixel square size", 1, 200, PIXELATE_DEFAULT)
_LEVELS = {level.name: level for level in (BLUR, PIXELATE)}


def _build(name: str, value: int, prefix: str) -> Action:
    canonical = "e_" + _LEVELS[name].render(value)

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        faces = focus.detect(ctx, image, prefix)
        for face in faces:
            image = _treat(image, face, name, value)
        return image

    return Action(canonical, run, faces=True, still_only=f"e_{name}")


def _box(image: pyvips.Image, face: Face) -> tuple[int, int, int, int]:
    left = max(0, math.floor(face.left * image.width))
    top = max(0, math.floor(face.top * image.height))
    right = min(image.width, math.ceil((face.left + face.width) * image.width))
    bottom = min(image.height, math.ceil((face.top + face.height) * image.height))
    return left, top, max(1, right - left), max(1, bottom - top)


def _treat(image: pyvips.Image, face: Face, name: str, value: int) -> pyvips.Image:
    left, top, width, height = _box(image, face)
    if name == "blur_faces":
        sigma = max(0.3, value / 20)
        # Blur a margin of 3 sigma around the box too, so the box's edge averages real neighbours.
        reach = math.ceil(3 * sigma)
        x0, y0 = max(0, left - reach), max(0, top - reach)
        x1, y1 = min(image.width, left + width + reach), min(image.height, top + height + reach)
        area = image.extract_area(x0, y0, x1 - x0, y1 - y0)
        patch = area.gaussblur(sigma).cast("uchar").crop(left - x0, top - y0, width, height)
    else:
        size = min(value, width, height)
        area = image.extract_area(left, top, width, height)
        blocks = area.shrink(size, size)  # each square's mean
        patch = blocks.zoom(size, size).embed(0, 0, width, height, extend="copy")
    return image.insert(patch.cast(image.format).copy(interpretation=image.interpretation), left, top)


effect(
    EffectSpec(
        "blur_faces",
        BLUR.parse,
        BLUR.render,
        lambda value, prefix: _build("blur_faces", value, prefix),
        "blur every face the detector finds: strength 1-2000 (default 500); no face, no change",
        dpr=BLUR.at_dpr,
    )
)
effect(
    EffectSpec(
        "pixelate_faces",
        PIXELATE.parse,
        PIXELATE.render,
        lambda value, prefix: _build("pixelate_faces", value, prefix),
        "pixelate every face the detector finds: squares of 1-200 px (default 5); no face, no change",
        dpr=PIXELATE.at_dpr,
    )
)
