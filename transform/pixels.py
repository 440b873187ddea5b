"""Small pyvips helpers shared by the ops: alpha handling, canvases, exact resizes, gravity placement.

Images inside the engine are always 8-bit sRGB with 3 bands, or 4 with straight (not premultiplied) alpha.
"""

from __future__ import annotations

import pyvips

# Offsets flip direction by anchor (Cloudinary): east anchors count x leftwards, south ones y upwards.
_ANCHORS: dict[str, tuple[float, float, int, int]] = {
    "north_west": (0.0, 0.0, 1, 1),
    "north": (0.5, 0.0, 1, 1),
    "north_east": (1.0, 0.0, -1, 1),
    "west": (0.0, 0.5, 1, 1),
    "center": (0.5, 0.5, 1, 1),
    "east": (1.0, 0.5, -1, 1),
    "south_west": (0.0, 1.0, 1, -1),
    "south": (0.5, 1.0, 1, -1),
    "south_east": (1.0, 1.0, -1, -1),
}
COMPASS = tuple(_ANCHORS)


#: Rec. 709 luma weights of R, G, B: what e_saturation's grey, e_auto_*'s histograms and e_tint's
#: gradient read as a pixel's lightness.
LUMA = (0.2126, 0.7152, 0.0722)


def luma(rgb: pyvips.Image) -> pyvips.Image:
    """One uchar band: the luma of a 3-band 8-bit image, rounded."""
    return (rgb.recomb(pyvips.Image.new_from_list([list(LUMA)])) + 0.5).cast("uchar")


def has_alpha(image: pyvips.Image) -> bool:
    return image.bands in (2, 4)


def with_alpha(image: pyvips.Image) -> pyvips.Image:
    return image if has_alpha(image) else image.bandjoin(255)


def mask_alpha(image: pyvips.Image, mask: pyvips.Image) -> pyvips.Image:
    """Multiply the image's alpha (opaque if none) by a one-band uchar mask (255 keeps a pixel)."""
    if not has_alpha(image):
        return image.bandjoin(mask).copy(interpretation="srgb")
    alpha = (image.extract_band(3).cast("float") * mask / 255 + 0.5).cast("uchar")
    return image.extract_band(0, n=3).bandjoin(alpha).copy(interpretation="srgb")


def normalize(image: pyvips.Image) -> pyvips.Image:
    """Any decoded image -> 8-bit sRGB (3 bands, or 4 with alpha); embedded ICC profiles honoured."""
    if image.get_typeof("icc-profile-data") != 0 and image.interpretation != "multiband":
        try:
            # Relative colorimetric, the intent of libvips' thumbnail (the shrink-on-load route) and of
            # colourspace(): every route then gives the same colours. It also round-trips what a CMYK
            # file was separated with; perceptual tables (LUT profiles) came out ~18 levels darker.
            image = image.icc_transform("srgb", embedded=True, intent="relative")
        except pyvips.Error:
            pass  # a broken profile is not worth failing the image for: fall back to the plain conversion
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands > 4:
        image = image.extract_band(0, n=4)
    return image.copy(interpretation="srgb")


def solid(width: int, height: int, rgba: list[int]) -> pyvips.Image:
    """A canvas of one colour, 4 bands."""
    return (pyvips.Image.black(width, height) + rgba).cast("uchar").copy(interpretation="srgb")


#: Side of the thumbnail an operation measures the image on (a predominant colour, level histograms):
#: such measures barely move with the size, and a 256-px thumbnail costs a fraction of a render.
MEASURE_SIDE = 256


def measured(image: pyvips.Image) -> pyvips.Image:
    """``image`` shrunk to fit MEASURE_SIDE (as it is, when it fits): what a measure reads."""
    if max(image.width, image.height) > MEASURE_SIDE:
        return image.thumbnail_image(MEASURE_SIDE, height=MEASURE_SIDE)
    return image


def scale_to(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """Resize to exactly width x height (Lanczos; alpha premultiplied while resampling: no dark fringes)."""
    width, height = max(1, width), max(1, height)
    if (width, height) == (image.width, image.height):
        return image
    return image.thumbnail_image(width, height=height, size="force")


def place(
    outer: tuple[int, int], inner: tuple[int, int], gravity: str, dx: int = 0, dy: int = 0
) -> tuple[int, int]:
    """Top-left of an ``inner``-sized box put at ``gravity`` of an ``outer``-sized one, moved by (dx, dy)
    in that anchor's own directions (Cloudinary: +x is leftwards from east anchors, +y upwards from south)."""
    fx, fy, sx, sy = _ANCHORS[gravity]
    left = round((outer[0] - inner[0]) * fx) + sx * dx
    top = round((outer[1] - inner[1]) * fy) + sy * dy
    return left, top


def flatten(image: pyvips.Image, rgba: list[int]) -> pyvips.Image:
    """Composite onto a colour; the result keeps an alpha band only when the colour is not opaque."""
    if not has_alpha(image):
        return image
    if rgba[3] == 255:
        return image.flatten(background=rgba[:3]).cast("uchar").copy(interpretation="srgb")
    under = solid(image.width, image.height, rgba)
    return under.composite2(image, "over").cast("uchar").copy(interpretation="srgb")


def extend(
    image: pyvips.Image, width: int, height: int, left: int, top: int, rgba: list[int]
) -> pyvips.Image:
    """Put ``image`` on a ``width`` x ``height`` canvas of ``rgba`` at (left, top)."""
    if rgba[3] != 255:
        image = with_alpha(image)
        background = rgba
    else:
        background = rgba if has_alpha(image) else rgba[:3]
    return image.embed(left, top, width, height, extend="background", background=background)
