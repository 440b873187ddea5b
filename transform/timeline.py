"""Which frames of an original are delivered, and when: pg_ chooses them, vs_ samples them, dl_ sets their
delays and e_loop the loop count (transform/ops/pages.py parses them; the renderer asks here).

Sampling (Cloudinary's ``vs_``: "spread evenly over the duration of the animation") is by time: vs_10
takes the frames shown at 10 evenly spaced instants of the animation, vs_0.5s those shown every half
second. A frame shown at several of the instants is kept once, and a frame shown between two instants only
is dropped. The duration is kept: each frame kept is shown until the next one's instant, so the animation
plays at its own speed with fewer frames (unless dl_ sets the delays). Sampling the frames rather than
decoding them all: only the frames kept are decoded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import pyvips

from transform.decode import page_count
from transform.limits import Limits
from transform.ops.pages import Pages, Sampling, Timing

#: The most frames vs_ samples from (the first ones chosen): minutes of a video-like GIF, and a bound on
#: the work a URL can ask for before any frame is decoded (pg_ may list every frame 100 times).
MAX_SAMPLED = 10_000
#: libvips' delay for a frame whose file gives none.
DEFAULT_DELAY = 100


@dataclass(frozen=True)
class Timeline:
    """The frames delivered (0-based pages of the original, in order), each one's delay in ms, and libvips'
    loop count (how many times it plays; 0: forever)."""

    pages: tuple[int, ...]
    delays: tuple[int, ...]
    loop: int


def timeline(header: pyvips.Image, pages: Pages | None, timing: Timing, limits: Limits) -> Timeline:
    """The frames of the original whose first page's header is ``header`` that are delivered: those pg_
    chooses (all without it), sampled by vs_, at most ``limits.max_frames`` (the first ones), with the
    delays and loop of the file unless dl_ and e_loop say otherwise."""
    count = page_count(header)
    span = MAX_SAMPLED if timing.sampling is not None else limits.max_frames
    chosen = pages.select(count, span) if pages is not None else tuple(range(min(count, span)))
    known = _delays(header)
    delays = [known[page] if page < len(known) else DEFAULT_DELAY for page in chosen]
    if timing.sampling is not None:
        kept = sample(delays, timing.sampling)
        chosen, delays = tuple(chosen[index] for index, _ in kept), [delay for _, delay in kept]
    chosen, delays = chosen[: limits.max_frames], delays[: limits.max_frames]
    if timing.delay is not None:
        delays = [timing.delay] * len(chosen)
    loop = timing.loop.plays if timing.loop is not None else _loop(header)
    return Timeline(chosen, tuple(delays), loop)


def sample(delays: Sequence[int], sampling: Sampling) -> list[tuple[int, int]]:
    """(index, delay in ms) of each frame kept of an animation whose frames have ``delays``: [100, 200, 300,
    400] sampled by vs_2 (instants 0 and 500 ms) -> [(0, 500), (2, 500)]. Frames without delays (all 0)
    are sampled as if equally long, and keep no delay."""
    total = sum(delays)
    if sampling.frames is not None and sampling.frames >= len(delays):
        return list(enumerate(delays))  # as many instants as frames, or more: every frame is shown
    if sampling.seconds is not None and total == 0:
        return list(enumerate(delays))  # no time to sample by
    weights = list(delays) if total else [1] * len(delays)
    if sampling.frames is not None:
        step = Fraction(sum(weights), sampling.frames)
    else:
        assert sampling.seconds is not None
        step = Fraction(sampling.seconds) * 1000
    kept: list[tuple[int, Fraction]] = []  # each frame kept, with the first instant it is shown at
    start = 0
    for index, weight in enumerate(weights):
        instant = math.ceil(start / step) * step
        if instant < start + weight:
            kept.append((index, instant))
        start += weight
    scale = Fraction(total, sum(weights))  # 1, or 0 for frames without delays
    bounds = [round(instant * scale) for _, instant in kept] + [total]
    return [(index, bounds[k + 1] - bounds[k]) for k, (index, _) in enumerate(kept)]


def _delays(header: pyvips.Image) -> list[int]:
    """The animation's delays in ms, one per page of the file (libvips gives them all, whichever pages
    were opened); an empty list when the file has none."""
    if header.get_typeof("delay") == 0:
        return []
    return [int(delay) for delay in header.get("delay")]


def _loop(header: pyvips.Image) -> int:
    return int(header.get("loop")) if header.get_typeof("loop") != 0 else 0
