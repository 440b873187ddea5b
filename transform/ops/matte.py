"""Mattes: what the HTTP API's cut-out options need beyond Cloudinary's operations, usable in URLs too.

``e_alpha_mask`` turns the image into its alpha band alone, one greyscale band the size of the image
(white = foreground): the ``channels=alpha`` of ``POST /v1/remove-background``, after
``e_background_removal``. ``e_margin:<n>[:<n>[:<n>:<n>]]`` adds transparent space around the image
(CSS order: top, right, bottom, left; ``%`` of the width for left/right, of the height for top/bottom),
the ``crop_margin`` that follows ``e_trim``; a later ``b_`` fills it. ``e_roi:<x1>:<y1>:<x2>:<y2>`` (pixels,
or percent with ``p``, of the image the step gets) makes everything outside that rectangle transparent:
the API's ``roi`` ("only this region may be foreground"). It runs after ``e_background_removal``, on the
mask the model made for the whole image, so a region costs no second inference and every region of one
image shares its one mask."""

from __future__ import annotations

import re

import pyvips

from grammar.errors import BadRequest, InvalidArgument
from transform import pixels
from transform.limits import check_output
from transform.ops import args
from transform.ops.effects import no_arguments
from transform.ops.registry import Action, Ctx, EffectSpec, effect

#: One side of a margin: (amount, whether it is a percentage).
Side = tuple[int, bool]
Margin = tuple[Side, Side, Side, Side]
#: A region's corners x1, y1, x2, y2.
Roi = tuple[Side, Side, Side, Side]
MAX_MARGIN_PX = 4096
MAX_MARGIN_PERCENT = 100
#: The 413 of a margin that makes the result too large. Matched as text (``margin_too_large``): a failure
#: comes back from a queue worker, or from the shared failure memory, as its status and message alone.
_TOO_LARGE = re.compile(r"Result of e_margin:\S+ is too large: (.+)", re.S)


def _alpha_mask(arguments: None, prefix: str) -> Action:
    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        if not pixels.has_alpha(image):
            # An opaque image's mask would be all white: almost surely a missing e_background_removal.
            raise BadRequest(
                "Invalid transformation: e_alpha_mask needs an image with transparency "
                "(a transparent original, or e_background_removal before it)"
            )
        return image.extract_band(image.bands - 1).copy(interpretation="b-w")

    return Action("e_alpha_mask", run)


def _side(value: str, text: str) -> Side:
    if text.endswith("p") or text.endswith("%"):  # "p" too: '%' must be escaped in a URL
        number = args.int_in("e", text[:-1], "margin percentage", 0, MAX_MARGIN_PERCENT, shown=value)
        return number, True
    return args.int_in("e", text, "margin", 0, MAX_MARGIN_PX, shown=value), False


def _parse_margin(value: str, rest: str) -> Margin:
    parts = rest.split(":") if rest else []
    if len(parts) not in (1, 2, 4):
        raise BadRequest(
            f"Invalid transformation parameter - e_{value}: e_margin takes 1, 2 or 4 values "
            "(pixels, or percent with p: e_margin:10p)"
        )
    sides = [_side(value, part) for part in parts]
    if len(sides) == 1:
        sides *= 4
    elif len(sides) == 2:
        sides = [sides[0], sides[1], sides[0], sides[1]]
    return sides[0], sides[1], sides[2], sides[3]


def _render_side(side: Side) -> str:
    return f"{side[0]}p" if side[1] else str(side[0])


def _render_margin(margin: Margin) -> str:
    top, right, bottom, left = margin
    if top == right == bottom == left:
        return f"margin:{_render_side(top)}"
    if top == bottom and right == left:
        return f"margin:{_render_side(top)}:{_render_side(right)}"
    return "margin:" + ":".join(_render_side(s) for s in margin)


def _pixels(side: Side, extent: int) -> int:
    amount, percent = side
    return round(extent * amount / 100) if percent else amount


def _side_at_dpr(side: Side, ratio: float, shown: str, noun: str, high: int) -> Side:
    """A side or corner in pixels at a device pixel ratio; a percentage stays one."""
    amount, percent = side
    return side if percent else (args.at_dpr("e", shown, amount, ratio, noun, 0, high), False)


def _margin_at_dpr(margin: Margin, ratio: float) -> Margin:
    shown = _render_margin(margin)
    top, right, bottom, left = (_side_at_dpr(side, ratio, shown, "margin", MAX_MARGIN_PX) for side in margin)
    return top, right, bottom, left


def _margin(margin: Margin, prefix: str) -> Action:
    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        top, right, bottom, left = (
            _pixels(margin[0], image.height), _pixels(margin[1], image.width),
            _pixels(margin[2], image.height), _pixels(margin[3], image.width),
        )  # fmt: skip
        if top == right == bottom == left == 0:
            return image
        width, height = image.width + left + right, image.height + top + bottom
        check_output(width, height, ctx.limits, f"Result of e_{_render_margin(margin)}")
        return pixels.with_alpha(image).embed(
            left, top, width, height, extend="background", background=[0] * 4
        )

    return Action("e_" + _render_margin(margin), run)


def margin_too_large(public: str) -> str | None:
    """The size and limit an ``e_margin`` 413 states (``1111x942 pixels (...); the limit is ...``), or
    None for another message: the HTTP API names its ``crop_margin`` with them."""
    match = _TOO_LARGE.fullmatch(public)
    return None if match is None else match.group(1)


def _parse_roi(value: str, rest: str) -> Roi:
    parts = rest.split(":") if rest else []
    if len(parts) != 4:
        raise InvalidArgument(
            "e",
            value,
            "e_roi takes 4 values x1:y1:x2:y2, the corners of the region (pixels 0-16384, or "
            "percent 0-100 with p: e_roi:10p:0:90p:100p)",
        )
    corners = tuple(_corner(value, part) for part in parts)
    x1, y1, x2, y2 = corners
    for (low, high), axis in (((x1, x2), "x"), ((y1, y2), "y")):
        if low[1] == high[1] and low[0] >= high[0]:
            raise BadRequest(
                f"Invalid transformation parameter - e_{value}: e_roi's {axis}2 must be greater than {axis}1"
            )
    return x1, y1, x2, y2


def _corner(value: str, text: str) -> Side:
    if text.endswith("p") or text.endswith("%"):
        return args.int_in("e", text[:-1], "region percentage", 0, MAX_MARGIN_PERCENT, shown=value), True
    return args.int_in("e", text, "region coordinate", 0, args.MAX_LENGTH, shown=value), False


def _render_roi(roi: Roi) -> str:
    return "roi:" + ":".join(_render_side(corner) for corner in roi)


def _roi_at_dpr(roi: Roi, ratio: float) -> Roi:
    shown = _render_roi(roi)
    x1, y1, x2, y2 = (_side_at_dpr(c, ratio, shown, "region coordinate", args.MAX_LENGTH) for c in roi)
    return x1, y1, x2, y2


def _roi(roi: Roi, prefix: str) -> Action:
    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        x1, x2 = (min(_pixels(c, image.width), image.width) for c in (roi[0], roi[2]))
        y1, y2 = (min(_pixels(c, image.height), image.height) for c in (roi[1], roi[3]))
        if x2 <= x1 or y2 <= y1:
            raise BadRequest(
                f"Invalid transformation parameter - e_{_render_roi(roi)}: the region holds no pixel of "
                f"the {image.width}x{image.height} image"
            )
        image = pixels.with_alpha(image)
        # The region's rectangle (255 inside, 0 outside) picks the alpha: outside is background.
        inside = (pyvips.Image.black(x2 - x1, y2 - y1) + 255).cast("uchar")
        inside = inside.embed(x1, y1, image.width, image.height)
        alpha = inside.ifthenelse(image.extract_band(image.bands - 1), 0)
        colour = image.extract_band(0, n=image.bands - 1)
        return colour.bandjoin(alpha).copy(interpretation=image.interpretation)

    return Action("e_" + _render_roi(roi), run, sequential=True)


effect(
    EffectSpec(
        "alpha_mask",
        no_arguments("alpha_mask"),
        lambda _: "alpha_mask",
        _alpha_mask,
        "the alpha band alone: one greyscale band, white where opaque (after e_background_removal: the mask)",
    )
)
effect(
    EffectSpec(
        "margin",
        _parse_margin,
        _render_margin,
        _margin,
        "transparent space around the image: 1, 2 or 4 values (top, right, bottom, left), pixels 0-4096 "
        "or percent 0-100 with p (e_margin:10p)",
        dpr=_margin_at_dpr,
    )
)
effect(
    EffectSpec(
        "roi",
        _parse_roi,
        _render_roi,
        _roi,
        "only this region may be foreground: outside the rectangle becomes transparent (after "
        "e_background_removal: the cut-out is limited to it; the canvas keeps its size)",
        dpr=_roi_at_dpr,
    )
)
