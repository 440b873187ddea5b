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
from transform.plan import MATERIALISE_EVERY
from transform.watch import Watch

#: About how many lines of a GIF's strip ``load`` passes in one request on the way to a chosen frame (at
#: least a frame): libvips takes ~4 us a request of 1 to 16 lines, so the watch waits at most ~20 ms
#: (plus the decoding of the frames passed) to stop it.
_PASSED_LINES = 4096
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
    thread for a minute); for an animation, in one read from the first frame to the last one chosen
    (``load``; a WebP's inside one request too), each frame decoded once whichever are chosen. Bounded
    here, before any is decoded, a decode is bounded by the limit as a still's is. A TIFF's pages are
    decoded alone: not counted."""
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
    # One loader over the frames up to the last one chosen, read once from the top: a GIF or WebP frame is
    # drawn over the ones before it, and a loader decodes its frames in order. A loader per run of
    # consecutive frames decoded the start again for each run (vs_10 of 300 frames: 1360 frames).
    # What libvips holds meanwhile (libvips 8.18): a GIF loader is sequential, holding only its current
    # frame (300 frames of 400x400: 30 MB in all); the WebP loader is not, and decodes the strip up to the
    # last frame chosen at the first request, into memory (under libvips' 100 MB disc threshold) or an
    # unlinked temporary file, as it decoded each run before. Either way check_decoded has bounded it.
    # (A sequential load is never cached: this render's own.)
    reach = max(pages) + 1
    scale = 1.0
    if size is not None:
        header, fmt = open_image(source, limits)  # (the render's own open of the header: libvips' cache)
        if fmt == "webp":  # libwebp decodes smaller (what thumbnail does); the rest is scaled per frame
            scale = min(1.0, max(size[0] / header.width, size[1] / header.height))
    opened, _ = open_image(source, limits, access="sequential", pages=reach, scale=scale)
    # Owned before it is computed, so that stopping the render stops the decode at its next tile.
    strip = watch.own(pixels.normalize(opened))
    height = strip.height // reach
    step = max(1, _PASSED_LINES // height)  # frames passed per request on the way to a chosen frame
    read = 0  # the frames read so far
    decoded: dict[int, pyvips.Image] = {}
    for first, count in _runs(sorted(set(pages))):  # in increasing order: the strip is read top to bottom
        # The frames in between, passed in requests of their own (a GIF's loader walks every line of the
        # strip on its way, 16 lines per libvips request, 1 for heights with no factor near 16): the
        # watch, which libvips consults once per request, can stop the render between them. (A WebP's
        # strip is decoded at the first request.) A Region.fetch per step would spare the request's
        # threads, but held ~60 KB more per fetch of a WebP strip.
        for reached in range(read + step, first + 1, step):
            strip.crop(0, reached * height - 1, 1, 1).copy_memory()  # the last line of the frames reached
        read = first + count
        # Consecutive frames chosen are computed together (one evaluation, each frame scaled as a page).
        run = strip.crop(0, first * height, strip.width, count * height).copy()
        run.set_type(pyvips.GValue.gint_type, "page-height", height)
        if size is not None:
            run = run.thumbnail_image(size[0], height=size[1], size="force", no_rotate=True)
        run = run.copy_memory()  # in memory: each frame is read by its own steps, in whatever order
        for index in range(count):
            frame = run.crop(0, index * run.height // count, run.width, run.height // count).copy()
            for name in _STRIP_FIELDS:
                if frame.get_typeof(name) != 0:
                    frame.remove(name)
            decoded[first + index] = frame
    watch.release(strip)
    return [watch.own(decoded[page]) for page in pages]  # each a copy of its own (a page may repeat)


def run_frames(steps: Sequence[Action], ctx: Ctx, frames: list[pyvips.Image]) -> list[pyvips.Image]:
    """Every step on every frame, step by step, so that a step that makes frames of different sizes (e_trim
    cuts each to its own content) is named in the 400."""
    watch = ctx.watch  # as plan.run_steps: each frame's step result owned in place of its source
    for done, step in enumerate(steps, 1):
        watch.check()
        made = [watch.own(step.run(ctx, frame)) for frame in frames]
        for frame in frames:
            watch.release(frame)
        frames = made
        sizes = {(frame.width, frame.height) for frame in frames}
        if len(sizes) > 1:
            raise BadRequest(
                f"Invalid transformation: {step.canonical} makes frames of different sizes "
                f"({', '.join(f'{w}x{h}' for w, h in sorted(sizes))}) of this animated image, which an "
                "animation cannot hold; deliver one frame with pg_ (pg_1 is the first)"
            )
        width, height = sizes.pop()
        check_output(width, height * len(frames), ctx.limits)
        if done < len(steps) and (step.wide or done % MATERIALISE_EVERY == 0):
            frames = [watch.materialise(frame) for frame in frames]  # as plan.run_steps, for each frame
    return frames


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
