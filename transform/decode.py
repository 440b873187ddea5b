"""Opening originals safely: sniff the format, check the declared size before decoding, then decode.

Only the formats below are opened: libvips can also read SVG, PDF, matrix and raw files, which an image
origin has no business parsing from uploads. Pixel counts come from the header (libvips reads only the
header until pixels are needed), so a tiny PNG declaring 100000 x 100000 pixels is refused before any
memory is spent on it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import pyvips

from grammar.errors import NotFound, Undecodable
from transform import pixels
from transform.limits import Limits, check_original

Source = str | os.PathLike[str] | bytes
#: Formats whose frames are each drawn over the ones before: reaching page n decodes pages 0 to n.
DRAWN_OVER = ("gif", "webp")


def sniff(head: bytes) -> str | None:
    """The format of an image from its first bytes: jpg, png, gif, webp, avif, heic, tiff; None otherwise."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc"):
            return "heic"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def open_image(
    source: Source,
    limits: Limits,
    *,
    access: str = "random",
    page: int = 0,
    pages: int = 1,
    scale: float = 1.0,
) -> tuple[pyvips.Image, str]:
    """The lazily-opened original (header read, pixels not yet) and its format: its first page, or
    ``pages`` pages from ``page`` (0-based) as one tall strip, each ``page-height`` high (animations).
    ``scale``: a WebP decoded that much smaller (libwebp scales as it decodes: shrink-on-load)."""
    try:
        fmt = _sniffed(source)
    except FileNotFoundError as exc:
        raise NotFound("Resource not found", detail=str(exc)) from exc
    if fmt is None:
        raise Undecodable("Image cannot be decoded: not a JPEG, PNG, GIF, WebP, AVIF, HEIC or TIFF image")
    options: dict[str, object] = {"access": access, "fail_on": "truncated", **_page_options(page, pages)}
    if scale != 1.0:
        if fmt != "webp":
            raise ValueError(f"only a WebP is decoded scaled, not {fmt}")  # (our bug: the loader has none)
        options["scale"] = scale
    try:
        if isinstance(source, bytes):
            image = pyvips.Image.new_from_buffer(source, "", **options)
        else:
            image = pyvips.Image.new_from_file(os.fspath(source), **options)
    except pyvips.Error as exc:
        raise Undecodable(f"Image cannot be decoded: damaged {fmt.upper()} data", detail=str(exc)) from exc
    check_original(image.width, image.height, limits)
    return image, fmt


def page_count(image: pyvips.Image) -> int:
    """How many pages (frames of an animation) the opened file holds: 1 for formats without pages."""
    return int(image.get("n-pages")) if image.get_typeof("n-pages") != 0 else 1


def _page_options(page: int, pages: int) -> dict[str, int]:
    """Loader options choosing pages; none for the first page alone, which every loader gives (JPEG's and
    PNG's loaders refuse ``page`` and ``n``)."""
    return {"page": page, "n": pages} if page or pages != 1 else {}


def oriented_size(image: pyvips.Image, autorotate: bool = True) -> tuple[int, int]:
    """Width and height after EXIF auto-rotation (orientations 5-8 swap them)."""
    swap = autorotate and image.get_typeof("orientation") != 0 and image.get("orientation") in (5, 6, 7, 8)
    return (image.height, image.width) if swap else (image.width, image.height)


def upright(image: pyvips.Image) -> bool:
    return image.get_typeof("orientation") == 0 or image.get("orientation") in (0, 1)


def decode(source: Source, limits: Limits, autorotate: bool = True) -> pyvips.Image:
    """Open, check, auto-rotate (unless told not to: a_ignore) and convert to 8-bit sRGB."""
    image, _ = open_image(source, limits)
    return pixels.normalize(image.autorot() if autorotate else image)


def thumbnail(
    source: Source, width: int, height: int, *, autorotate: bool = True, page: int = 0
) -> pyvips.Image:
    """Exactly ``width`` x ``height``, auto-rotated (unless told not to), decoded with shrink-on-load (JPEG
    DCT scaling, WebP and HEIF reduced decodes): the fast path when the first step only scales the image.
    ``page``: as ``open_image`` (an animation's frames are scaled by transform/frames.py)."""
    options: dict[str, object] = {"height": height, "size": "force", "fail_on": "truncated",
                                  "no_rotate": not autorotate}  # fmt: skip
    # Loader options go into the file name ("anim.gif[page=2]") or option_string: thumbnail has no
    # arguments of its own for them.
    chosen = ",".join(f"{name}={value}" for name, value in _page_options(page, 1).items())
    if isinstance(source, bytes):
        image = pyvips.Image.thumbnail_buffer(source, width, option_string=chosen, **options)
    else:
        name = os.fspath(source)
        image = pyvips.Image.thumbnail(f"{name}[{chosen}]" if chosen else name, width, **options)
    return pixels.normalize(image)


def fails_alone(
    source: Source, pages: Sequence[int] = (0,), own: Callable[[pyvips.Image], pyvips.Image] | None = None
) -> bool:
    """Whether ``pages`` (0-based) of ``source`` fail to decode in full on their own, as renders decode
    them (``fail_on`` truncated): True for a damaged original. False when the file is gone, which is not
    damage (a destroy or rename meanwhile: the caller's error stands).

    This, not the text of a render's ``pyvips.Error``, says whether a render failed on damaged data:
    libvips keeps one error buffer for the whole process, which pyvips reads and clears into each error
    it raises, and also writes and clears on every method call it looks up (``image.copy()`` first tries
    a property named "copy"). So under concurrent renders an error's text is often empty, or another
    thread's ("image: no property named `copy'"). Whether a decode fails is its return code: this
    thread's own. Each load is from a new source, so that no image is shared with another render through
    libvips' operation cache (where a failed or stopped load could be found again). ``own``: makes each
    image stoppable (``Watch.own``), so that the caller's time budget covers this decode too."""

    def load(**options: object) -> pyvips.Image:
        fresh = (pyvips.Source.new_from_memory(source) if isinstance(source, bytes)
                 else pyvips.Source.new_from_file(os.fspath(source)))  # fmt: skip
        return pyvips.Image.new_from_source(fresh, "", access="sequential", **options)

    try:
        header = load()
        count = page_count(header)
        chosen = sorted({page for page in pages if 0 <= page < count}) or [0]
        # Frames drawn over earlier ones are read from the first, as the render's loader reads them.
        spans = [(0, chosen[-1] + 1)] if _sniffed(source) in DRAWN_OVER else [(page, 1) for page in chosen]
        for first, n in spans:
            image = load(fail_on="truncated", **_page_options(first, n))
            (own(image) if own is not None else image).avg()
    except (pyvips.Error, OSError):
        return isinstance(source, bytes) or os.path.exists(source)  # (a file gone meanwhile: not damage)
    return False


def _sniffed(source: Source) -> str | None:
    """``sniff`` of the source's first bytes."""
    if isinstance(source, bytes):
        return sniff(source[:16])
    with open(source, "rb") as handle:
        return sniff(handle.read(16))
