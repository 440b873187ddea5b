"""Run a Plan against an original and encode the result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyvips

from grammar.errors import Undecodable
from grammar.image_formats import WRITABLE
from transform import dynamic, pixels
from transform.decode import DECODER_FAILURE, Source, decode, open_image, oriented_size, thumbnail, upright
from transform.expressions import AssetFacts
from transform.faces import FaceSource
from transform.formats import FormatChoice, check_fits, check_quality, encode, fits
from transform.limits import Limits, check_output
from transform.ops import Action, Ctx, LoadLayer
from transform.ops.registry import Origin
from transform.plan import Plan, block_source_key, run_steps
from transform.seam import MaskSource

DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Rendered:
    data: bytes
    format: str
    width: int
    height: int
    has_alpha: bool


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
    asset: AssetFacts | None = None,
) -> Rendered:
    """Thread-safe: nothing is shared between calls but the (immutable) plan. ``asset``: the delivered
    asset's tags and context, for a plan that reads them (``Plan.needs_asset``; none: no tags)."""
    stored = _as_stored(plan, source, choice, limits)
    if stored is not None:
        return stored
    asset = asset or AssetFacts()
    if plan.needs_asset:
        # Masks and faces are keyed by what the steps before them made, which the asset's tags and
        # context decide too when a condition reads them.
        source_key = f"{source_key}|asset:{asset.token}"
    ctx = Ctx(
        source_key=block_source_key(source_key, plan.autorotate),
        decode=lambda layer, autorotate: decode(layer, limits, autorotate),
        masks=masks,
        faces=faces,
        load_layer=load_layer,
        limits=limits,
        preview=_preview(source, plan.autorotate, limits),
        origin=_origin(source, plan.autorotate, limits) if plan.reads else None,
        asset=asset,
    )
    try:
        image, original, steps = _start(plan, source, limits)
        image = run_steps(steps, ctx, image)
        check_output(image.width, image.height, limits)  # also when there were no steps
        return _finish(image, plan, choice, original)
    except pyvips.Error as exc:
        # "out of order read" is a pipeline of ours reading a sequential source twice: our bug, not damage.
        if DECODER_FAILURE.search(str(exc)) and "out of order read" not in str(exc):
            raise Undecodable("Image cannot be decoded: damaged image data", detail=str(exc)) from exc
        raise


def _as_stored(plan: Plan, source: Source, choice: FormatChoice, limits: Limits) -> Rendered | None:
    """The original's own bytes when the URL asks for it as it is (no transformation at all, its own
    format or none named; d_ and fl_attachment change no byte): as Cloudinary delivers an original, so
    that the upload's ``bytes`` and ``etag`` are what is served, its metadata and animation kept, and
    nothing is decoded."""
    if plan.derivative or choice.vary:  # (no transformation makes transparency: alpha_fallback is moot)
        return None
    header, original = open_image(source, limits)
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


def _origin(source: Source, autorotate: bool, limits: Limits) -> Origin:
    """The original as iw, ih and pc read it: upright (unless a_ignore), from its header."""
    header, _ = open_image(source, limits)
    return dynamic.origin(header, oriented_size(header, autorotate))


def _preview(source: Source, autorotate: bool, limits: Limits) -> Callable[[int], pyvips.Image]:
    def preview(side: int) -> pyvips.Image:
        header, _ = open_image(source, limits)
        width, height = oriented_size(header, autorotate)
        scale = min(1.0, side / max(width, height))
        size = max(1, round(width * scale)), max(1, round(height * scale))
        return thumbnail(source, *size, autorotate=autorotate)

    return preview


def _start(plan: Plan, source: Source, limits: Limits) -> tuple[pyvips.Image, str, Sequence[Action]]:
    image, original = open_image(source, limits)
    rotate = plan.autorotate
    first = plan.steps[0].scaler if plan.steps else None
    size = first.scaled_size(*oriented_size(image, rotate)) if first is not None else None
    if size is not None:
        check_output(*size, limits)
        image, rest = thumbnail(source, *size, autorotate=rotate), plan.steps[1:]
        if not all(step.sequential for step in rest):
            # thumbnail reads its source once, top to bottom; a rotation, a flip or a smart crop does not
            # (libvips: "out of order read"). The image is already down to its delivered size.
            image = image.copy_memory()
        return image, original, rest
    if plan.sequential and (upright(image) or not rotate):
        image, _ = open_image(source, limits, access="sequential")
    return pixels.normalize(image.autorot() if rotate else image), original, plan.steps


def _finish(image: pyvips.Image, plan: Plan, choice: FormatChoice, original: str) -> Rendered:
    fmt = choice.fmt or (original if original in WRITABLE else "png")
    check_quality(plan.quality, fmt)  # the original's format kept: known only now
    if not choice.vary and not choice.alpha_fallback:
        check_fits(fmt, image.width, image.height)  # before computing anything, when nothing can change fmt
    if pixels.has_alpha(image):
        image = image.copy_memory()  # evaluated once here, then both inspected and encoded
        if image.extract_band(3).min() >= 255:
            image = image.extract_band(0, n=3)
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
    data = encode(image, fmt, plan.quality, progressive=plan.progressive)
    return Rendered(data=data, format=fmt, width=image.width, height=image.height, has_alpha=transparent)
