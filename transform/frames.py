"""Animations: an animated GIF or WebP original transformed frame by frame.

libvips opens the frames of an animation as one tall strip, each frame ``page-height`` high, with the
animation's ``delay`` (ms per frame) and ``loop`` (0: forever) as metadata; its GIF and WebP writers
write such a strip back as an animation. A crop, a rotation or a layer placed at a gravity would treat
the strip as one image, so the frames are cut apart (the first step's scaling, with a WebP's
shrink-on-load, as they are), every step runs on each of them as on a still image,
and the results are stacked into a strip again with their delays and the loop count (the original's, or
what dl_, vs_ and e_loop make of them: transform/timeline.py chooses the frames and their timing).

What chooses where to cut by looking at the content must choose the same place on every frame: g_auto
is the centre (Cloudinary: "animated images: center"); what detects faces or removes the background
(one model run, one cached mask per frame) is a 400 naming it, which suggests one frame (``pg_``).

Limits: the frames delivered count together against the pixel limits (a small GIF of thousands of
frames is as large as a photograph of their total), and at most ``Limits.max_frames`` are delivered,
the first ones (of those vs_ sampled), as Cloudinary truncates what it transforms on the fly to 100 frames.
The frames decoded count as well: a frame of a GIF or WebP is drawn over the ones before it, so reaching
frame n decodes the n - 1 before it too (``check_decoded``), once for all the frames chosen (``load``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyvips

from grammar.errors import BadRequest, TooLarge
from transform import pixels
from transform.decode import Source, open_image
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
    """Refuse to decode the frames ``pages`` (0-based) of a GIF or WebP when the frames decoded to reach
    them are, together, larger than the originals' limit. Each frame is drawn over the ones before it
    (libnsgif, libvips' WebP compositor), so reaching frame n decodes every frame before it too: for a
    still of frame n, inside one libvips region request that the render's watch, which stops work between
    tiles (transform/watch.py), cannot stop (pg_10000 of 10000 frames of 1000x1000 pixels held a render
    thread for a minute); for an animation, in one read from the first frame to the last one chosen,
    each frame decoded once whichever are chosen, or in a loader per run of consecutive frames where that
    costs less (``load``), each an unstoppable request too. Bounded here, before any is decoded, a decode
    is bounded by the limit as a still's is. A TIFF's pages are decoded alone: not counted."""
    decoded = max(pages) + 1
    total = width * height * decoded
    if original in ANIMATED and total > limits.max_pixels:
        reach = f"frame {decoded}" if len(set(pages)) == 1 else f"frames up to {decoded}"
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
    """The chosen frames (0-based page numbers, in that order, repeats allowed; transform/timeline.py
    chooses them) of ``source`` as separate 8-bit sRGB images, each owned by ``watch``, scaled to ``size``
    (a WebP with shrink-on-load) when given."""
    # A GIF or WebP frame is drawn over the ones before it, so a loader decodes every frame before the
    # first it delivers. Two ways to read the runs of consecutive frames chosen, whichever costs less:
    # - one loader over the frames up to the last one chosen, each run cropped from it in increasing
    #   order: each frame decoded once (vs_10 of 300 frames: 300 frames, not the 1360 of a loader per run),
    #   but libvips carries the whole strip: a GIF's sequential loader line by line, a few lines per
    #   request (``_strip_cost``), a WebP's loader (not sequential) decoding it whole into memory or an
    #   unlinked temporary file at the first request;
    # - a loader per run (``page``, ``pages``): each decodes the frames before its run again, inside the
    #   decoder (libnsgif, libwebp), and carries only its run (pg_1;300: 301 frames decoded, 2 carried).
    # Either decode is one libvips request the render's watch cannot stop, as a still's decode is one:
    # check_decoded bounded the frames up to the last one chosen by the limit before any is decoded, so
    # the one loader's work is bounded; loaders per run are taken only where they cost less and their
    # frames together are within the limit as well.
    reach = max(pages) + 1
    runs = _runs(sorted(set(pages)))  # in increasing order: a strip is read top to bottom
    header, fmt = open_image(source, limits)  # (the render's own open of the header: libvips' cache)
    scale = 1.0
    if size is not None and fmt == "webp":  # libwebp decodes smaller (what thumbnail does); the rest is
        scale = min(1.0, max(size[0] / header.width, size[1] / header.height))  # scaled per frame
    per_run = sum(first + count for first, count in runs)
    strip_cost = _strip_cost(fmt, header.width, header.height) * reach
    decoded: dict[int, pyvips.Image] = {}
    # Loaders per run only where their decodes together are within the limit too, as the one loader's
    # are (check_decoded): whichever way is taken, what is decoded is bounded by the limit.
    bounded = per_run * header.width * header.height <= limits.max_pixels
    if per_run <= strip_cost and bounded:
        for first, count in runs:
            strip = _open_strip(source, limits, first, count, scale, watch)
            decoded.update(_read_run(strip, first, 0, count, size))
            watch.release(strip)
    else:
        strip = _open_strip(source, limits, 0, reach, scale, watch)
        for first, count in runs:  # stopped between runs, the render stops at the next one (owned strip)
            decoded.update(_read_run(strip, first, first, count, size))
        watch.release(strip)
    return [watch.own(decoded[page]) for page in pages]  # each a copy of its own (a page may repeat)


def _open_strip(
    source: Source, limits: Limits, page: int, count: int, scale: float, watch: Watch
) -> pyvips.Image:
    """Frames ``page`` to ``page + count - 1`` as a strip, 8-bit sRGB, owned by ``watch``."""
    # Sequential: a GIF loader holds only its current frame. (A sequential load is never cached: this
    # render's own.)
    opened, _ = open_image(source, limits, access="sequential", page=page, pages=count, scale=scale)
    # Owned before it is computed, so that stopping the render stops the decode at its next tile.
    return watch.own(pixels.normalize(opened))


def _read_run(
    strip: pyvips.Image, first: int, at: int, count: int, size: tuple[int, int] | None
) -> dict[int, pyvips.Image]:
    """The ``count`` frames from frame ``at`` of ``strip`` (frames ``first``... of the animation), in
    memory, each scaled to ``size`` when given: one evaluation, each frame scaled as a page."""
    height = strip.get("page-height") if strip.get_typeof("page-height") != 0 else strip.height // count
    run = strip.crop(0, at * height, strip.width, count * height).copy()
    run.set_type(pyvips.GValue.gint_type, "page-height", height)
    if size is not None:
        run = run.thumbnail_image(size[0], height=size[1], size="force", no_rotate=True)
    run = run.copy_memory()  # in memory: each frame is read by its own steps, in whatever order
    frames: dict[int, pyvips.Image] = {}
    for index in range(count):
        frame = run.crop(0, index * run.height // count, run.width, run.height // count).copy()
        for name in _STRIP_FIELDS:
            if frame.get_typeof(name) != 0:
                frame.remove(name)
        frames[first + index] = frame
    return frames


def _strip_cost(fmt: str, width: int, height: int) -> float:
    """What one loader over the whole strip costs per frame it passes, in frames decoded by a loader of
    their own (measured, libvips 8.18, 150 frames, the last one read). A WebP strip is decoded whole into
    memory or a temporary file: ~3 (400x400: 3.2 to 3.4). A GIF's sequential loader is asked for the strip
    a few lines at a time, at ~4 us a request, as many lines as the largest divisor of the frame height up
    to 16 (a prime height: one line), while its frames decode at ~3 ns a pixel and ~10 ns a line: 400x400
    1.1, 400x401 3.2, 50x53 19, 2x4001 87."""
    if fmt != "gif":
        return 3.0
    lines = max(lines for lines in range(1, 17) if height % lines == 0)
    return 1.0 + 4000 / (lines * (3 * width + 10))


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
    """[0, 1, 2, 5, 6, 9] -> [(0, 3), (5, 2), (9, 1)]: (first page, count) of consecutive pages."""
    runs: list[tuple[int, int]] = []
    for page in pages:
        if runs and runs[-1][0] + runs[-1][1] == page:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((page, 1))
    return runs
