"""Pages and animation timing: which frames of an animated original are delivered (``pg_``), how they are
sampled (``vs_``), how long each is shown (``dl_``) and how often the animation plays (``e_loop``).

Cloudinary documents ``pg_2`` as "deliver only the second frame" of an animated image, numbered from 1;
its paged-media guide lists ``pg_3;5;7``, ranges ``pg_3-5`` and ranges to the end ``pg_5-``. Here a list
or range keeps those frames, in the order written, as an animation when the delivered format animates
(GIF, WebP), else the first of them. Its animated-images guide defines ``dl_<ms>`` (the delay between
frames) and ``vs_`` (an integer: that many frames sampled evenly over the animation's duration; a number
of seconds, ``vs_0.3s``: one frame sampled every 0.3 s); its SDKs define ``e_loop[:<n>]`` as n additional
plays (n + 1 in all), forever without n.

None of them is a step on the image: the plan compiler takes them out of their component, wherever it is
in the chain (as it does ``f_`` and ``q_``), and the renderer applies them (transform/timeline.py).
Whether a page exists is known only once the original is open: ``Pages.select`` is the renderer's check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from grammar.errors import BadRequest, InvalidArgument
from transform.ops import args
from transform.ops.registry import Action, EffectSpec, ParamSpec, effect, param

_PART = re.compile(r"([0-9]+)(?:(-)([0-9]+)?)?")
#: The most numbers one pg_ may list: far more than any animation's frames (the renderer keeps at most
#: Limits.max_frames), few enough that a URL cannot make the check itself long.
MAX_PARTS = 100
_EXPECTED = (
    "pages must be frame numbers from 1, ranges <first>-<last>, <first>- (to the last frame) or these "
    "joined by ';' (pg_2, pg_2-4, pg_5-, pg_1;3)"
)
#: GIF's longest frame delay (65535 hundredths of a second); WebP holds longer ones, no viewer needs them.
MAX_DELAY = 655_350
#: The most additional plays e_loop may ask for: a WebP holds 65535 plays in all (GIF one more).
MAX_LOOPS = 65_534
_FRAMES = re.compile(r"[0-9]{1,9}")
_SECONDS = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?s")
_SAMPLING = "sampling must be a number of frames (vs_10) or of seconds between frames (vs_0.5s)"


@dataclass(frozen=True)
class Pages:
    """``pg_1-3;5;7-`` -> Pages(((1, 3), (5, 5), (7, None))): 1-based, inclusive ranges in the order
    written; None: to the last frame."""

    ranges: tuple[tuple[int, int | None], ...]

    def __str__(self) -> str:
        return ";".join(str(a) if a == b else f"{a}-{b or ''}" for a, b in self.ranges)

    @property
    def one(self) -> bool:
        """Exactly one frame, whatever the image (pg_2, pg_2-2): delivered as a still."""
        return len(self.ranges) == 1 and self.ranges[0][0] == self.ranges[0][1]

    def select(self, count: int, limit: int) -> tuple[int, ...]:
        """The 0-based indexes of the chosen pages of an image with ``count`` of them, at most ``limit``;
        a 400 naming the first page it does not have."""
        for first, last in self.ranges:
            missing = max(first, last or first)
            if missing > count:
                what = "frame" if count == 1 else "frames"
                raise InvalidArgument("pg", str(self), f"page {missing} does not exist: the image has "
                                      f"{count} {what} (pages count from 1)")  # fmt: skip
        chosen = (page - 1 for first, last in self.ranges for page in range(first, (last or count) + 1))
        return tuple(page for page, _ in zip(chosen, range(limit), strict=False))


@dataclass(frozen=True)
class Sampling:
    """``vs_10`` -> Sampling(frames=10); ``vs_0.5s`` -> Sampling(seconds=Decimal("0.5"))."""

    frames: int | None = None
    seconds: Decimal | None = None

    def __str__(self) -> str:
        return str(self.frames) if self.seconds is None else f"{self.seconds.normalize():f}s"


@dataclass(frozen=True)
class Loop:
    """``e_loop:2`` -> Loop(2): two plays after the first; ``e_loop`` -> Loop(None): forever."""

    additional: int | None

    def __str__(self) -> str:
        return "loop" if self.additional is None else f"loop:{self.additional}"

    @property
    def plays(self) -> int:
        """libvips' ``loop``: how many times the animation plays, 0 for forever."""
        return 0 if self.additional is None else self.additional + 1


@dataclass(frozen=True)
class Timing:
    """What a URL says of the delivered animation's timing; all None: the original's kept."""

    delay: int | None = None
    sampling: Sampling | None = None
    loop: Loop | None = None

    def named(self) -> list[str]:
        """The parameters given, as the URL writes them canonically (what a 400 names)."""
        given = [("dl", self.delay), ("vs", self.sampling), ("e", self.loop)]
        return [f"{key}_{value}" for key, value in given if value is not None]


def check_timing(timing: Timing, pages: Pages | None) -> None:
    """A 400 for timing an animation the URL itself makes one frame (pg_2: a still), rather than a
    parameter silently without effect."""
    named = timing.named()
    if named and pages is not None and pages.one:
        raise BadRequest(
            f"Invalid transformation: {named[0]} times the frames of an animation, and pg_{pages} delivers "
            "one frame as a still; choose several (pg_2-4) or leave it out"
        )


def _number(key: str, value: str, digits: str) -> int:
    """Leading zeros are no digits (pg_0001 is page 1); past 9 digits a number is past any image's frames
    and refused as written (clamping it would name another page in the 400 and the canonical text)."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > 9:
        raise InvalidArgument(key, value, "page numbers of at most 9 digits (no image has more frames)")
    return int(significant)


def _pages(key: str, value: str) -> Pages:
    parts = value.split(";")
    if len(parts) > MAX_PARTS:
        raise InvalidArgument(key, value, f"{_EXPECTED}, at most {MAX_PARTS} of them")
    ranges: list[tuple[int, int | None]] = []
    for part in parts:
        found = _PART.fullmatch(part)
        if found is None:
            why = "; a name (PSD layers) is not supported" if part.startswith(("name", "embedded")) else ""
            raise InvalidArgument(key, value, _EXPECTED + why)
        first = _number(key, value, found.group(1))
        if found.group(3) is not None:
            last: int | None = _number(key, value, found.group(3))
        else:
            last = None if found.group(2) else first  # "5-": to the last frame
        if first < 1:
            raise InvalidArgument(key, value, "pages count from 1 (pg_1 is the first frame)")
        if last is not None and last < first:
            raise InvalidArgument(key, value, f"the range {part} goes backwards; write it first-last")
        ranges.append((first, last))
    return Pages(tuple(ranges))


def _delay(key: str, value: str) -> int:
    return args.int_in(key, value, "the delay in milliseconds", 1, MAX_DELAY)


def _sampling(key: str, value: str) -> Sampling:
    if _FRAMES.fullmatch(value) and int(value) >= 1:
        return Sampling(frames=int(value))
    if _SECONDS.fullmatch(value) and Decimal(value[:-1]) > 0:
        return Sampling(seconds=Decimal(value[:-1]))
    why = "; a percentage is not supported" if value.endswith(("%", "%25")) else ""  # (as written or encoded)
    raise InvalidArgument(key, value, _SAMPLING + why)


def _loop(value: str, rest: str) -> Loop:
    if rest == "":
        return Loop(None)
    return Loop(args.int_in("e", rest, "e_loop's additional plays", 0, MAX_LOOPS, shown=value))


def _not_a_step(arguments: Any, prefix: str) -> Action:
    raise AssertionError("e_loop is taken out of its component by the plan compiler")


param(
    ParamSpec(
        "pg",
        "pages",
        _pages,
        "frames of an animated original (pages of a multi-page TIFF), numbered from 1: pg_2 delivers the "
        "second frame as a still image; a list or range (pg_1;3, pg_2-4, pg_3- to the last frame) keeps "
        "those frames as an animation when the delivered format animates (GIF, WebP), else the first of them",
        "pages",
        str,
    )
)
param(
    ParamSpec(
        "dl",
        "delay",
        _delay,
        "the delay of every frame of a delivered animation, in milliseconds (a GIF holds hundredths of a "
        "second: rounded to 10 ms); a 400 with a format that does not animate",
        "pages",
    )
)
param(
    ParamSpec(
        "vs",
        "video sampling",
        _sampling,
        "frames of an animation sampled evenly over its duration: vs_10 keeps 10 of them, vs_0.5s the one "
        "shown every half second; the duration is kept (each frame shown until the next sampled one) unless "
        "dl_ sets the delays; a 400 with a format that does not animate",
        "pages",
    )
)
effect(
    EffectSpec(
        "loop",
        _loop,
        str,
        _not_a_step,
        "how often a delivered animation plays: e_loop forever, e_loop:<n> n more times after the first; "
        "absent, the original's loop is kept; a 400 with a format that does not animate",
    )
)
