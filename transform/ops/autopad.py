"""Content-aware padding: ``c_fill_pad`` (with ``g_auto``) and ``b_auto[:<mode>]``, the padding colour
taken from the image.

``c_fill_pad`` (Cloudinary: "tries to prevent a bad crop by first attempting fill, adding padding if more
of the image needs to be included"; only with ``g_auto``) always delivers exactly w x h. Where the
image's interesting content (edges and colourfulness, as libvips' attention crop weighs them) fits the
window ``c_fill`` would cut, it is that fill, placed on the content. Where it does not, the image is
scaled down just enough for the content to span the window across the cropped axis, and the other axis is
padded (``b_``, ``b_auto``, else transparent or white as with ``c_pad``): between fill and pad, never
cutting the content.

``b_auto[:<mode>][:<number>][:<direction>][:palette_<colour>_<colour>...]``, as the reference writes it.
Single-colour modes: ``border`` (default) is the most frequent colour of the image's border pixels,
``predominant`` of all its pixels; ``border_contrast`` and ``predominant_contrast`` the colour contrasting
most with that one (opposite hue, lightness mirrored away from mid-grey). Gradient modes
(``border_gradient``, ``predominant_gradient``, and their ``_contrast`` forms) fade between the 2 or 4
(``number``, default 2) most frequent colours (or their contrasts): 2 colours along ``direction``
(``horizontal``, the default, left to right; ``vertical``, top to bottom; ``diagonal_desc``, top left to
bottom right; ``diagonal_asc``, bottom left to top right), 4 colours from the four corners (top left, top
right, bottom left, bottom right; the reference: "each gets interpolated between the four corners and this
parameter is ignored", so a direction given with 4 is accepted and has no effect). A ``palette`` limits
the colours to the named ones: each chosen colour becomes the nearest palette colour.

``b_blurred[:<intensity>][:<brightness>]`` pads with the image itself, scaled to fill the whole frame,
blurred and lightened or darkened: intensity 1-2000 (default 100: a Gaussian of sigma 5 % of the frame's
shorter side; 2000, of its whole side: hardly more than the image's mean colour), brightness -300..100
(default 0; in hundredths of a stop: 100 doubles the light, -100 halves it, -300 leaves an eighth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyvips

from grammar.errors import InvalidArgument
from transform import pixels
from transform.limits import Limits, check_output, check_sides
from transform.ops import args
from transform.ops.args import Color, color

if TYPE_CHECKING:
    from transform.ops.resize import Resize

SOLID_MODES = ("border", "predominant", "border_contrast", "predominant_contrast")
GRADIENT_MODES = ("border_gradient", "predominant_gradient", "border_gradient_contrast",
                  "predominant_gradient_contrast")  # fmt: skip
AUTO_MODES = (*SOLID_MODES, *GRADIENT_MODES)
DIRECTIONS = ("horizontal", "vertical", "diagonal_desc", "diagonal_asc")
_EXPECTED = (
    "b_auto takes auto[:<mode>][:2|4][:<direction>][:palette_<colour>_<colour>...], mode one of "
    + ", ".join(AUTO_MODES) + "; number and direction only with a gradient mode; direction one of "
    + ", ".join(DIRECTIONS)
)
#: Share of the interesting content c_fill_pad keeps in view along the cropped axis.
KEEP = 0.9
#: Padding thinner than this share of the padded side is not worth it: fill instead.
SNAP = 0.95
#: RGB distance between the colours of a gradient, when the image has that many distinct ones.
DISTINCT = 64
#: Side of the thumbnail the content and colours are measured on.
PROBE = 128


@dataclass(frozen=True)
class AutoBackground:
    mode: str = "border"
    number: int | None = None  # gradient modes: 2 or 4 colours
    direction: str | None = None  # gradient modes
    palette: tuple[Color, ...] = ()

    @property
    def gradient(self) -> bool:
        return self.mode in GRADIENT_MODES

    def __str__(self) -> str:
        parts = ["auto"] + ([] if self.mode == "border" and not self.palette else [self.mode])
        parts += [str(self.number)] if self.number else []
        parts += [self.direction] if self.direction else []
        parts += ["palette_" + "_".join(str(c) for c in self.palette)] if self.palette else []
        return ":".join(parts)


@dataclass(frozen=True)
class Gradient:
    """A pad of 2 colours faded along a direction, or 4 from the corners."""

    colours: tuple[Color, ...]
    direction: str = "horizontal"

    def canvas(self, width: int, height: int) -> pyvips.Image:
        """The gradient as an opaque RGB image."""
        x, y = _unit_ramps(width, height)
        if len(self.colours) == 4:
            tl, tr, bl, br = ([float(v) for v in c.rgba[:3]] for c in self.colours)
            top = x * [b - a for a, b in zip(tl, tr, strict=True)] + tl
            bottom = x * [b - a for a, b in zip(bl, br, strict=True)] + bl
            image = top + (bottom - top) * y
        else:
            t = {"horizontal": x, "vertical": y, "diagonal_desc": (x + y) / 2,
                 "diagonal_asc": (x + (1 - y)) / 2}[self.direction]  # fmt: skip
            first, second = ([float(v) for v in c.rgba[:3]] for c in self.colours)
            image = t * [b - a for a, b in zip(first, second, strict=True)] + first
        return (image + 0.5).cast("uchar").copy(interpretation="srgb")


@dataclass(frozen=True)
class BlurredBackground:
    """b_blurred[:<intensity>][:<brightness>], as the URL says it."""

    intensity: int = 100
    brightness: int = 0

    def __str__(self) -> str:
        parts = ["blurred", str(self.intensity)] + ([str(self.brightness)] if self.brightness else [])
        return ":".join(parts if parts[1:] != ["100"] else ["blurred"])


@dataclass(frozen=True)
class Blurred:
    """b_blurred's pad for one image: that image, made into a frame's background."""

    image: pyvips.Image
    spec: BlurredBackground

    def canvas(self, width: int, height: int) -> pyvips.Image:
        """The image scaled to cover ``width`` x ``height`` (centred; its own transparency on white),
        blurred and brightened, as an opaque RGB image."""
        image = self.image
        if pixels.has_alpha(image):
            image = pixels.flatten(image, [255, 255, 255, 255])
        sigma = self.spec.intensity / 100 * 0.05 * min(width, height)
        # Blurred at a scale where sigma is a few pixels (a wide Gaussian costs its width for every
        # pixel), then enlarged: what is smooth at the small scale stays smooth.
        work = min(1.0, _WORK_SIGMA / sigma)
        small_w, small_h = max(1, round(width * work)), max(1, round(height * work))
        cover = max(small_w / image.width, small_h / image.height)
        scaled = pixels.scale_to(image, max(small_w, round(image.width * cover)),
                                 max(small_h, round(image.height * cover)))  # fmt: skip
        left, top = (scaled.width - small_w) // 2, (scaled.height - small_h) // 2
        small = scaled.extract_area(left, top, small_w, small_h)
        blurred = small.gaussblur(max(0.3, sigma * work))
        if work < 1.0:
            blurred = blurred.resize(width / small_w, vscale=height / small_h, kernel="linear")
            blurred = blurred.embed(0, 0, width, height, extend="copy")  # rounding: edge pixels repeated
        lit = blurred * 2 ** (self.spec.brightness / 100)
        return lit.extract_band(0, n=3).cast("uchar").copy(interpretation="srgb")


#: The sigma, in pixels, b_blurred's blur is computed at (see Blurred.canvas).
_WORK_SIGMA = 4.0


def parse_blurred(key: str, value: str) -> BlurredBackground:
    parts = value.split(":")[1:]
    if len(parts) > 2:
        raise InvalidArgument(
            key, value, "b_blurred takes blurred[:<intensity 1-2000>][:<brightness -300..100>]"
        )
    intensity = args.int_in(key, parts[0], "blur intensity", 1, 2000, shown=value) if parts else 100
    brightness = args.int_in(key, parts[1], "brightness", -300, 100, shown=value) if len(parts) > 1 else 0
    return BlurredBackground(intensity, brightness)


def _unit_ramps(width: int, height: int) -> tuple[pyvips.Image, pyvips.Image]:
    """x and y from 0 at the first pixel to 1 at the last, one band each (float)."""
    xyz = pyvips.Image.xyz(width, height)
    return xyz[0] / max(1, width - 1), xyz[1] / max(1, height - 1)


def parse_auto(key: str, value: str) -> AutoBackground:
    parts = value.split(":")[1:]
    mode = parts.pop(0) if parts and parts[0] in AUTO_MODES else "border"
    number = direction = None
    palette: tuple[Color, ...] = ()
    if parts and mode in GRADIENT_MODES and parts[0] in ("2", "4"):
        number = int(parts.pop(0))
    if parts and mode in GRADIENT_MODES and parts[0] in DIRECTIONS:
        direction = parts.pop(0)
    if parts and parts[0].startswith("palette_") and len(parts[0]) > len("palette_"):
        names = parts.pop(0).removeprefix("palette_").split("_")
        palette = tuple(color(key, name, "palette colour", shown=value) for name in names)
    if parts:
        raise InvalidArgument(key, value, _EXPECTED)
    return AutoBackground(mode, number, direction, palette)


def resolve(
    background: Color | AutoBackground | BlurredBackground | Gradient | None, image: pyvips.Image
) -> Color | Gradient | Blurred | None:
    """The colour (or gradient) a pad gets: b_auto's is measured on ``image`` (the image being padded);
    one measured already (an animation's, on its first frame) is kept. b_blurred's is ``image`` itself."""
    if isinstance(background, BlurredBackground):
        return Blurred(image, background)
    if not isinstance(background, AutoBackground):
        return background
    mode = background.mode
    count = (background.number or 2) if background.gradient else 1
    found = _predominant(image, border=mode.startswith("border"), count=count)
    if mode.endswith("_contrast"):
        found = [_contrasting(*rgb) for rgb in found]
    if background.palette:
        found = [_nearest(rgb, background.palette) for rgb in found]
    colours = tuple(Color(r, g, b, 255, f"rgb:{r:02x}{g:02x}{b:02x}") for r, g, b in found)
    if background.gradient:
        return Gradient(colours, background.direction or "horizontal")
    return colours[0]


def _nearest(rgb: tuple[int, int, int], palette: tuple[Color, ...]) -> tuple[int, int, int]:
    best = min(palette, key=lambda c: sum((a - b) ** 2 for a, b in zip(c.rgba[:3], rgb, strict=True)))
    return best.r, best.g, best.b


def pad_to(
    image: pyvips.Image, width: int, height: int, left: int, top: int, fill: Color | Gradient | Blurred | None
) -> pyvips.Image:
    """``image`` on a ``width`` x ``height`` canvas at (left, top): of the colour, the gradient or the
    blurred image (which also fill the image's transparent areas, as a colour does), or, with none,
    transparent (an image with alpha) or white."""
    if isinstance(fill, Gradient | Blurred):
        canvas = fill.canvas(width, height)
        return canvas.composite2(pixels.with_alpha(image), "over", x=left, y=top).extract_band(0, n=3).cast(
            "uchar").copy(interpretation="srgb")  # fmt: skip
    if fill is not None:
        image = pixels.flatten(image, fill.rgba)
    rgba = fill.rgba if fill else ([0, 0, 0, 0] if pixels.has_alpha(image) else [255, 255, 255, 255])
    return pixels.extend(image, width, height, left, top, rgba)


def _probe(image: pyvips.Image) -> pyvips.Image:
    return pixels.with_alpha(image).thumbnail_image(PROBE, height=PROBE).cast("uchar")


def _predominant(image: pyvips.Image, *, border: bool, count: int = 1) -> list[tuple[int, int, int]]:
    """The mean colours of the ``count`` most populated cells of a 16x16x16 RGB histogram (opaque pixels
    only), most frequent first; an image with fewer colours repeats its last one."""
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
        return [(255, 255, 255)] * count
    cells = (opaque[:, 0] // 16) * 256 + (opaque[:, 1] // 16) * 16 + opaque[:, 2] // 16
    counts = np.bincount(cells)
    order = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] > 0]
    means = {}
    for cell in order[: 64 if count > 1 else 1]:
        mean = opaque[cells == cell].mean(axis=0)
        means[cell] = (int(round(mean[0])), int(round(mean[1])), int(round(mean[2])))
    # The most frequent colours that differ visibly from those already taken (neighbouring histogram
    # cells are mostly one colour split in two); then, if the image has too few, the next most frequent.
    found: list[tuple[int, int, int]] = []
    for rgb in means.values():
        if len(found) < count and all(sum((a - b) ** 2 for a, b in zip(rgb, o, strict=True)) >= DISTINCT**2
                                      for o in found):  # fmt: skip
            found.append(rgb)
    for rgb in means.values():
        if len(found) < count and rgb not in found:
            found.append(rgb)
    return found + [found[-1]] * (count - len(found))


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
    left, top = pixels.place((width, height), (image.width, image.height), "center")
    return pad_to(image, width, height, left, top, colour)
