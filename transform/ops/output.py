"""Delivery format ``f_``, quality ``q_`` and colour space ``cs_``: they describe the output, not a step on
the image."""

from __future__ import annotations

from dataclasses import dataclass, field

from grammar.errors import InvalidArgument
from grammar.image_formats import FORMAT_OF, WRITABLE
from transform.ops import args
from transform.ops.registry import ParamSpec, param

FORMATS = WRITABLE
QUALITY_LEVELS = ("best", "good", "eco", "low")
#: q_<n>:420 / q_<n>:444: Cloudinary's chroma subsampling toggle (its SDKs' chromaSubSampling), halved
#: colour resolution or full. Without it libvips decides (full from quality 90 up, as Cloudinary's JPEGs).
CHROMA = ("420", "444")
#: f_auto[:image|animated] (https://cloudinary.com/documentation/transformation_reference#f_format): the
#: media type f_auto chooses among. image: image formats only, which is all f_auto chooses from here
#: (cutout delivers no video), so f_auto:image is f_auto. animated: formats that hold an animation only:
#: WebP where the client takes it, else GIF (libvips writes no animated AVIF or PNG), a still delivered in
#: them as one frame. (f_auto:video would choose a video format: cutout makes none, so it is a 400.)
AUTO_FORMATS = ("auto", "auto:image", "auto:animated")


@dataclass(frozen=True)
class Quality:
    """``q_80`` -> Quality(80, None); ``q_auto:eco`` -> Quality(None, "eco"); ``q_80:444`` ->
    Quality(80, None, chroma="444")."""

    number: int | None
    level: str | None
    #: The value as the URL wrote it (``080``), for a 400 only known when rendering (q_ with GIF output);
    #: not part of the value: ``q_080`` and ``q_80`` are one quality, one cache entry.
    written: str = field(default="", compare=False)
    chroma: str | None = None

    def __str__(self) -> str:
        if self.number is not None:
            return str(self.number) + (f":{self.chroma}" if self.chroma else "")
        return "auto" if self.level == "good" else f"auto:{self.level}"


def _format(key: str, value: str) -> str:
    value = FORMAT_OF.get(value, value)
    if value == "auto:video":
        raise InvalidArgument(key, value, "f_auto:video chooses a video format, and cutout delivers images "
                              "only: use f_auto, f_auto:image or f_auto:animated")  # fmt: skip
    return args.enum_of(*FORMATS, *AUTO_FORMATS)(key, value, "format")


def _quality(key: str, value: str) -> Quality:
    if value == "auto" or value.startswith("auto:"):
        level = value.partition(":")[2] or "good"
        if level not in QUALITY_LEVELS:
            raise InvalidArgument(
                key, value, f"quality must be 1-100, auto, or auto:{'|'.join(QUALITY_LEVELS)}"
            )
        return Quality(None, level, value)
    text, colon, chroma = value.partition(":")
    number = args.integer(text)
    if number is not None and 1 <= number <= 100 and text.isdigit():  # no sign: q_+50 is not a quality
        if colon and chroma not in CHROMA:
            raise InvalidArgument(key, value, "a quality's chroma subsampling must be 420 or 444 (q_80:444)")
        return Quality(number, None, value, chroma or None)
    raise InvalidArgument(key, value, f"quality must be 1-100, auto, or auto:{'|'.join(QUALITY_LEVELS)}")


param(
    ParamSpec(
        "f",
        "format",
        _format,
        "delivery format: " + ", ".join(FORMATS) + ", auto (by Accept; auto:image is the same, "
        "auto:animated chooses among the formats that animate: WebP by Accept, else GIF)",
        "output",
    )
)
_QUALITY_HELP = (
    "JPEG/WebP/AVIF quality or PNG palette quantisation 1-100, GIF colours with fl_lossy (else a 400 for "
    "GIF; TIFF: a 400), "
    "or auto[:best|good|eco|low]; 1-100:420 or :444 also sets JPEG and AVIF chroma subsampling "
    "(444: full colour resolution; a 400 with other formats, except where f_auto chose them)"
)
param(ParamSpec("q", "quality", _quality, _QUALITY_HELP, "output"))


#: cs_ values this server's output already is (https://cloudinary.com/documentation/transformation_reference
#: #cs_color_space): every image is converted to sRGB from its embedded profile on decode
#: (transform/pixels.py) and written without a profile, which viewers read as sRGB; tinysrgb asks for a
#: compact sRGB profile in the file, which draws the same colours. Sites write cs_srgb beside dpr_ and c_
#: (``dpr_1.0,cs_srgb``). The others (cmyk, keep_cmyk, no_cmyk, icc:<id>, copy...) would need profiles or
#: CMYK output this server does not write: a 400.
COLOUR_SPACES = ("srgb", "tinysrgb")


def _colour_space(key: str, value: str) -> str:
    if value in COLOUR_SPACES:
        return value
    raise InvalidArgument(key, value, "colour space must be srgb or tinysrgb (output is always sRGB; CMYK, "
                          "kept and custom ICC profiles are not supported)")  # fmt: skip


param(
    ParamSpec(
        "cs",
        "colour space",
        _colour_space,
        "output colour space: srgb or tinysrgb, what every output is (converted to sRGB, no profile kept)",
        "output",
    )
)
