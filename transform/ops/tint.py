"""Colour casts: ``e_tint`` (the image blended with a colour, or with a gradient of colours chosen by each
pixel's luma) and the per-channel ``e_red``, ``e_green``, ``e_blue``. Point operations on the colour
bands; alpha kept; every frame of an animation alike.

Cloudinary's reference (https://cloudinary.com/documentation/transformation_reference#e_tint) gives
``e_tint[:equalize][:<amount>][:<color1>][:<color1 position>][:<color2>][:<color2 position>]...`` up to 10
colours, amount 0 to 100 (default 60), colour default red, positions written ``<n>p`` (percent), e.g.
``e_tint:equalize:80:red:50p:blue:60p:yellow:40p``. It does not publish how a colour is laid on the image;
here (README says so):

- the tint layer is the colours as a gradient over the luma, 0 % (black) to 100 % (white): the first colour
  on the darkest pixels, the last on the lightest. One colour is a flat layer (``e_tint:100:black`` is the
  silhouette real URLs use it for, alpha kept; ``e_tint:75:black`` a dimmed image).
- positions follow CSS gradients' colour-stop rules: the first defaults to 0 %, the last to 100 %, those
  left out in between are spread evenly between their neighbours, and a position below an earlier one is
  raised to it (a hard edge), so the reference's own ``red:50p:blue:60p:yellow:40p`` is well defined.
- the image is blended ``amount`` % of the way to that layer (a translucent colour, ``rgb:ff000080``,
  tints less where it lies).
- ``equalize`` first passes R, G and B through the equalising curve of the luma's histogram (measured on a
  thumbnail, opaque pixels only; one curve for the three bands, so the hues roughly keep), so the gradient
  spans the tones the image really has.

``e_red``, ``e_green``, ``e_blue`` (https://cloudinary.com/documentation/transformation_reference#e_red;
the SDKs: "Range: -100 to 100, Server default: 0"): the channel multiplied by 1 + level/100, so -100
removes it, 100 doubles it (clipped), black stays black.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvips

from grammar.errors import InvalidArgument
from transform import pixels
from transform.ops import args
from transform.ops.args import Color
from transform.ops.effects import rgb_only
from transform.ops.registry import Action, Ctx, EffectSpec, effect
from transform.ops.tone import luma_counts

RED = Color(255, 0, 0, 255, "red")
DEFAULT_AMOUNT = 60
MAX_COLOURS = 10
_FORMS = (
    "tint takes [equalize:][<amount 0-100>:]<colour>[:<position>p]... (up to 10 colours, a colour name or "
    "rgb:RRGGBB[AA], a position 0p to 100p): e_tint:equalize:80:red:50p:blue"
)


@dataclass(frozen=True)
class Stop:
    colour: Color
    position: int | None  # percent of the luma range; None: placed by the CSS rules


@dataclass(frozen=True)
class Tint:
    equalize: bool = False
    amount: int = DEFAULT_AMOUNT
    stops: tuple[Stop, ...] = (Stop(RED, None),)

    def render(self) -> str:
        parts = ["tint"] + (["equalize"] if self.equalize else [])
        default_stops = self.stops == (Stop(RED, None),)
        if self.amount != DEFAULT_AMOUNT or not default_stops:
            parts.append(str(self.amount))  # (written before colours, as the grammar needs)
        if not default_stops:
            for stop in self.stops:
                parts.append(str(stop.colour))
                if stop.position is not None:
                    parts.append(f"{stop.position}p")
        return ":".join(parts)


def _position(token: str) -> int | None:
    """``50p`` -> 50; None when the token is not a position."""
    if not token.endswith("p"):
        return None
    return args.integer(token[:-1])


def parse_tint(value: str, rest: str) -> Tint:
    tokens = rest.split(":") if rest else []
    equalize = bool(tokens) and tokens[0] == "equalize"
    if equalize:
        tokens = tokens[1:]
    amount = DEFAULT_AMOUNT
    if tokens and args.integer(tokens[0]) is not None:
        amount = args.int_in("e", tokens.pop(0), "tint amount", 0, 100, shown=value)
    stops: list[Stop] = []
    while tokens:
        token = tokens.pop(0)
        if token.lower() == "rgb" and tokens:  # rgb:RRGGBB: the colour's own ':'
            token = f"{token}:{tokens.pop(0)}"
        if _position(token) is not None:
            raise InvalidArgument("e", value, f"tint position {token} must follow a colour; {_FORMS}")
        if args.integer(token) is not None:
            raise InvalidArgument("e", value, f"a tint position is written {token}p, after its colour")
        try:
            colour = args.color("e", token, "tint colour", shown=value)
        except InvalidArgument:
            raise InvalidArgument("e", value, f"{token} is not a colour; {_FORMS}") from None
        position = _position(tokens[0]) if tokens else None
        if position is not None:
            tokens.pop(0)
            if not 0 <= position <= 100:
                raise InvalidArgument("e", value, f"tint position must be from 0p to 100p; {_FORMS}")
        stops.append(Stop(colour, position))
    if len(stops) > MAX_COLOURS:
        raise InvalidArgument("e", value, f"tint takes at most {MAX_COLOURS} colours")
    return Tint(equalize, amount, tuple(stops) or (Stop(RED, None),))


def positions(stops: tuple[Stop, ...]) -> list[float]:
    """Where each colour lies, 0 to 100, by the CSS colour-stop rules (see the module's docstring)."""
    given: list[float | None] = [None if s.position is None else float(s.position) for s in stops]
    if len(given) == 1:
        return [given[0] if given[0] is not None else 0.0]
    if given[0] is None:
        given[0] = 0.0
    if given[-1] is None:
        given[-1] = 100.0
    highest = 0.0
    fixed: list[float | None] = []
    for place in given:  # a position below an earlier one is raised to it
        if place is not None:
            highest = max(highest, place)
            place = highest
        fixed.append(place)
    placed: list[float] = []
    i = 0
    while i < len(fixed):
        here = fixed[i]
        if here is not None:
            placed.append(here)
            i += 1
            continue
        j = i
        while fixed[j] is None:  # a run of unplaced stops, spread evenly between its neighbours
            j += 1
        start, end = placed[-1], fixed[j]
        assert end is not None
        count = j - i + 1
        placed.extend(start + (end - start) * k / count for k in range(1, count))
        i = j
    return placed


def gradient_table(stops: tuple[Stop, ...]) -> np.ndarray:
    """(256, 4): the tint layer's R, G, B and alpha for each luma level 0..255."""
    places = np.array(positions(stops)) * 255 / 100
    colours = np.array([s.colour.rgba for s in stops], dtype=np.float64)
    levels = np.arange(256, dtype=np.float64)
    if len(stops) == 1:
        return np.tile(colours[0], (256, 1))
    # np.interp holds the end colours beyond the first and last stop; equal places make a hard edge.
    return np.stack([np.interp(levels, places, colours[:, band]) for band in range(4)], axis=1)


def _table_image(table: np.ndarray) -> pyvips.Image:
    """A (256, bands) table as a 256x1 image for maplut (float: no rounding before the blend)."""
    data = np.ascontiguousarray(table.astype(np.float32).reshape(1, 256, -1))
    return pyvips.Image.new_from_memory(data.tobytes(), 256, 1, data.shape[2], "float")


def equalising_curve(image: pyvips.Image) -> np.ndarray:
    """The 256-entry curve that flattens the histogram of the image's luma (opaque pixels of a
    thumbnail; all of them when none is opaque)."""
    counts = luma_counts(image)
    cumulative = np.cumsum(counts)
    lowest = cumulative[np.nonzero(counts)[0][0]]
    if cumulative[-1] <= lowest:
        return np.arange(256, dtype=np.float64)  # one flat level: nothing to spread
    curve: np.ndarray = np.clip((cumulative - lowest) / (cumulative[-1] - lowest) * 255, 0, 255)
    return curve


def _tint(tint: Tint, prefix: str) -> Action:
    layer = _table_image(gradient_table(tint.stops))
    amount = tint.amount / 100
    key = object()  # the equalising curve of an animation's first frame, for every frame (no flicker)

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        if amount == 0 and not tint.equalize:
            return image
        image = pixels.normalize(image)  # (measured as it is tinted: 8-bit sRGB)
        curve = None
        if tint.equalize:
            curve = ctx.measured.get(key)
            if curve is None:
                image = image.copy_memory()  # read to measure, then to tint
                curve = ctx.measured[key] = _table_image(np.tile(equalising_curve(image)[:, None], (1, 3)))

        def fn(rgb: pyvips.Image) -> pyvips.Image:
            rgb = rgb.cast("uchar")
            if curve is not None:
                rgb = (rgb.maplut(curve) + 0.5).cast("uchar")
            over = pixels.luma(rgb).maplut(layer)
            weight = over.extract_band(3) * (amount / 255)
            return (rgb + (over.extract_band(0, n=3) - rgb) * weight + 0.5).cast("uchar")

        return rgb_only(image, fn)

    return Action("e_" + tint.render(), run, sequential=not tint.equalize)


def _channel(band: int, level: args.Level) -> Any:
    def build(value: int, prefix: str) -> Action:
        gains = [1.0, 1.0, 1.0]
        gains[band] = 1 + value / 100

        def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
            if value == 0:
                return image
            # (+0.5: round to nearest; the cast clips to 0..255)
            return rgb_only(pixels.normalize(image), lambda rgb: rgb.linear(gains, [0.5] * 3).cast("uchar"))

        return Action("e_" + level.render(value), run, sequential=True)

    return build


effect(
    EffectSpec(
        "tint",
        parse_tint,
        Tint.render,
        _tint,
        "blend towards a tint layer: [equalize:][amount:]<colour>[:<position>p]... (amount 0-100, default "
        "60; up to 10 colours, default red; one colour is flat, several a gradient over the luma, dark to "
        "light, positions 0p-100p by CSS gradient rules; equalize first spreads the luma's histogram)",
    )
)
for _band, _name in enumerate(("red", "green", "blue")):
    _level = args.Level(_name, f"{_name} level", -100, 100, 0)
    effect(
        EffectSpec(
            _name,
            _level.parse,
            _level.render,
            _channel(_band, _level),
            f"multiply the {_name} channel by 1 + level/100 (-100 removes it, 100 doubles it): level -100 "
            "to 100 (default 0, no change)",
        )
    )
