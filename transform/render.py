"""Run a Plan against an original and encode the result."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

import pyvips

from grammar.errors import Undecodable
from grammar.image_formats import WRITABLE
from transform import dynamic, frames, pixels
from transform.decode import (
    Source,
    decode,
    fails_alone,
    open_image,
    oriented_size,
    thumbnail,
    upright,
)
from transform.expressions import AssetFacts
from transform.faces import FaceSource
from transform.formats import (
    ANIMATED,
    FormatChoice,
    check_animated,
    check_chroma,
    check_fits,
    check_lossy,
    check_metadata,
    check_progressive,
    check_quality,
    encode,
    fits,
    original_metadata,
)
from transform.limits import Limits, check_output
from transform.metadata import attribution
from transform.ops import Action, Ctx, LoadLayer
from transform.plan import Plan
from transform.runner import block_source_key, run_steps
from transform.seam import MaskSource
from transform.timeline import Timeline, timeline
from transform.watch import UNWATCHED, Watch

DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Rendered:
    data: bytes
    format: str
    width: int
    height: int  # of one frame, for an animation
    has_alpha: bool
    frames: int = 1


def render(
    plan: Plan,
    source: Source,
    *,
    source_key: str,
    choice: FormatChoice,
    load_layer: LoadLayer | None = None,
    masks: MaskSource | None = None,
    faces: FaceSource | None = None,
    limits: Limits = DEFAULT_LIMITS,
    watch: Watch = UNWATCHED,
    uncounted: Callable[[], AbstractContextManager[None]] = nullcontext,
    asset: AssetFacts | None = None,
) -> Rendered:
    """Thread-safe: nothing is shared between calls but the (immutable) plan. ``watch`` stops the render
    from another thread (``Watch.stop``): its libvips work ends at the next tile, and the render raises
    the error it was stopped with, whatever libvips or a step raised meanwhile. ``uncounted`` (see
    ``Ctx.uncounted``) runs the work a time budget does not count. ``asset``: the delivered asset's tags,
    context and custom coordinates, for a plan that reads them (``Plan.needs_asset``; none: no tags)."""
    try:
        watch.check()  # stopped before it began (its client left while it waited for a thread)
        asset = asset or AssetFacts()
        if plan.needs_asset:
            # Masks and faces are keyed by what the steps before them made, which the asset's tags and
            # context decide too when a condition reads them.
            source_key = f"{source_key}|asset:{asset.token}"
        layers: list[Source] = []  # the layers' originals decoded: a failure may be theirs

        def decode_layer(layer: Source, autorotate: bool) -> pyvips.Image:
            layers.append(layer)
            return watch.own(decode(layer, limits, autorotate))

        ctx = Ctx(
            source_key=block_source_key(source_key, plan.autorotate),
            decode=decode_layer,
            masks=masks,
            faces=faces,
            load_layer=load_layer,
            limits=limits,
            watch=watch,
            uncounted=uncounted,
            asset=asset,
        )
        return _render(plan, source, choice, ctx, layers)
    except Exception as exc:
        # Whatever libvips ("killed for image") or a step made of being stopped. Not kept in a local:
        # this frame is in the error's traceback, and a local naming the error would make a cycle.
        if watch.error is not None and exc is not watch.error:
            raise watch.error from exc
        raise
    finally:
        watch.close()


def _render(plan: Plan, source: Source, choice: FormatChoice, ctx: Ctx, layers: Sequence[Source]) -> Rendered:
    limits, watch = ctx.limits, ctx.watch
    pages: Sequence[int] = (0,)  # the original's pages decoded, once chosen
    try:
        # The first page's header, opened once for every question below (each open sniffs the file).
        header, original = open_image(source, limits)
        if plan.animated or plan.timing.named():  # (the server checked by the extension: by content here)
            check_animated(plan, choice, original)
        stored = _as_stored(plan, source, choice, (header, original), limits)
        if stored is not None:
            return stored
        if plan.reads:  # iw, ih and pc: the original upright (unless a_ignore), from its header
            ctx = replace(ctx, origin=dynamic.origin(header, oriented_size(header, plan.autorotate)))
        chosen, animation = _delivery(plan, header, original, choice, limits)
        pages = chosen.pages if animation is not None else chosen.pages[:1]
        if animation is not None:
            return _animate(plan, source, (header, original), chosen, animation, choice, ctx)
        # A still: the first frame chosen (pg_, vs_), or the first of an animation asked in a still format.
        page = chosen.pages[0]
        # (and what _preview decodes)
        frames.check_decoded(header.width, header.height, chosen.pages[:1], original, limits)
        if page != 0:
            # The page's key: a face detection or mask of page 3 is not page 1's.
            ctx = replace(ctx, source_key=f"{ctx.source_key}|page{page + 1}")
        ctx = replace(ctx, preview=_preview(source, plan.autorotate, limits, page, watch))
        image, original, steps = _start(plan, source, limits, page, watch)
        image = run_steps(steps, ctx, image)
        check_output(image.width, image.height, limits)  # also when there were no steps
        return _finish(image, plan, choice, original, watch, header)
    except pyvips.Error as exc:
        # Damaged data (a 422) or a fault of ours (a 500, such as a pipeline reading a sequential source
        # twice: "out of order read")? Not from the error's text, which under concurrent renders is often
        # empty or another thread's (decode.fails_alone): from decoding what the render read, alone. A
        # stopped render is neither: render() raises what stopped it.
        if watch.stopped:
            raise
        culprit = _damaged(source, pages, layers, watch)
        if culprit is None:
            raise
        said = exc.detail.strip() or "libvips gave no reason"
        raise Undecodable(
            "Image cannot be decoded: damaged image data",
            detail=f"{culprit} fails to decode on its own ({exc.message}: {said})",
        ) from exc


def _damaged(source: Source, pages: Sequence[int], layers: Sequence[Source], watch: Watch) -> str | None:
    """What of the render's input is damaged: "the original", "layer <name>", or None (none is)."""
    if fails_alone(source, pages, watch.own):
        return "the original"
    for layer in dict.fromkeys(layers):  # each once (a layer placed twice)
        if layer != source and fails_alone(layer, own=watch.own):
            return "layer " + (f"of {len(layer)} bytes" if isinstance(layer, bytes) else os.fspath(layer))
    return None


def delivers_animation(plan: Plan, source: Source, choice: FormatChoice, limits: Limits) -> bool:
    """Whether ``render`` delivers ``source`` as an animation (several frames of a GIF or WebP, in a
    format that animates), from its header alone. Then no step runs the segmentation model (g_auto is the
    centre of every frame, a model step is a 400): a server that makes model runs wait in a queue
    (cutout/schedule.py) renders such a URL at once. Raises what ``render`` would for the header."""
    header, original = open_image(source, limits)
    return _delivery(plan, header, original, choice, limits)[1] is not None


def _delivery(
    plan: Plan, header: pyvips.Image, original: str, choice: FormatChoice, limits: Limits
) -> tuple[Timeline, str | None]:
    """The frames delivered (transform/timeline.py: pg_, vs_, at most ``limits.max_frames``, with their
    delays and loop), and the format they are delivered in as an animation; None when a still is delivered
    (one frame, or a format that does not animate: the first frame chosen)."""
    chosen = timeline(header, plan.pages, plan.timing, limits)
    several = len(chosen.pages) > 1
    return chosen, choice.animated_format(original) if original in ANIMATED and several else None


def _as_stored(
    plan: Plan, source: Source, choice: FormatChoice, opened: tuple[pyvips.Image, str], limits: Limits
) -> Rendered | None:
    """The original's own bytes when the URL asks for it as it is (no transformation at all, its own
    format or none named; d_ and fl_attachment change no byte): as Cloudinary delivers an original, so
    that the upload's ``bytes`` and ``etag`` are what is served, its metadata and animation kept, and
    nothing is decoded. ``opened``: the original's first page and its format."""
    if plan.derivative or choice.vary:  # (no transformation makes transparency: alpha_fallback is moot)
        return None
    header, original = opened
    if original not in WRITABLE or choice.fmt not in (None, original):
        return None
    width, height = oriented_size(header)
    check_output(width, height, limits)
    if isinstance(source, bytes):
        data = source
    else:
        with open(source, "rb") as handle:
            data = handle.read()
    return Rendered(data, original, width, height, pixels.has_alpha(header))


def _preview(
    source: Source, autorotate: bool, limits: Limits, page: int, watch: Watch
) -> Callable[[int], pyvips.Image]:
    def preview(side: int) -> pyvips.Image:
        header, _ = open_image(source, limits, page=page)
        width, height = oriented_size(header, autorotate)
        scale = min(1.0, side / max(width, height))
        size = max(1, round(width * scale)), max(1, round(height * scale))
        # thumbnail is an operation libvips never caches: its result is this render's alone.
        return watch.own(thumbnail(source, *size, autorotate=autorotate, page=page), fresh=True)

    return preview


def _start(
    plan: Plan, source: Source, limits: Limits, page: int, watch: Watch
) -> tuple[pyvips.Image, str, Sequence[Action]]:
    """The image the steps start from (owned by ``watch``), the original's format, and the steps left."""
    image, original = open_image(source, limits, page=page)
    rotate = plan.autorotate
    first = plan.steps[0].scaler if plan.steps else None
    size = first.scaled_size(*oriented_size(image, rotate)) if first is not None else None
    if size is not None:
        check_output(*size, limits)
        # thumbnail is an operation libvips never caches: its result is this render's alone.
        image = watch.own(thumbnail(source, *size, autorotate=rotate, page=page), fresh=True)
        rest = plan.steps[1:]
        if not all(step.sequential for step in rest):
            # thumbnail reads its source once, top to bottom; a rotation, a flip or a smart crop does not
            # (libvips: "out of order read"). The image is already down to its delivered size.
            image = watch.materialise(image)
        return image, original, rest
    if plan.sequential and (upright(image) or not rotate):
        image, _ = open_image(source, limits, access="sequential", page=page)
    return watch.own(pixels.normalize(image.autorot() if rotate else image)), original, plan.steps


def _animate(
    plan: Plan,
    source: Source,
    opened: tuple[pyvips.Image, str],
    chosen: Timeline,
    fmt: str,
    choice: FormatChoice,
    ctx: Ctx,
) -> Rendered:
    """Every chosen frame through the steps (transform/frames.py), delivered as an animation in ``fmt``;
    ``opened``: the original's first page and its format. EXIF orientation is not applied: GIF has none,
    and libvips turns no animation upright."""
    header, original = opened
    frames.still_only(plan.still_only)
    width, height = header.width, header.height  # of one frame: the header is the first page's
    count = len(chosen.pages)
    frames.check_frames(width, height, count, ctx.limits)
    frames.check_decoded(width, height, chosen.pages, original, ctx.limits)
    first = plan.steps[0].scaler if plan.steps else None
    size = first.scaled_size(width, height) if first is not None else None
    if size is not None:
        check_output(size[0], size[1] * count, ctx.limits)
    images = frames.load(source, chosen.pages, ctx.limits, size, ctx.watch)
    steps = plan.steps[1:] if size is not None else plan.steps
    images = frames.run_frames(steps, replace(ctx, animated=True), images)
    strip = frames.join(images, chosen.delays, chosen.loop)
    check_output(strip.width, strip.height, ctx.limits)
    if not choice.vary:
        check_quality(plan.quality, fmt, lossy=plan.lossy)  # under f_auto, where the format takes it
        check_progressive(plan.progressive, fmt)
        check_chroma(plan.quality, fmt)
        check_metadata(plan.metadata, fmt)
    frame_height = images[0].height
    if choice.vary and not fits(fmt, strip.width, frame_height):
        fmt = "gif"  # what every client takes
    check_fits(fmt, strip.width, frame_height)
    strip = _opaque(strip, ctx.watch)
    data = _encode(strip, fmt, plan, header)
    return Rendered(data, fmt, strip.width, frame_height, pixels.has_alpha(strip), frames=len(images))


def _opaque(image: pyvips.Image, watch: Watch) -> pyvips.Image:
    """``image`` without its alpha band when nothing in it is transparent (a smaller file), computed
    once here: the result is then both inspected and encoded."""
    if not pixels.has_alpha(image):
        return image
    image = watch.materialise(image)
    opaque = image.extract_band(image.bands - 1).min() >= 255
    return image.extract_band(0, n=image.bands - 1) if opaque else image


def _encode(image: pyvips.Image, fmt: str, plan: Plan, header: pyvips.Image) -> bytes:
    """``image`` in ``fmt`` as the plan's output flags ask; ``header``: the original's, whose metadata
    fl_keep_iptc keeps (fl_keep_attribution: its rights fields)."""
    metadata = original_metadata(header) if plan.metadata is not None else None
    if metadata is not None and plan.metadata == "attribution":
        metadata = attribution(metadata)
    return encode(image, fmt, plan.quality, progressive=plan.progressive, lossy=plan.lossy, metadata=metadata)


def _finish(
    image: pyvips.Image, plan: Plan, choice: FormatChoice, original: str, watch: Watch, header: pyvips.Image
) -> Rendered:
    fmt = choice.fmt or (original if original in WRITABLE else "png")
    check_quality(plan.quality, fmt, lossy=plan.lossy)  # the original's format kept: known only now
    check_lossy(plan.lossy, fmt)
    if not choice.vary:
        check_progressive(plan.progressive, fmt)
        check_chroma(plan.quality, fmt)
        check_metadata(plan.metadata, fmt)
    if not choice.vary and not choice.alpha_fallback:
        check_fits(fmt, image.width, image.height)  # before computing anything, when nothing can change fmt
    image = _opaque(image, watch)
    transparent = pixels.has_alpha(image)
    if choice.vary and not fits(fmt, image.width, image.height):
        # f_auto promises the best format the client takes; JPEG and PNG every client takes.
        fmt = "jpg" if not transparent and fits("jpg", image.width, image.height) else "png"
    if fmt == "jpg" and transparent:
        if choice.alpha_fallback:
            fmt = "png"
        else:
            background = plan.background
            rgba = background.rgba if background is not None and background.a == 255 else [255, 255, 255, 255]
            image, transparent = pixels.flatten(image, rgba), False
    check_fits(fmt, image.width, image.height)
    data = _encode(image, fmt, plan, header)
    return Rendered(data=data, format=fmt, width=image.width, height=image.height, has_alpha=transparent)
