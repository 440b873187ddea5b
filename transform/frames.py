"""Animations: an animated GIF or WebP original transformed frame by frame.

libvips opens the frames of an animation as one tall strip, each frame ``page-height`` high, with the
animation's ``delay`` (ms per frame) and ``loop`` (0: forever) as metadata; its GIF and WebP writers
write such a strip back as an animation. Scaling a strip scales every frame (``thumbnail`` with
shrink-on-load, the fast path), but a crop, a rotation or a layer placed at a gravity would treat the
strip as one image. So the frames are cut apart, every step runs on each of them as on a still image,
and the results are stacked into a strip again with their delays and the loop count (the original's, or
what dl_, vs_ and e_loop make of them: transform/timeline.py chooses the frames and their timing).

What chooses where to cut by looking at the content must choose the same place on every frame: g_auto
is the centre (Cloudinary: "animated images: center"); what detects faces or removes the background
(one model run, one cached mask per frame) is a 400 naming it, which suggests one frame (``pg_``).

Limits: the frames delivered count together against the pixel limits (a small GIF of thousands of
frames is as large as a photograph of their total), and at most ``Limits.max_frames`` are delivered,
the first ones (of those vs_ sampled), as Cloudinary truncates what it transforms on the fly to 100 frames.
The frames decoded count as well: a frame of a GIF or WebP is drawn over the ones before it, so reaching
frame n decodes the n - 1 before it too (``check_decoded``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyvips

from grammar.errors import BadRequest, TooLarge
from transform import pixels
from transform.decode import Source, open_image, thumbnail
from transform.formats import ANIMATED
from transform.limits import Limits, check_output, megapixels
from transform.ops import Action, Ctx
from transform.runner import run_each
from transform.watch import Watch

#: What libvips' loaders put on a strip; a frame cut from one must not carry them into the steps
#: (``thumbnail_image`` of an image with a page-height would scale it as pages).
_STRIP_FIELDS = ("page-height", "n-pages", "delay", "gif-delay", "loop", "gif-loop")


def check_frames(width: int, height: int, count: int, limits: Limits) -> None:
    """Refuse an animation whose frames, together, are larger than the originals' limit (before any is
    decoded: a GIF of 5000 frames of 100x100 pixels decodes to 50 megapixels)."""
    total = width * height * count
    if total > limits.max_pixels:
        raise TooLarge(
            f"Animation is too large: {count} frames of {width}x{height} pixels ({megapixels(total)} "
            f"megapixels together); the limit is {megapixels(limits.max_pixels)} megapixels: deliver fewer "
            "frames (pg_) or one"
        )


def check_decoded(width: int, height: int, pages: Sequence[int], original: str, limits: Limits) -> None:
    """Refuse to decode the frames ``pages`` (0-based, in the order ``load`` reads them) of a GIF or WebP
    when the frames decoded to reach them are, together, larger than the originals' limit. Each frame is
    drawn over the ones before it (libnsgif, libwebp's animation decoder), so reaching frame n decodes
    every frame before it too, inside one libvips region request: the render's watch, which stops work
    between tiles (transform/watch.py), cannot stop that, and pg_10000 of 10000 frames of 1000x1000
    pixels held a render thread for a minute. Bounded here, before any is decoded, a decode is bounded
    by the limit as a still's is. Each run of consecutive pages ``load`` decodes counts from the first
    frame (an upper bound). A TIFF's pages are decoded alone: not counted."""
    decoded = sum(first + count for first, count in _runs(pages))
    total = width * height * decoded
    if original in ANIMATED and total > limits.max_pixels:
        reach = f"frame {pages[0] + 1}" if len(pages) == 1 else f"frames up to {max(pages) + 1}"
        raise TooLarge(
            f"Animation is too large: each frame is drawn over the frames before it, so delivering {reach} "
            f"decodes {decoded} frames of {width}x{height} pixels ({megapixels(total)} "
            f"megapixels together); the limit is {megapixels(limits.max_pixels)} megapixels: deliver "
            "earlier frames (pg_)"
        )


def still_only(plan_reason: str | None) -> None:
    """A 400 for steps that cannot run on each frame (see ``Action.still_only``)."""
    if plan_reason is not None:
        raise BadRequest(
            f"Invalid transformation: {plan_reason} is not supported on an animated image (it would run "
            "on every frame); deliver one frame with pg_ (pg_1 is the first) or a format that does not "
            "animate (f_jpg, f_png)"
        )


def load(
    source: Source, pages: Sequence[int], limits: Limits, size: tuple[int, int] | None, watch: Watch
) -> list[pyvips.Image]:
    """The chosen frames (0-based page numbers, in that order; transform/timeline.py chooses them) of
    ``source`` as separate 8-bit sRGB images, each owned by ``watch``, scaled to ``size`` with
    shrink-on-load when given."""
    frames: list[pyvips.Image] = []
    for first, count in _runs(pages):
        # Consecutive frames are decoded together: a GIF frame is drawn over the ones before it, so
        # decoding frames one by one would decode the start of the animation again for each.
        # Owned before it is computed, so that stopping the render stops the decode at its next tile.
        if size is not None:  # (thumbnail is an operation libvips never caches: this render's alone)
            strip = watch.own(thumbnail(source, *size, autorotate=False, page=first, pages=count), fresh=True)
        else:
            strip = watch.own(pixels.normalize(open_image(source, limits, page=first, pages=count)[0]))
        # In memory once: each frame is read by its own steps, in whatever order they read it.
        strip = watch.materialise(strip)
        height = strip.height // count
        for index in range(count):
            frame = strip.crop(0, index * height, strip.width, height).copy()
            for name in _STRIP_FIELDS:
                if frame.get_typeof(name) != 0:
                    frame.remove(name)
            frames.append(watch.own(frame, fresh=True))  # a copy of its own
        watch.release(strip)
    return frames


def run_frames(steps: Sequence[Action], ctx: Ctx, frames: list[pyvips.Image]) -> list[pyvips.Image]:
    """Every step on every frame, step by step, so that a step that makes frames of different sizes (e_trim
    cuts each to its own content) is named in the 400."""

    def check(step: Action, made: list[pyvips.Image]) -> None:
        sizes = {(frame.width, frame.height) for frame in made}
        if len(sizes) > 1:
            raise BadRequest(
                f"Invalid transformation: {step.canonical} makes frames of different sizes "
                f"({', '.join(f'{w}x{h}' for w, h in sorted(sizes))}) of this animated image, which an "
                "animation cannot hold; deliver one frame with pg_ (pg_1 is the first)"
            )
        width, height = sizes.pop()
        check_output(width, height * len(made), ctx.limits)

    return run_each(steps, ctx, frames, check)


def join(frames: list[pyvips.Image], delays: Sequence[int], loop: int) -> pyvips.Image:
    """The frames as one strip that libvips' GIF and WebP writers write as an animation."""
    if len({frame.bands for frame in frames}) > 1:
        # A step that looks at the content to choose its bands made some frames transparent and not
        # others: all of them get sRGB with alpha, as arrayjoin wants one band count.
        frames = [pixels.with_alpha(pixels.normalize(frame)) for frame in frames]
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", list(delays))
    strip.set_type(pyvips.GValue.gint_type, "loop", loop)
    return strip


def _runs(pages: Sequence[int]) -> list[tuple[int, int]]:
    """[0, 1, 2, 5, 3] -> [(0, 3), (5, 1), (3, 1)]: (first page, count) of consecutive pages."""
    runs: list[tuple[int, int]] = []
    for page in pages:
        if runs and runs[-1][0] + runs[-1][1] == page:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((page, 1))
    return runs
