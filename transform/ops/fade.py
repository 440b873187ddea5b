"""``e_gradient_fade[:symmetric|symmetric_pad][:<strength>]`` with ``x_``/``y_``: the image fades to
transparent from an edge (to the b_ colour when the component gives one, b_ flattening after effects; to
white in a JPEG).

Cloudinary's reference (https://cloudinary.com/documentation/transformation_reference#e_gradient_fade)
and SDK docs (https://cloudinary.com/documentation/sdks/php/Cloudinary/Transformation/GradientFade.html:
"Values of x and y can be specified as a percentage (Range: 0.0 to 1.0), or in pixels (integer values).
Positive values fade from the top (y) or left (x). Negative values fade from the bottom (y) or right (x).
By default, the gradient is applied to the top 50% of the image (y = 0.5)"; the JS SDK: strength "Range: 0
to 100, Server default: 20"; symmetric: "to opposite edges of the image", symmetric_pad: "including
background padding"). What it does not say, chosen here (README says so):

- the edge is fully transparent and the image fully kept where the fade ends; in between the opacity is
  t^(1 + strength/25), t going 0 -> 1 across the fade: strength 0 a straight ramp, the default 20 an
  ease-in, 100 most of the band nearly gone. A fade longer than the image stops short of full opacity.
- x_ and y_ together (which the SDKs write although the PHP doc says "only one direction") fade from both
  edges; the two opacities multiply.
- symmetric_pad in a component that pads (c_pad, c_lpad, c_mpad) fades the image before the pad is laid
  around it, so the image melts into the pad colour (b_auto's included), as real URLs use it
  (``ar_16:9,b_auto,c_pad,e_gradient_fade:symmetric_pad,x_0.2``); without a pad it is symmetric.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvips

from grammar.errors import InvalidArgument
from transform import pixels
from transform.ops import args
from transform.ops.args import Dim
from transform.ops.registry import Action, Ctx, EffectSpec, effect, render_param

MODES = ("symmetric", "symmetric_pad")
DEFAULT_STRENGTH = 20
#: The default fade: the top half (the SDK docs' y = 0.5).
DEFAULT_Y = Dim(0.5, relative=True)
_FORMS = (
    "gradient_fade takes an optional mode, symmetric or symmetric_pad, then an optional strength, an "
    "integer from 0 to 100 (default 20); where it fades is x_ and y_ in the same component: "
    "e_gradient_fade:symmetric:40,x_0.2"
)


@dataclass(frozen=True)
class Fade:
    mode: str | None = None
    strength: int = DEFAULT_STRENGTH

    def render(self) -> str:
        parts = ["gradient_fade"] + ([self.mode] if self.mode else [])
        parts += [str(self.strength)] if self.strength != DEFAULT_STRENGTH else []
        return ":".join(parts)


def parse_fade(value: str, rest: str) -> Fade:
    tokens = rest.split(":") if rest else []
    mode = tokens.pop(0) if tokens and tokens[0] in MODES else None
    if tokens and tokens[0][:2] in ("x_", "y_"):
        own = f"{tokens[0][0]}_ is a parameter of its own, in the same component: e_gradient_fade,{tokens[0]}"
        raise InvalidArgument("e", value, own)
    if len(tokens) > 1 or (tokens and args.integer(tokens[0]) is None):
        raise InvalidArgument("e", value, _FORMS)
    if not tokens:
        return Fade(mode)
    strength = args.int_in("e", tokens[0], "gradient_fade strength", 0, 100, shown=value)
    return Fade(mode, strength)


def _ramp(size: int, offset: Dim | None, symmetric: bool, exponent: float) -> np.ndarray | None:
    """The opacity along one side of ``size`` pixels, for a fade ``offset`` long (pixels or a fraction;
    negative: from the far edge); None when it fades nothing."""
    if offset is None:
        return None
    length = abs(offset.px(size))
    if length == 0:
        return None
    centres = np.arange(size, dtype=np.float64) + 0.5
    from_start = np.clip(centres / length, 0, 1) ** exponent
    from_end = np.clip((size - centres) / length, 0, 1) ** exponent
    if symmetric:
        return from_start * from_end
    return from_start if offset.value > 0 else from_end


def fade_mask(
    width: int, height: int, x: Dim | None, y: Dim | None, strength: int, symmetric: bool
) -> pyvips.Image | None:
    """A one-band float image of the opacity each pixel keeps (0..1); None when nothing fades."""
    if x is None and y is None:
        y = DEFAULT_Y
    exponent = 1 + strength / 25
    across = _ramp(width, x, symmetric, exponent)
    down = _ramp(height, y, symmetric, exponent)
    if across is None and down is None:
        return None
    lines = ((across, True), (down, False))
    masks = [_spread(line, horizontal, width, height) for line, horizontal in lines if line is not None]
    return masks[0] if len(masks) == 1 else masks[0] * masks[1]


def _spread(line: np.ndarray, horizontal: bool, width: int, height: int) -> pyvips.Image:
    """One row (or column) of opacities repeated over the image: lazily, whatever the image's size."""
    data = np.ascontiguousarray(line, dtype=np.float32).tobytes()
    size = (len(line), 1) if horizontal else (1, len(line))
    return pyvips.Image.new_from_memory(data, *size, 1, "float").embed(0, 0, width, height, extend="copy")


def fade(image: pyvips.Image, x: Dim | None, y: Dim | None, strength: int, symmetric: bool) -> pyvips.Image:
    mask = fade_mask(image.width, image.height, x, y, strength, symmetric)
    if mask is None:
        return image
    return pixels.mask_alpha(pixels.normalize(image), (mask * 255 + 0.5).cast("uchar"))


def _arguments(arguments: tuple[Fade, Mapping[str, Any]]) -> tuple[Fade, Dim | None, Dim | None]:
    chosen, qualifiers = arguments
    return chosen, qualifiers.get("x"), qualifiers.get("y")


def _gradient_fade(arguments: tuple[Fade, Mapping[str, Any]], prefix: str) -> Action:
    chosen, x, y = _arguments(arguments)
    parts = {**{k: render_param(k, v) for k, v in arguments[1].items()}, "e": "e_" + chosen.render()}
    canonical = ",".join(parts[k] for k in sorted(parts))  # alphabetical, as the plan writes components

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        return fade(image, x, y, chosen.strength, chosen.mode is not None)

    return Action(canonical, run)


def _before_pad(arguments: tuple[Fade, Mapping[str, Any]]) -> Callable[[pyvips.Image], pyvips.Image] | None:
    """symmetric_pad in a padding component: the fade, on the image before the pad (see the docstring)."""
    chosen, x, y = _arguments(arguments)
    if chosen.mode != "symmetric_pad":
        return None
    return lambda image: fade(image, x, y, chosen.strength, True)


effect(
    EffectSpec(
        "gradient_fade",
        parse_fade,
        Fade.render,
        _gradient_fade,
        "fade to transparent (to b_'s colour in the same component) from the edge x_ or y_ names: pixels or "
        "a fraction, from the left/top, negative from the right/bottom (default y_0.5: the top half; both: "
        "both edges); opacity t^(1 + strength/25) across the fade: strength 0-100 (default 20); symmetric: "
        "the opposite edge too; symmetric_pad: symmetric, and with c_pad/c_lpad/c_mpad the image fades into "
        "the pad",
        qualifiers=("x", "y"),
        before_pad=_before_pad,
    )
)
