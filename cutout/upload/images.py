"""Checking an uploaded file before anything is stored: not empty, an image format cutout reads, its
declared size within ``CUTOUT_MAX_PIXELS`` (read from the header, before any pixel is decoded, so a
decompression bomb costs nothing), and complete. Completeness is read from the file's structure (a JPEG
ends with its EOI marker, a PNG with IEND, a GIF with its trailer, a WebP holds the size its RIFF header
says); only a file that does not show it is decoded in full to be sure."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import pyvips

from cutout.upload.errors import bad
from transform.decode import sniff

_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.ASCII)


@dataclass(frozen=True)
class Inspected:
    format: str
    width: int
    height: int


def decode_file_field(text: str) -> bytes | None:
    """The bytes of a ``file`` given as a data URI or bare base64; None when it is neither (a URL)."""
    text = text.strip()
    if text.startswith("data:"):
        match = _DATA_URI.match(text)
        if match is None:
            raise bad("file: a data URI must be data:<type>;base64,<data>")
        text = text[match.end() :]
    elif re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        return None
    compact = re.sub(r"\s+", "", text)
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise bad("file must be a file part, a data URI, base64 or an http(s) URL") from None


def inspect(data: bytes, max_pixels: int) -> Inspected:
    if not data:
        raise bad("Empty file")
    fmt = sniff(data[:16])
    if fmt is None:
        raise bad("Invalid image file: not a JPEG, PNG, GIF, WebP, AVIF, HEIC or TIFF image")
    try:
        # From a source over the bytes, not ``new_from_buffer``, which copies the whole file first.
        header = pyvips.Image.new_from_source(pyvips.Source.new_from_memory(data), "", access="sequential")
        width, height = int(header.width), int(header.height)
    except pyvips.Error:
        raise bad(f"Invalid image file: its {fmt.upper()} header cannot be read") from None
    if width * height > max_pixels:
        raise bad(
            f"Image is too large: {width}x{height} pixels ({width * height}); the limit is "
            f"{max_pixels} pixels (CUTOUT_MAX_PIXELS)"
        )
    if not _looks_complete(fmt, data):
        try:
            pyvips.Image.new_from_buffer(data, "", access="sequential", fail_on="truncated").avg()
        except pyvips.Error:
            raise bad(f"Invalid image file: truncated or damaged {fmt.upper()} data") from None
    return Inspected(fmt, width, height)


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
