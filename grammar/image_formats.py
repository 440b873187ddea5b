"""The image formats, one table: names, file extensions, MIME types, and which ones this server writes.

In ``grammar/`` because the path parser needs the extensions (``photo.webp`` picks WebP) and every
package above it may import grammar; ``transform/formats.py`` (encoding, ``f_``), layer ids, the
originals folder and the responses' ``Content-Type`` all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    #: The canonical name: what ``f_`` takes and cache keys and metadata hold (jpg, tiff).
    name: str
    #: File extensions, the name among them; originals are looked up in this order.
    extensions: tuple[str, ...]
    mime: str
    #: This server encodes it; the others are recognised (as an extension or an original) but a
    #: request to deliver them is a 400, and an original in one of them is delivered as PNG.
    writable: bool


IMAGE_FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat("jpg", ("jpg", "jpeg"), "image/jpeg", writable=True),
    ImageFormat("png", ("png",), "image/png", writable=True),
    ImageFormat("webp", ("webp",), "image/webp", writable=True),
    ImageFormat("avif", ("avif",), "image/avif", writable=True),
    ImageFormat("gif", ("gif",), "image/gif", writable=True),
    ImageFormat("tiff", ("tif", "tiff"), "image/tiff", writable=True),
    ImageFormat("heic", ("heic",), "image/heic", writable=False),
    ImageFormat("jxl", ("jxl",), "image/jxl", writable=False),
    ImageFormat("bmp", ("bmp",), "image/bmp", writable=False),
)

#: Every known extension, lower case, in lookup order: jpg, jpeg, png, webp, avif, gif, tif, tiff, ...
EXTENSIONS: tuple[str, ...] = tuple(ext for fmt in IMAGE_FORMATS for ext in fmt.extensions)
#: Extension -> canonical name (jpeg -> jpg, tif -> tiff, png -> png).
FORMAT_OF: dict[str, str] = {ext: fmt.name for fmt in IMAGE_FORMATS for ext in fmt.extensions}
#: Canonical names of the formats this server writes, in table order.
WRITABLE: tuple[str, ...] = tuple(fmt.name for fmt in IMAGE_FORMATS if fmt.writable)
#: MIME type by extension and by canonical name.
MIME: dict[str, str] = {ext: fmt.mime for fmt in IMAGE_FORMATS for ext in fmt.extensions}
#: Image formats of Cloudinary's that this server neither decodes nor delivers (layered, vector, document and
#: camera raw formats): as a URL's extension the format asked for (a 400: it cannot be delivered), and an
#: original stored in one is a 400 naming it rather than a 404.
UNREADABLE: tuple[str, ...] = (
    "psd", "pdf", "ai", "eps", "eps3", "ept", "ps", "svg", "ico", "jp2", "jxr", "wdp", "hdp", "tga",
    "dng", "arw", "cr2", "djvu", "flif", "indd",
)  # fmt: skip
