"""Content-aware padding: ``c_fill_pad`` (with ``g_auto``) and ``b_auto[:<mode>]``, the padding colour
taken from the image.

``c_fill_pad`` (Cloudinary: "tries to prevent a bad crop by first attempting fill, adding padding if more
of the image needs to be included"; only with ``g_auto``) always delivers exactly w x h. Where the
image's interesting content (edges and colourfulness, as libvips' attention crop weighs them) fits the
window ``c_fill`` would cut, it is that fill, placed on the content. Where it does not, the image is
scaled down just enough for the content to span the window across the cropped axis, and the other axis is
padded (``b_``, ``b_auto``, else transparent or white as with ``c_pad``): between fill and pad, never
cutting the content.

``b_auto`` modes (the reference's single-colour ones): ``border`` (default) is the most frequent colour of
the image's border pixels, ``predominant`` of all its pixels; ``border_contrast`` and
``predominant_contrast`` the colour contrasting most with that one (opposite hue, lightness mirrored away
from mid-grey). Gradient modes and palettes are refused with a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyvips

from grammar.errors import InvalidArgument
from transform import pixels
from transform.limits import Limits, check_output, check_sides
from transform.ops.args import Color

if TYPE_CHECKING:
    from transform.ops.resize import Resize

AUTO_MODES = ("border", "predominant", "border_contrast", "predominant_contrast")
#: Share of the interesting content c_fill_pad keeps in view along the cropped axis.
KEEP = 0.9
#: Padding thinner than this share of the padded side is not worth it: fill instead.
SNAP = 0.95
#: Side of the thumbnail the content and colours are measured on.
PROBE = 128


@dataclass(frozen=True)
class AutoBackground:
    mode: str = "border"

    def __str__(self) -> str:
        return "auto" if self.mode == "border" else f"auto:{self.mode}"


def parse_auto(key: str, value: str) -> AutoBackground:
    mode = value.removeprefix("auto").removeprefix(":") or "border"
    if mode not in AUTO_MODES:
        unsupported = "gradient" in mode or "palette" in mode
        why = " (gradient modes and palettes are not supported)" if unsupported else ""
        raise InvalidArgument(key, value, f"b_auto takes one of {', '.join(AUTO_MODES)}{why}")
    return AutoBackground(mode)


def resolve(background: Color | AutoBackground | None, image: pyvips.Image) -> Color | None:
    """The colour a pad gets: b_auto's is measured on ``image`` (the image being padded)."""
    if not isinstance(background, AutoBackground):
        return background
    mode = background.mode
    r, g, b = _predominant(image, border=mode.startswith("border"))
    if mode.endswith("_contrast"):
        r, g, b = _contrasting(r, g, b)
    return Color(r, g, b, 255, f"rgb:{r:02x}{g:02x}{b:02x}")


def _probe(image: pyvips.Image) -> pyvips.Image:
    return pixels.with_alpha(image).thumbnail_image(PROBE, height=PROBE).cast("uchar")


def _predominant(image: pyvips.Image, *, border: bool) -> tuple[int, int, int]:
    """The mean colour of the most populated cell of a 16x16x16 RGB histogram (opaque pixels only)."""
    import numpy as np  # only when a b_auto is rendered: keeps numpy out of every process's start-up

    small = np.asarray(_probe(image).numpy(), dtype=np.int32)
    if border:
        edge = max(1, min(small.shape[:2]) // 16)
        keep = np.zeros(small.shape[:2], dtype=bool)
        keep[:edge, :] = keep[-edge:, :] = keep[:, :edge] = keep[:, -edge:] = True
        small = small[keep]
    else:
        small = small.reshape(-1, small.shape[-1])
    opaque = small[small[:, 3] >= 128][:, :3]
    if len(opaque) == 0:
        return 255, 255, 255
    cells = (opaque[:, 0] // 16) * 256 + (opaque[:, 1] // 16) * 16 + opaque[:, 2] // 16
    top = np.bincount(cells).argmax()
    mean = opaque[cells == top].mean(axis=0)
    return int(round(mean[0])), int(round(mean[1])), int(round(mean[2]))


def _contrasting(r: int, g: int, b: int) -> tuple[int, int, int]:
    """Opposite hue, lightness mirrored (and kept well away from mid-grey, where mirroring changes little)."""
    lch = (pyvips.Image.black(1, 1) + [r, g, b]).cast("uchar").copy(interpretation="srgb").colourspace("lch")
    lightness, chroma, hue = lch.getpoint(0, 0)
    lightness = 100 - lightness
    if abs(lightness - 50) < 30:
        lightness = 90.0 if lightness >= 50 else 10.0
    out = pyvips.Image.black(1, 1) + [lightness, chroma, (hue + 180) % 360]
    rgb = out.cast("float").copy(interpretation="lch").colourspace("srgb").getpoint(0, 0)
    red, green, blue = (min(255, max(0, int(round(c)))) for c in rgb[:3])
    return red, green, blue


def content_span(image: pyvips.Image, horizontal: bool) -> tuple[float, float]:
    """Where the interesting content lies along one axis, as fractions (0..1) of the image: the central
    KEEP share of its attention (edges plus colourfulness)."""
    small = _probe(image).extract_band(0, n=3).copy(interpretation="srgb")
    edges = small.colourspace("b-w").extract_band(0).sobel().cast("float")
    chroma = small.colourspace("lch").extract_band(1)
    columns, rows = (edges + chroma).project()
    profile = columns if horizontal else rows
    values = [profile.getpoint(i, 0)[0] if horizontal else profile.getpoint(0, i)[0]
              for i in range(profile.width if horizontal else profile.height)]  # fmt: skip
    total = sum(values)
    if total <= 0:
        return 0.0, 1.0
    margin = total * (1 - KEEP) / 2
    low, high, running = 0, len(values) - 1, 0.0
    for index, value in enumerate(values):
        running += value
        if running <= margin:
            low = index + 1
        if running < total - margin:
            high = index + 1
    high = max(high, low)
    return low / len(values), (high + 1) / len(values)


def fill_pad(spec: Resize, image: pyvips.Image, width: int, height: int, limits: Limits) -> pyvips.Image:
    iw, ih = image.width, image.height
    check_output(width, height, limits)
    fill = max(width / iw, height / ih)
    horizontal = iw * fill > width  # which axis fill would crop
    target, length = (width, iw) if horizontal else (height, ih)
    low, high = content_span(image, horizontal)
    # Fill when the content fits the window fill leaves, else just small enough for it to span the window.
    scale = min(fill, target / ((high - low) * length))
    if scale >= fill * SNAP:
        scale = fill  # a pad a few pixels thin looks like a mistake; cutting a little more does not
    scaled_w, scaled_h = max(1, round(iw * scale)), max(1, round(ih * scale))
    check_sides(scaled_w, scaled_h)
    colour = resolve(spec.background, image)
    image = pixels.scale_to(image, scaled_w, scaled_h)
    size = scaled_w if horizontal else scaled_h
    start = min(max(round((low + high) / 2 * size - target / 2), 0), max(0, size - target))
    if horizontal:
        image = image.extract_area(start, 0, min(width, scaled_w), scaled_h)
    else:
        image = image.extract_area(0, start, scaled_w, min(height, scaled_h))
    if (image.width, image.height) == (width, height):
        return image
    if colour is not None:
        image = pixels.flatten(image, colour.rgba)
    rgba = colour.rgba if colour else ([0, 0, 0, 0] if pixels.has_alpha(image) else [255, 255, 255, 255])
    left, top = pixels.place((width, height), (image.width, image.height), "center")
    return pixels.extend(image, width, height, left, top, rgba)
