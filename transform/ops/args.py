"""Shared argument validators. Each returns a typed value or raises InvalidArgument naming what was expected.

Every validator takes ``(key, value)`` as written in the URL plus, where the message needs it, a noun:
``positive_int("w", "-3", "width")`` raises ``Invalid transformation parameter - w_-3: width must be a
positive integer``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from grammar.errors import InvalidArgument
from transform.colors import NAMED_COLORS

_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.\d*|\.\d+)")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")
_HEX = re.compile(r"[0-9a-fA-F]+")


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


def positive_int(key: str, value: str, noun: str, *, maximum: int | None = None) -> int:
    if not _INT.fullmatch(value) or int(value) < 1 or (maximum is not None and int(value) > maximum):
        limit = f" up to {maximum}" if maximum is not None else ""
        raise InvalidArgument(key, value, f"{noun} must be a positive integer{limit}")
    return int(value)


def int_in(key: str, value: str, noun: str, low: int, high: int, *, shown: str | None = None) -> int:
    """``shown``: the whole value to quote in the error, when ``value`` is one part of it."""
    if not _INT.fullmatch(value) or not low <= int(value) <= high:
        raise InvalidArgument(key, shown or value, f"{noun} must be an integer from {low} to {high}")
    return int(value)


def signed_int(key: str, value: str, noun: str) -> int:
    if not _INT.fullmatch(value):
        raise InvalidArgument(key, value, f"{noun} must be an integer")
    return int(value)


def number(key: str, value: str, noun: str, *, low: float, high: float) -> float:
    if not _NUMBER.fullmatch(value) or not low <= float(value) <= high:
        raise InvalidArgument(
            key, value, f"{noun} must be a number from {fmt_float(low)} to {fmt_float(high)}"
        )
    return float(value)


def dimension(key: str, value: str, noun: str) -> Dim:
    """``400`` (pixels) or ``0.5`` (a fraction of the reference size; ``1.0`` means 100%)."""
    if _INT.fullmatch(value) and int(value) >= 1:
        return Dim(int(value), relative=False)
    if _DECIMAL.fullmatch(value) and 0 < float(value) <= 100:
        return Dim(float(value), relative=True)
    raise InvalidArgument(key, value, f"{noun} must be a positive integer or a fraction")


def offset(key: str, value: str, noun: str) -> Dim:
    """Signed pixels (``-200``) or a signed fraction of the reference size (``0.15``)."""
    if _INT.fullmatch(value):
        return Dim(int(value), relative=False)
    if _DECIMAL.fullmatch(value) and abs(float(value)) <= 100:
        return Dim(float(value), relative=True)
    raise InvalidArgument(key, value, f"{noun} must be an integer (pixels) or a decimal fraction")


def ratio(key: str, value: str, noun: str) -> float:
    """``16:9`` or ``1.5``."""
    if ":" in value:
        left, _, right = value.partition(":")
        if _NUMBER.fullmatch(left) and _NUMBER.fullmatch(right) and float(left) > 0 and float(right) > 0:
            return float(left) / float(right)
    elif _NUMBER.fullmatch(value) and float(value) > 0:
        return float(value)
    raise InvalidArgument(key, value, f"{noun} must be a ratio like 16:9 or a positive decimal like 1.5")


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
