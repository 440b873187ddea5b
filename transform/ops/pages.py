"""Pages ``pg_<n>``: which frames of an animated original (or pages of a multi-page TIFF) are delivered.

Cloudinary documents ``pg_2`` as "deliver only the second frame" of an animated image, numbered from 1;
its SDKs write several as ``pg_2;4`` and ranges as ``pg_2-4`` (url-gen's ``getFrame().byRange(2, 4)``),
which its paged-media guide defines for PDFs. Here a list or range keeps those frames, in the order
written, as an animation when the delivered format animates (GIF, WebP), else the first of them.

Not a step on the image: the frames are chosen before any step runs, whichever component ``pg_`` is
in (the plan compiler takes it out, as it does ``f_`` and ``q_``). Whether a page exists is known only
once the original is open: ``Pages.select`` is the renderer's check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grammar.errors import InvalidArgument
from transform.ops.registry import ParamSpec, param

_PART = re.compile(r"([0-9]+)(?:-([0-9]+))?")
#: The most numbers one pg_ may list: far more than any animation's frames (the renderer keeps at most
#: Limits.max_frames), few enough that a URL cannot make the check itself long.
MAX_PARTS = 100
_EXPECTED = (
    "pages must be frame numbers from 1, ranges <first>-<last> or both joined by ';' (pg_2, pg_2-4, pg_1;3)"
)


@dataclass(frozen=True)
class Pages:
    """``pg_1-3;5`` -> Pages(((1, 3), (5, 5))): 1-based, inclusive ranges in the order written."""

    ranges: tuple[tuple[int, int], ...]

    def __str__(self) -> str:
        return ";".join(str(a) if a == b else f"{a}-{b}" for a, b in self.ranges)

    def select(self, count: int, limit: int) -> tuple[int, ...]:
        """The 0-based indexes of the chosen pages of an image with ``count`` of them, at most ``limit``;
        a 400 naming the first page it does not have."""
        for _, last in self.ranges:
            if last > count:
                what = "frame" if count == 1 else "frames"
                raise InvalidArgument("pg", str(self), f"page {last} does not exist: the image has {count} "
                                      f"{what} (pages count from 1)")  # fmt: skip
        chosen = (page - 1 for first, last in self.ranges for page in range(first, last + 1))
        return tuple(page for page, _ in zip(chosen, range(limit), strict=False))


def _number(digits: str) -> int:
    """Past 9 digits a number is past any image's frames either way: clamped, so int() stays cheap."""
    return int(digits) if len(digits) <= 9 else 10**9


def _pages(key: str, value: str) -> Pages:
    parts = value.split(";")
    if len(parts) > MAX_PARTS:
        raise InvalidArgument(key, value, f"{_EXPECTED}, at most {MAX_PARTS} of them")
    ranges = []
    for part in parts:
        found = _PART.fullmatch(part)
        if found is None:
            why = "; a name (PSD layers) is not supported" if part.startswith(("name", "embedded")) else ""
            raise InvalidArgument(key, value, _EXPECTED + why)
        first = _number(found.group(1))
        last = _number(found.group(2)) if found.group(2) is not None else first
        if first < 1:
            raise InvalidArgument(key, value, "pages count from 1 (pg_1 is the first frame)")
        if last < first:
            raise InvalidArgument(key, value, f"the range {part} goes backwards; write it first-last")
        ranges.append((first, last))
    return Pages(tuple(ranges))


param(
    ParamSpec(
        "pg",
        "pages",
        _pages,
        "frames of an animated original (pages of a multi-page TIFF), numbered from 1: pg_2 delivers the "
        "second frame as a still image; a list or range (pg_1;3, pg_2-4) keeps those frames as an "
        "animation when the delivered format animates (GIF, WebP), else the first of them",
        "pages",
        str,
    )
)
