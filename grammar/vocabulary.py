"""Facts of Cloudinary's URL language that the path parser needs (not what cutout implements)."""

from __future__ import annotations

from grammar.image_formats import EXTENSIONS, UNREADABLE

#: Every transformation parameter key of Cloudinary's delivery URLs, images and video alike. A path
#: segment containing one of these as ``key_value`` is a transformation component, not a folder.
PARAM_KEYS: frozenset[str] = frozenset(
    {
        "a", "ac", "af", "ar", "b", "bl", "bo", "br", "c", "co", "cs", "d", "dl", "dn", "dpr", "du",
        "e", "eo", "f", "fl", "fn", "fps", "g", "h", "if", "ki", "l", "o", "p", "pg", "q", "r", "so",
        "sp", "t", "u", "vc", "vs", "w", "x", "y", "z",
    }
)  # fmt: skip

#: Extensions that select a delivery format; any other suffix stays part of the public id. Cloudinary's
#: formats this server cannot read are extensions too: ``poster.psd`` is a PSD (a 400 says it cannot be
#: delivered), not a public id "poster.psd" that is not found.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(EXTENSIONS) | frozenset(UNREADABLE)

RESOURCE_TYPES: frozenset[str] = frozenset({"image", "video", "raw"})

DELIVERY_TYPES: frozenset[str] = frozenset(
    {"upload", "fetch", "private", "authenticated", "facebook", "youtube", "list", "twitter",
     "twitter_name", "gravatar", "sprite", "multi", "text", "animated", "asset"}
)  # fmt: skip

#: ``/iu/`` is the SDK's ``shorten=True`` form of ``/image/upload/``.
SHORTCUTS: dict[str, tuple[str, str]] = {"iu": ("image", "upload")}

SUPPORTED = ("image", "upload")

MAX_PUBLIC_ID = 255
MAX_PATH = 8192
