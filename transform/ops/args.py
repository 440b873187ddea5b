"""Shared argument validators. Each returns a typed value or raises InvalidArgument naming what was expected.

Every validator takes ``(key, value)`` as written in the URL plus, where the message needs it, a noun:
``int_in("o", "101", "opacity", 0, 100)`` raises ``Invalid transformation parameter - o_101: opacity must
be an integer from 0 to 100``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from grammar.errors import BadRequest, InvalidArgument
from grammar.image_formats import EXTENSIONS
from grammar.path import layer_public_id
from transform.colors import NAMED_COLORS

# A minus sign only: Cloudinary's reference writes negative values (x_-20, e_brightness:-50) and never a
# plus sign, which no SDK emits either; w_+100 is refused rather than read as w_100.
_INT = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?([0-9]+\.[0-9]*|\.[0-9]+)")
_NUMBER = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)")
_HEX = re.compile(r"[0-9a-fA-F]+")
_EXTENSIONS = tuple(f".{ext}" for ext in EXTENSIONS)

#: The largest length in pixels a URL may ask for (w_, h_, x_, y_). Larger results are still possible
#: (a fraction of a large original, dpr_, padding, borders), up to the renderer's pixel limit; 16384 is
#: what WebP and AVIF can hold, beyond any screen, and keeps every size and offset far from libvips'
#: 32-bit arguments.
MAX_LENGTH = 16384
#: The largest multiple a fraction may ask for (w_100.0 = a hundred times the width).
MAX_FRACTION = 100.0
#: Aspect ratios from 1:1000 to 1000:1: beyond any banner, and every box they make stays computable.
MAX_RATIO = 1000.0


def integer(value: str) -> int | None:
    """The integer ``value`` writes (ASCII digits, optional minus sign), else None. Absurdly long numbers are
    clamped to 10**18 (every range here is far smaller), so that int() never parses thousands of digits:
    it refuses more than 4300 with a ValueError, leading zeros included (``w_000...0400``)."""
    if not _INT.fullmatch(value):
        return None
    sign = -1 if value.startswith("-") else 1
    digits = value.lstrip("-").lstrip("0")
    if len(digits) > 18:
        return sign * 10**18
    return sign * int(digits or "0")


def fmt_float(value: float) -> str:
    """Canonical text of a decimal: always with a point, no trailing zeros beyond one (2 -> "2.0")."""
    text = f"{value:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


@dataclass(frozen=True)
class Dim:
    """A length: pixels, or (``relative``) a multiple of a reference length (``w_0.5`` = half)."""

    value: float
    relative: bool

    def px(self, reference: int) -> int:
        return round(self.value * reference) if self.relative else int(self.value)

    def __str__(self) -> str:
        return fmt_float(self.value) if self.relative else str(int(self.value))


@dataclass(frozen=True)
class Color:
    r: int
    g: int
    b: int
    a: int
    text: str  # canonical URL form: a CSS name or rgb:rrggbb[aa]

    @property
    def rgba(self) -> list[int]:
        return [self.r, self.g, self.b, self.a]

    def __str__(self) -> str:
        return self.text


def at_dpr(key: str, shown: str, pixels: int, ratio: float, noun: str, low: int, high: int) -> int:
    """``pixels`` at a device pixel ratio (dpr_): multiplied and rounded, never below a positive ``low``
    (a 1 px border stays 1 px at dpr_0.5), and a 400 beyond the bounds the URL could have written
    (``shown``: the parameter's value as written)."""
    result = round(pixels * ratio)
    if low > 0:
        result = max(result, low)
    if not low <= result <= high:
        raise InvalidArgument(
            key, shown, f"{noun} {pixels} times dpr_{fmt_float(ratio)} is {result}, beyond {low} to {high}"
        )
    return result


def offset_at_dpr(key: str, value: Dim, ratio: float) -> Dim:
    """An offset (x_, y_) at a device pixel ratio: pixels multiplied, fractions as they are."""
    if value.relative:
        return value
    return Dim(at_dpr(key, str(value), int(value.value), ratio, "offset", -MAX_LENGTH, MAX_LENGTH), False)


def int_in(
    key: str, value: str, noun: str, low: int, high: int, *, shown: str | None = None, forms: str = ""
) -> int:
    """``shown``: the whole value to quote in the error, when ``value`` is one part of it; ``forms``: the
    spellings accepted, said in brackets after the range (``bare or level_<n>``)."""
    number = integer(value)
    if number is None or not low <= number <= high:
        said = f" ({forms})" if forms else ""
        raise InvalidArgument(key, shown or value, f"{noun} must be an integer from {low} to {high}{said}")
    return number


@dataclass(frozen=True)
class Level:
    """An effect's optional integer, ``e_<name>[:<n>]`` (a level, strength, tolerance or square size):
    ``parse`` and ``render`` are its EffectSpec's pair. ``default`` when the number is left out, and left
    out of the canonical form (``e_vignette:20`` is ``e_vignette``). ``verbose``: a prefix the reference
    also writes before the number (``level_`` in ``e_sepia:level_50``), accepted and dropped (once);
    ``say_verbose``: whether the error names that spelling too. E.g.
    ``Level("sepia", "sepia level", 1, 100, 80, "level_", say_verbose=True)`` refuses ``e_sepia:0`` with
    ``sepia level must be an integer from 1 to 100 (bare or level_<n>)``.
    """

    name: str
    noun: str  # as the error names the number: "vignette strength"
    low: int
    high: int
    default: int
    verbose: str = ""
    say_verbose: bool = False

    def parse(self, value: str, rest: str) -> int:
        """``value``: the e_ value as written (quoted in the error); ``rest``: the text after "name:"."""
        if rest == "":
            return self.default
        forms = f"bare or {self.verbose}<n>" if self.say_verbose else ""
        number = rest.removeprefix(self.verbose)
        return int_in("e", number, self.noun, self.low, self.high, shown=value, forms=forms)

    def render(self, level: int) -> str:
        return self.name if level == self.default else f"{self.name}:{level}"

    def at_dpr(self, level: int, ratio: float) -> int:
        """A level that is a length on the image (a blur's radius, a square's side) at a device pixel
        ratio: multiplied, within the same range (the EffectSpec's ``dpr``)."""
        return at_dpr("e", self.render(level), level, ratio, self.noun, self.low, self.high)


def number(key: str, value: str, noun: str, *, low: float, high: float) -> float:
    if not _NUMBER.fullmatch(value) or not low <= float(value) <= high:
        raise InvalidArgument(
            key, value, f"{noun} must be a number from {fmt_float(low)} to {fmt_float(high)}"
        )
    return float(value)


def dimension(key: str, value: str, noun: str) -> Dim:
    """``400`` (pixels) or ``0.5`` (a fraction of the reference size; ``1.0`` means 100%)."""
    pixels = integer(value)
    if pixels is not None and 1 <= pixels <= MAX_LENGTH:
        return Dim(pixels, relative=False)
    if _DECIMAL.fullmatch(value) and 0 < float(value) <= MAX_FRACTION:
        return Dim(float(value), relative=True)
    unsupported = ""
    if value == "auto" or value.startswith("auto:"):
        # Resolved from Client Hints before compiling (transform/hints.py): what reaches here is inside a
        # named transformation, where Cloudinary does not resolve it either, or not a width.
        unsupported = (
            "; w_auto (a width from Client Hints) works only in the URL's own components, not in a named "
            "transformation"
            if key == "w"
            else f"; {key}_auto does not exist: only the width has a size from Client Hints (w_auto)"
        )
    raise InvalidArgument(
        key,
        value,
        f"{noun} must be a positive integer up to {MAX_LENGTH} (pixels) "
        f"or a decimal fraction up to {fmt_float(MAX_FRACTION)}{unsupported}",
    )


def offset(key: str, value: str, noun: str) -> Dim:
    """Signed pixels (``-200``) or a signed fraction of the reference size (``0.15``)."""
    pixels = integer(value)
    if pixels is not None and abs(pixels) <= MAX_LENGTH:
        return Dim(pixels, relative=False)
    if _DECIMAL.fullmatch(value) and abs(float(value)) <= MAX_FRACTION:
        return Dim(float(value), relative=True)
    raise InvalidArgument(
        key,
        value,
        f"{noun} must be an integer from -{MAX_LENGTH} to {MAX_LENGTH} (pixels) "
        f"or a decimal fraction from -{fmt_float(MAX_FRACTION)} to {fmt_float(MAX_FRACTION)}",
    )


def ratio(key: str, value: str, noun: str) -> float:
    """``16:9`` or ``1.5``, from 1:1000 to 1000:1."""
    result = 0.0
    if ":" in value:
        left, _, right = value.partition(":")
        if _NUMBER.fullmatch(left) and _NUMBER.fullmatch(right) and float(right) > 0:
            result = float(left) / float(right)
    elif _NUMBER.fullmatch(value):
        result = float(value)
    # Also false for NaN (inf / inf), which huge numbers on both sides make.
    if 1 / MAX_RATIO <= result <= MAX_RATIO:
        return result
    limit = f"{MAX_RATIO:.0f}"
    raise InvalidArgument(
        key,
        value,
        f"{noun} must be a ratio like 16:9 or a positive decimal like 1.5, from 1:{limit} to {limit}:1",
    )


def enum_of(*choices: str) -> Callable[[str, str, str], str]:
    def parse(key: str, value: str, noun: str) -> str:
        if value not in choices:
            raise InvalidArgument(key, value, f"{noun} must be one of {', '.join(choices)}")
        return value

    return parse


def color(
    key: str, value: str, noun: str, *, allow_transparent: bool = False, shown: str | None = None
) -> Color:
    """A CSS colour name, ``rgb:RGB[A]`` or ``rgb:RRGGBB[AA]``; ``transparent``/``none`` when allowed."""
    lowered = value.lower()
    if allow_transparent and lowered in ("transparent", "none"):
        return Color(0, 0, 0, 0, lowered)
    if lowered in NAMED_COLORS:
        r, g, b = NAMED_COLORS[lowered]
        return Color(r, g, b, 255, lowered)
    digits = lowered[4:] if lowered.startswith("rgb:") else ""
    if _HEX.fullmatch(digits) and len(digits) in (3, 4, 6, 8):
        if len(digits) <= 4:
            digits = "".join(c * 2 for c in digits)
        channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        alpha = channels[3] if len(channels) == 4 else 255
        return Color(channels[0], channels[1], channels[2], alpha, "rgb:" + digits)
    extra = ", transparent" if allow_transparent else ""
    raise InvalidArgument(key, shown or value, f"{noun} must be a colour name or rgb:RRGGBB[AA]{extra}")


def named_options(
    key: str, value: str, noun: str, allowed: dict[str, Callable[[str], int]], *, shown: str | None = None
) -> dict[str, int]:
    """``azimuth_220;elevation_60`` -> {"azimuth": 220, "elevation": 60}; each name at most once."""
    result: dict[str, int] = {}
    for item in value.split(";"):
        name, sep, raw = item.partition("_")
        if not sep or name not in allowed or name in result:
            names = ", ".join(f"{n}_N" for n in allowed)
            raise InvalidArgument(key, shown or value, f"{noun} options must be {names} separated by ';'")
        result[name] = allowed[name](raw)
    return result


def public_id(key: str, value: str, what: str) -> str:
    """An image named by its public id inside a parameter (l_, u_, d_): ``docs:road.jpg`` -> ``docs/road``.

    A known image extension is dropped, because originals are found by public id whatever format they
    are stored in (``d_avatar.png`` finds ``avatar.jpg`` as ``/image/upload/avatar.png`` does); folders are
    written with ':'; the id is checked as a delivered one is (``..`` and empty folders are a 400).
    """
    stem = value
    for ext in _EXTENSIONS:
        if value.lower().endswith(ext) and len(value) > len(ext):
            stem = value[: -len(ext)]
            break
    try:
        return layer_public_id(stem, what)
    except BadRequest as exc:
        raise InvalidArgument(key, value, exc.public) from exc
