"""Delivery format ``f_`` and quality ``q_``: they describe the output, not a step on the image."""

from __future__ import annotations

from dataclasses import dataclass, field

from grammar.errors import InvalidArgument
from grammar.image_formats import FORMAT_OF, WRITABLE
from transform.ops import args
from transform.ops.registry import ParamSpec, param

FORMATS = WRITABLE
QUALITY_LEVELS = ("best", "good", "eco", "low")


@dataclass(frozen=True)
class Quality:
    """``q_80`` -> Quality(80, None); ``q_auto:eco`` -> Quality(None, "eco")."""

    number: int | None
    level: str | None
    #: The value as the URL wrote it (``080``), for a 400 only known when rendering (q_ with GIF output);
    #: not part of the value: ``q_080`` and ``q_80`` are one quality, one cache entry.
    written: str = field(default="", compare=False)

    def __str__(self) -> str:
        if self.number is not None:
            return str(self.number)
        return "auto" if self.level == "good" else f"auto:{self.level}"


def _format(key: str, value: str) -> str:
    value = FORMAT_OF.get(value, value)
    return args.enum_of(*FORMATS, "auto")(key, value, "format")


def _quality(key: str, value: str) -> Quality:
    if value == "auto" or value.startswith("auto:"):
        level = value.partition(":")[2] or "good"
        if level not in QUALITY_LEVELS:
            raise InvalidArgument(
                key, value, f"quality must be 1-100, auto, or auto:{'|'.join(QUALITY_LEVELS)}"
            )
        return Quality(None, level, value)
    number = args.integer(value)
    if number is not None and 1 <= number <= 100 and value.isdigit():  # no sign: q_+50 is not a quality
        return Quality(number, None, value)
    raise InvalidArgument(key, value, f"quality must be 1-100, auto, or auto:{'|'.join(QUALITY_LEVELS)}")


param(
    ParamSpec(
        "f", "format", _format, "delivery format: " + ", ".join(FORMATS) + ", auto (by Accept)", "output"
    )
)
_QUALITY_HELP = (
    "JPEG/WebP/AVIF quality or PNG palette quantisation 1-100 (a 400 for GIF/TIFF), "
    "or auto[:best|good|eco|low]"
)
param(ParamSpec("q", "quality", _quality, _QUALITY_HELP, "output"))
