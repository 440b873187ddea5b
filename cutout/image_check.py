"""Checking an image's bytes before anything is stored, for every face that stores what it is sent (the
Upload API, the HTTP API and the adapters, fetched originals): not empty, a format cutout reads, its
declared size within ``CUTOUT_MAX_PIXELS`` (read from the header, before any pixel is decoded, so a
decompression bomb costs nothing; an animation's or a multi-page file's frames count together, as
Cloudinary limits "the total number of megapixels in all frames"), and complete. Completeness is read
from the file's structure (a JPEG ends with its EOI marker, a PNG with IEND, a GIF with its trailer, a
WebP holds the size its RIFF header says); only a file that does not show it is decoded in full to be
sure. A refused file is never written: originals are kept for ever, outside the cache's size limit.

The failures are the engine's own errors, so each face words them in its shape (the Upload API: 400; the
HTTP API: 415, 413, 422)."""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from grammar.errors import OriginError, TooLarge, Undecodable
from transform.decode import oriented_size, page_count, sniff


class NotAnImage(OriginError):
    status = 415
    default_public = "Invalid image file: not a JPEG, PNG, GIF, WebP, AVIF, HEIC or TIFF image"


@dataclass(frozen=True)
class Checked:
    format: str
    width: int
    height: int
    #: Frames of an animation or pages of a TIFF (libvips' ``n-pages``); 1 for a still image.
    pages: int = 1


def check_image(data: bytes, max_pixels: int) -> Checked:
    if not data:
        raise Undecodable("Empty file")
    fmt = sniff(data[:16])
    if fmt is None:
        raise NotAnImage()
    try:
        # From a source over the bytes, not ``new_from_buffer``, which copies the whole file first.
        header = pyvips.Image.new_from_source(pyvips.Source.new_from_memory(data), "", access="sequential")
        # Upright, as delivery serves it (a phone's portrait photo is stored landscape with EXIF
        # orientation 6); the pixel limit is the same either way.
        width, height = oriented_size(header)
        pages = max(1, page_count(header))
    except pyvips.Error:
        raise Undecodable(f"Invalid image file: its {fmt.upper()} header cannot be read") from None
    if width * height > max_pixels:
        raise TooLarge(
            f"Image is too large: {width}x{height} pixels ({width * height}); the limit is "
            f"{max_pixels} pixels (CUTOUT_MAX_PIXELS)"
        )
    if width * height * pages > max_pixels:
        raise TooLarge(
            f"Image is too large: {pages} frames of {width}x{height} pixels ({width * height * pages} "
            f"together); the limit is {max_pixels} pixels (CUTOUT_MAX_PIXELS) for all frames together"
        )
    if not _looks_complete(fmt, data):
        try:
            pyvips.Image.new_from_buffer(data, "", access="sequential", fail_on="truncated").avg()
        except pyvips.Error:
            raise Undecodable(f"Invalid image file: truncated or damaged {fmt.upper()} data") from None
    return Checked(fmt, width, height, pages)


def _looks_complete(fmt: str, data: bytes) -> bool:
    tail = data[-64:].rstrip(b"\x00\r\n ")
    if fmt == "jpg":
        return tail.endswith(b"\xff\xd9")
    if fmt == "png":
        return tail.endswith(b"IEND\xaeB`\x82")
    if fmt == "gif":
        return tail.endswith(b";")
    if fmt == "webp":
        return int.from_bytes(data[4:8], "little") + 8 <= len(data)
    return False  # TIFF, AVIF, HEIC: decoded in full
