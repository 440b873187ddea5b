"""Flags ``fl_<flag>[.<flag>...]``. Layer flags qualify ``fl_layer_apply`` (the plan compiler checks that);
output flags describe the delivered file, like ``f_`` and ``q_``."""

from __future__ import annotations

from urllib.parse import unquote

from grammar.errors import InvalidArgument
from grammar.path import is_control
from transform.ops.registry import ParamSpec, param

LAYER_FLAGS = ("layer_apply", "no_overflow", "relative", "region_relative", "cutter", "tiled")
#: preserve_transparency: a JPEG choice becomes PNG when the result is transparent.
#: progressive: progressive JPEG, interlaced PNG or GIF (WebP, AVIF and TIFF have no such mode: a 400 with
#: them, unless f_auto chose them); :none is the default.
#: animated, awebp: Cloudinary's "deliver every frame" (awebp: as an animated WebP). An animated original
#: delivered as GIF or WebP keeps its frames here with or without them; they are accepted so that URLs
#: written for Cloudinary work, and refused with a format that cannot animate (f_jpg,fl_animated).
ANIMATION_FLAGS = ("animated", "awebp")
#: strip_profile: Cloudinary's "clear all metadata (IPTC, Exif, XMP)": what every output here is anyway
#: (written with keep="none", colours converted to sRGB first, transform/formats.py), so it is done, not
#: ignored; with keep_iptc, which asks for the opposite, it is a 400.
STRIP_PROFILE = "strip_profile"
#: keep_iptc (https://cloudinary.com/documentation/transformation_reference#fl_keep_iptc; its SDKs: "Keeps
#: all meta-data"): the original's IPTC, XMP and Exif go into the output, where its format holds them
#: (transform/formats.py). Cloudinary refuses it with q_auto, which strips metadata: so does this server.
KEEP_IPTC = "keep_iptc"
#: keep_attribution (https://cloudinary.com/documentation/transformation_reference#fl_keep_attribution):
#: of the original's metadata, the rights fields alone (who made it, who owns it: transform/metadata.py).
KEEP_ATTRIBUTION = "keep_attribution"
#: The flags that keep some of the original's metadata.
KEEP_FLAGS = (KEEP_IPTC, KEEP_ATTRIBUTION)
#: lossy (https://cloudinary.com/documentation/transformation_reference#fl_lossy): lossy GIF and PNG
#: (a PNG quantised to a palette, a GIF given fewer colours; q_ sets how lossy, 80 by default, as
#: Cloudinary's). JPEG, WebP and AVIF are lossy already; TIFF, written lossless here, is a 400.
LOSSY = "lossy"
OUTPUT_FLAGS = ("preserve_transparency", "progressive", "progressive:none", *ANIMATION_FLAGS, STRIP_PROFILE,
                *KEEP_FLAGS, LOSSY)  # fmt: skip
#: attachment[:<filename>]: the same image, sent with ``Content-Disposition: attachment`` (a download)
#: named <filename>.<delivered format>, or after the public id; only the headers change.
ATTACHMENT = "attachment"
#: Longest attachment file name, in characters: far more than any real one, well under header limits.
MAX_FILENAME = 200
_WHY = {
    # libvips' PNG writer has no animation chunks (acTL, fcTL), and its PNG loader reads one frame.
    "apng": " (libvips writes no animated PNG: deliver the animation as WebP or GIF, f_webp or f_gif)",
    "progressive:semi": " (use fl_progressive: libvips writes one progressive scan script)",
    "progressive:steep": " (use fl_progressive: libvips writes one progressive scan script)",
}


def is_output_flag(flag: str) -> bool:
    """A flag that describes the delivered file rather than a layer."""
    return flag in OUTPUT_FLAGS or attachment_name(flag) is not None


def attachment_name(flag: str) -> str | None:
    """``attachment`` -> "" (named after the public id); ``attachment:my%20photo`` -> "my photo" (checked
    by ``_flags`` already); any other flag -> None."""
    if flag == ATTACHMENT:
        return ""
    head, colon, name = flag.partition(":")
    return unquote(name, errors="strict") if head == ATTACHMENT and colon else None


def _check_filename(key: str, value: str, flag: str) -> None:
    """The file name of ``attachment:<name>``: percent-decoded, it goes into a header, so characters that
    could end the header or name a folder are refused rather than silently changed."""
    raw = flag.partition(":")[2]
    try:
        name = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise InvalidArgument(key, value, "the attachment's file name is not valid UTF-8 once "
                              "percent-decoded") from None  # fmt: skip
    problem = None
    if not name:
        problem = "must not be empty"
    elif any(map(is_control, name)) or "/" in name or "\\" in name:
        problem = "must not contain control characters, '/' or '\\'"
    elif name in (".", ".."):
        problem = "must not be '.' or '..'"
    elif len(name) > MAX_FILENAME:
        problem = f"must be at most {MAX_FILENAME} characters"
    if problem is not None:
        raise InvalidArgument(key, value, f"the attachment's file name {problem}")


def _flags(key: str, value: str) -> tuple[str, ...]:
    flags = value.split(".")
    for flag in flags:
        if flag.startswith(f"{ATTACHMENT}:"):
            _check_filename(key, value, flag)
        elif flag not in LAYER_FLAGS + OUTPUT_FLAGS + (ATTACHMENT,):
            names = (*LAYER_FLAGS, *OUTPUT_FLAGS[:2], *ANIMATION_FLAGS, STRIP_PROFILE, *KEEP_FLAGS,
                     LOSSY, f"{ATTACHMENT}[:<filename>]")
            known = ", ".join(names)
            raise InvalidArgument(
                key,
                value,
                f"flags must be {known} (joined by '.'); {flag} is not supported{_WHY.get(flag, '')}",
            )
    if "progressive" in flags and "progressive:none" in flags:
        raise InvalidArgument(key, value, "flags must not ask for progressive and progressive:none together")
    kept = [flag for flag in KEEP_FLAGS if flag in flags]
    if STRIP_PROFILE in flags and kept:
        raise InvalidArgument(key, value, f"flags must not ask for strip_profile and {kept[0]} together "
                              "(no metadata, and the original's)")  # fmt: skip
    if len({flag for flag in flags if attachment_name(flag) is not None}) > 1:
        raise InvalidArgument(key, value, "flags must not name two attachments")
    return tuple(sorted(set(flags)))


param(
    ParamSpec(
        "fl",
        "flags",
        _flags,
        "flags: layer_apply closes a layer block (no_overflow, relative qualify it; relative also makes "
        "a layer's own w_/h_ fractions of the image it is placed on; region_relative makes them, and "
        "x_/y_, fractions of the face or subject box g_face, g_faces or g_auto:subject places it on, and "
        "a c_crop's w_/h_ fractions of the face it cuts around); cutter trims the image to the layer's "
        "shape (only what is under its opaque pixels is left); tiled repeats the layer over the whole "
        "image; "
        "preserve_transparency keeps alpha by delivering PNG instead of JPEG; "
        "progressive makes progressive JPEG or interlaced PNG or GIF (a 400 with WebP, AVIF or TIFF output; "
        "under f_auto it applies when JPEG or PNG is chosen, the client's Accept deciding); "
        "animated and awebp ask for every frame of an animated original (kept anyway in GIF and WebP; "
        "a 400 with a format that cannot animate); "
        "strip_profile asks for no metadata (Exif, IPTC, XMP, ICC profile), as every output is written here; "
        "keep_iptc keeps the original's IPTC, XMP and Exif metadata (IPTC in JPEG; XMP and Exif also in "
        "PNG, WebP and AVIF; XMP in TIFF; a 400 with GIF output, which holds none, and with q_auto); "
        "keep_attribution keeps of them only the rights fields (creator, credit, source, copyright "
        "notice, rights usage terms, licensor; Exif Artist and Copyright), q_auto allowed; "
        "lossy makes PNG output a quantised palette and GIF output fewer colours, q_ setting how lossy "
        "(80 by default; a 400 with TIFF output; JPEG, WebP and AVIF are lossy anyway); "
        "attachment[:<filename>] sends the image as a download named <filename> (default: the public id's "
        "last part; a fetch URL's remote file name) with the delivered format's extension",
        "flags",
        lambda v: ".".join(v),
    )
)
