"""Synthetic originals, a deterministic stand-in segmenter, and golden thumbnails for the engine's tests.

Goldens are the decoded output itself (RGBA, at most GOLDEN_SIDE px on the longer side), stored losslessly
as ``tests/golden/<name>.png``. Two tolerances must both hold: the mean absolute difference (a global
change of colour or tone) and the share of pixels off by more than PIXEL_STEP levels (a local change: a
sharpened edge, a thin outline, a moved layer). They are tight enough that an effect which does nothing
fails (``test_transform_ops.test_goldens_are_not_the_identity`` checks each effect's golden against the
unchanged image), loose enough for the last bit of a resampler. ``UPDATE_GOLDEN=1`` rewrites them;
``SAVE_OUTPUT_DIR=...`` also writes every rendered output there as a file to look at.

(Until 2026-12 goldens were 16x16 thumbnails compared with a mean tolerance of 4: an e_sharpen doing
nothing differed from its golden by 0.34 and passed.)
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyvips

from grammar import parse_transformation
from transform import Limits, Rendered, compile_plan, negotiate_format, render
from transform.faces import FaceSource
from transform.faces.centerface import detect_faces
from transform.seam import DirectMasks, Mask

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
GOLDEN_SIDE = 192  # e_sharpen's halos still show at this size; larger outputs are reduced to it
MEAN_TOLERANCE = 0.5  # mean |difference| over 0..255, all bands
PIXEL_STEP = 16  # a pixel "differs" when a band is off by more than this
PIXEL_TOLERANCE = 0.002  # share of pixels that may differ


def _xy(width: int, height: int) -> tuple[pyvips.Image, pyvips.Image]:
    xyz = pyvips.Image.xyz(width, height)
    return xyz[0], xyz[1]


def photo(width: int = 320, height: int = 240) -> pyvips.Image:
    """A near-flat blue-grey backdrop (so the stand-in segmenter can find it) with a red disc right of
    centre and a dark square at the top left: enough structure to see crops, flips and gravity."""
    x, y = _xy(width, height)
    backdrop = (x * 12 / width + 170).bandjoin([y * 12 / height + 180, x * 0 + 210])
    disc = ((x - width * 0.62) ** 2 + (y - height * 0.55) ** 2) ** 0.5 < height * 0.28
    square = (x < width * 0.2) & (y < height * 0.25)
    image = disc.ifthenelse([210, 40, 30], square.ifthenelse([30, 40, 60], backdrop))
    return image.cast("uchar").copy(interpretation="srgb")


def cutout(width: int = 200, height: int = 160) -> pyvips.Image:
    """An opaque green ellipse on a transparent background (RGBA)."""
    x, y = _xy(width, height)
    inside = ((x - width / 2) / (width * 0.35)) ** 2 + ((y - height / 2) / (height * 0.35)) ** 2 < 1
    colour = (x * 0 + 40).bandjoin([x * 100 / width + 120, y * 0 + 60])
    return colour.bandjoin(inside.ifthenelse(255, 0)).cast("uchar").copy(interpretation="srgb")


def logo() -> pyvips.Image:
    """An 80x60 yellow rounded badge with transparency."""
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="80" height="60">'
        b'<rect x="4" y="4" width="72" height="52" rx="14" fill="#f5c518"/>'
        b'<rect x="20" y="22" width="40" height="16" fill="#222"/></svg>'
    )
    return pyvips.Image.svgload_buffer(svg).cast("uchar").copy(interpretation="srgb")


def road() -> pyvips.Image:
    """A 480x360 green-to-grey landscape."""
    x, y = _xy(480, 360)
    return (y * 0.3 + 60).bandjoin([x * 0.2 + 90, y * 0.2 + 50]).cast("uchar").copy(interpretation="srgb")


def product() -> pyvips.Image:
    """A 240x180 product shot: an orange box (60..160 x 50..130) on a plain white backdrop."""
    x, y = _xy(240, 180)
    box = (x >= 60) & (x < 160) & (y >= 50) & (y < 130)
    image = box.ifthenelse([230, 120, 20], [255, 255, 255])
    return image.cast("uchar").copy(interpretation="srgb")


def oriented() -> pyvips.Image:
    """photo(120, 80) stored sideways: EXIF orientation 6 says "turn me 90 degrees clockwise"."""
    image = photo(120, 80).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    return image


#: The colours of animation()'s frames, in order.
FRAME_COLOURS = ([220, 30, 30], [30, 200, 40], [40, 60, 220], [240, 220, 20], [200, 40, 200], [30, 200, 200])


def animation(
    fmt: str = "gif",
    frames: int = 4,
    width: int = 160,
    height: int = 100,
    delays: list[int] | None = None,
    loop: int = 0,
) -> bytes:
    """An animated GIF or WebP made here: on a light grey frame, a disc of FRAME_COLOURS[i] that moves
    right 30 px a frame (back to the left when at the right edge), and a black square at the top left (to
    see flips and rotations); delays 100, 200, 300 ... ms unless given; ``loop`` 0 plays forever. No two
    frames in a row are alike (the writers would merge them into one)."""
    x, y = _xy(width, height)
    images = []
    for index in range(frames):
        centre = 30 + (30 * index) % (width - 40)
        disc = ((x - centre) ** 2 + (y - height / 2) ** 2) ** 0.5 < height * 0.2
        square = (x < width * 0.125) & (y < height * 0.2)
        colour = FRAME_COLOURS[index % len(FRAME_COLOURS)]
        images.append(square.ifthenelse([0, 0, 0], disc.ifthenelse(colour, [235, 235, 235])))
    strip = pyvips.Image.arrayjoin(images, across=1).cast("uchar").copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", delays or [100 * (i + 1) for i in range(frames)])
    strip.set_type(pyvips.GValue.gint_type, "loop", loop)
    return bytes(strip.gifsave_buffer() if fmt == "gif" else strip.webpsave_buffer(lossless=True))


def declared_gif(frames: int, side: int) -> bytes:
    """A GIF of ``frames`` 8x8 frames whose screen and frame descriptors say they are ``side`` pixels
    square: a small file that decodes to ``frames`` frames of that size (an animation bomb; built as
    tests/upload/test_upload_sdk.py builds one)."""
    black = pyvips.Image.black(8, 8)
    colours = [black.new_from_image([40 * (i % 6), 90, 200]).cast("uchar") for i in range(frames)]
    strip = pyvips.Image.arrayjoin(colours, across=1).copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", 8)
    data = bytes(strip.gifsave_buffer())
    size = struct.pack("<HH", side, side)
    data = data[:6] + size + data[10:]  # the logical screen, then each frame's descriptor
    descriptor = b"\x2c\0\0\0\0"  # an image descriptor at (0, 0)
    return data.replace(descriptor + struct.pack("<HH", 8, 8), descriptor + size)


#: The bits of a frame's index numbered_animation draws (frames up to 1023).
NUMBER_BITS = 10


def numbered_animation(fmt: str = "gif", frames: int = 300, width: int = 60, height: int = 20) -> bytes:
    """A long animated GIF or WebP whose frames show their own index (from 0) in binary: NUMBER_BITS
    blocks across the top half, white for a 1, black for a 0 (which GIF's palette and WebP keep), over a
    grey that darkens frame by frame; every frame 40 ms. The writers store only what changed from the
    frame before (GIF: the changed rectangle over the previous frame), so a frame is right only when
    the frames before it were decoded. ``frame_numbers`` reads the numbers back."""
    block = width // NUMBER_BITS
    ground = np.zeros((height, width), dtype=np.uint8)
    planes = []
    for index in range(frames):
        ground[:] = 250 - index % 200
        for bit in range(NUMBER_BITS):
            ground[: height // 2, bit * block : (bit + 1) * block] = 255 if index >> bit & 1 else 0
        planes.append(np.repeat(ground[:, :, None], 3, axis=2))
    strip = pyvips.Image.new_from_array(np.concatenate(planes)).copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [40] * frames)
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    return bytes(strip.gifsave_buffer() if fmt == "gif" else strip.webpsave_buffer(lossless=True))


def frame_numbers(data: bytes) -> list[int]:
    """The index each frame of an encoded numbered_animation (scaled or not) shows."""
    numbers = []
    for frame in frames_of(data):
        block = frame.width / NUMBER_BITS
        row = frame.height // 4  # the middle of the top half
        bits = [frame.getpoint(int((bit + 0.5) * block), row)[0] > 128 for bit in range(NUMBER_BITS)]
        numbers.append(sum(1 << bit for bit, on in enumerate(bits) if on))
    return numbers


def frames_of(data: bytes) -> list[pyvips.Image]:
    """Every frame of an encoded image (one for a still), as 8-bit sRGB."""
    image = pyvips.Image.new_from_buffer(data, "")
    if image.get_typeof("n-pages") and image.get("n-pages") > 1:
        image = pyvips.Image.new_from_buffer(data, "", n=-1)
    height = image.get("page-height") if image.get_typeof("page-height") else image.height
    return [image.crop(0, top, image.width, height) for top in range(0, image.height, height)]


#: A real photograph with one face (the astronaut from scikit-image's data, public domain: see
#: cutout/samples/LICENSES.md), for the face gravities.
FACE_PHOTO = Path(__file__).resolve().parents[2] / "cutout/samples/docs/rmv_bgd/woman_orig.jpg"


def write_sources(folder: Path) -> dict[str, Path]:
    """Writes the originals once: photo.jpg, cutout.png, product.jpg, oriented.jpg, the animated
    anim.gif and the layers logo.png, road.jpg; ``face`` is the real photograph FACE_PHOTO."""
    files = {
        "face": FACE_PHOTO,
        "photo": folder / "photo.jpg",
        "cutout": folder / "cutout.png",
        "product": folder / "product.jpg",
        "oriented": folder / "oriented.jpg",
        "logo": folder / "logo.png",
        "road": folder / "road.jpg",
        "anim": folder / "anim.gif",
    }
    photo().write_to_file(str(files["photo"]), Q=92)
    cutout().write_to_file(str(files["cutout"]))
    product().write_to_file(str(files["product"]), Q=92)
    oriented().write_to_file(str(files["oriented"]), Q=92)
    logo().write_to_file(str(files["logo"]))
    road().write_to_file(str(files["road"]))
    files["anim"].write_bytes(animation())
    return files


class CornerSegmenter:
    """Test double for IS-Net (a unit isolation): foreground = pixels far from the top-right corner colour."""

    model_id = "corner-distance-test-double"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, bool]] = []

    def segment(self, image: pyvips.Image, *, fine_edges: bool) -> Mask:
        self.calls.append((image.width, image.height, fine_edges))
        rgb = image.extract_band(0, n=3).cast("float")
        corner = rgb.crop(image.width - 1, 0, 1, 1).getpoint(0, 0)
        distance = ((rgb - corner) ** 2).bandmean() ** 0.5
        alpha = (distance - 40) * 8
        alpha = (alpha > 255).ifthenelse(255, (alpha < 0).ifthenelse(0, alpha))
        return Mask(alpha.cast("uchar"), 1.0)


def layer_loader(files: dict[str, Path]) -> Callable[[str], tuple[str, str]]:
    def load(public_id: str) -> tuple[str, str]:
        name = public_id.split("/")[-1]
        alias = {"bg_beach": "road"}.get(name, name)
        if alias not in files:
            from grammar.errors import NotFound

            raise NotFound(f"Resource not found - {public_id}")
        return str(files[alias]), f"{alias}@1"

    return load


DEFAULT_LIMITS = Limits()


def run(
    transformation: str,
    source: Path | bytes,
    files: dict[str, Path],
    *,
    segmenter: object | None = None,
    named: dict[str, str] | None = None,
    extension: str | None = None,
    accept: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    faces: FaceSource | None = detect_faces,
) -> Rendered:
    """``faces``: the real detector by default (loaded only when a face gravity asks for it)."""
    plan = compile_plan(parse_transformation(transformation), named=named)
    choice = negotiate_format(plan, extension=extension, accept=accept)
    masks = DirectMasks(segmenter) if segmenter is not None else None  # type: ignore[arg-type]
    return render(
        plan,
        source if isinstance(source, bytes) else str(source),
        source_key="test-source",
        choice=choice,
        load_layer=layer_loader(files),
        masks=masks,
        faces=faces,
        limits=limits,
    )


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def thumb16(data: bytes) -> np.ndarray:
    image = pyvips.Image.new_from_buffer(data, "")
    return np.asarray(image.thumbnail_image(16, height=16, size="force").numpy(), dtype=np.float32)


def golden_pixels(image: pyvips.Image) -> np.ndarray:
    """RGBA uint8, reduced to GOLDEN_SIDE on the longer side (and never enlarged)."""
    if max(image.width, image.height) > GOLDEN_SIDE:
        image = image.thumbnail_image(GOLDEN_SIDE, height=GOLDEN_SIDE)
    if image.bands in (1, 2):  # grey (e_alpha_mask), grey + alpha: as RGBA like the rest
        grey = image.extract_band(0)
        image = grey.bandjoin([grey, grey, image.extract_band(1) if image.bands == 2 else 255])
    elif image.bands == 3:
        image = image.bandjoin(255)
    return np.asarray(image.cast("uchar").numpy(), dtype=np.uint8)


def golden_distance(expected: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """(mean |difference|, share of pixels with a band off by more than PIXEL_STEP)."""
    diff = np.abs(expected.astype(np.int16) - actual.astype(np.int16))
    return float(diff.mean()), float((diff.max(axis=2) > PIXEL_STEP).mean())


def within_tolerance(distance: tuple[float, float]) -> bool:
    return distance[0] <= MEAN_TOLERANCE and distance[1] <= PIXEL_TOLERANCE


def load_golden(name: str) -> np.ndarray:
    return np.asarray(pyvips.Image.new_from_file(str(GOLDEN / f"{name}.png")).numpy(), dtype=np.uint8)


def check_golden(name: str, rendered: Rendered) -> None:
    out_dir = os.environ.get("SAVE_OUTPUT_DIR")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / f"{name}.{rendered.format}").write_bytes(rendered.data)
    actual = golden_pixels(pyvips.Image.new_from_buffer(rendered.data, ""))
    path = GOLDEN / f"{name}.png"
    if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
        if os.environ.get("UPDATE_GOLDEN") != "1":
            raise AssertionError(f"no golden {path.name}; run with UPDATE_GOLDEN=1 and look at the output")
        GOLDEN.mkdir(exist_ok=True)
        height, width, bands = actual.shape
        image = pyvips.Image.new_from_memory(actual.tobytes(), width, height, bands, "uchar")
        image.copy(interpretation="srgb").pngsave(str(path), compression=9, keep="none")
        return
    expected = load_golden(name)
    assert expected.shape == actual.shape, f"{name}: shape {actual.shape} != golden {expected.shape}"
    mean, share = golden_distance(expected, actual)
    assert within_tolerance((mean, share)), (
        f"{name}: differs from its golden by {mean:.2f} on average (tolerance {MEAN_TOLERANCE}), "
        f"{share:.2%} of pixels by more than {PIXEL_STEP} (tolerance {PIXEL_TOLERANCE:.2%})"
    )
