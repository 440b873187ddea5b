"""Colour adjustments: ``e_colorize`` (with ``co_``), ``e_negate``, ``e_sepia``, ``e_brightness``,
``e_contrast``, ``e_saturation``, ``e_blackwhite``, ``e_hue`` and ``e_gamma``. Each is a point operation on
the colour bands (alpha kept). The first six are libvips' linear and recomb on the sRGB values, as the CSS
filter functions of the same names define them; e_hue turns the hue in CIE LCh (lightness and chroma kept,
as a hue rotation in sRGB would not), e_blackwhite thresholds the luma, e_gamma is a power curve.

Ranges and defaults are Cloudinary's (transformation reference; for e_contrast, whose reference entry gives
none, the SDKs' documented server default 0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pyvips

from grammar.errors import InvalidArgument
from transform.ops import args
from transform.ops.args import Color
from transform.ops.effects import no_arguments, rgb_only
from transform.ops.registry import Action, Ctx, EffectSpec, ParamSpec, effect, param, render_param

GRAY = Color(128, 128, 128, 255, "gray")


#: How the errors say a level may be written (as args.Level says it; e_contrast parses its own forms).
_FORMS = "bare or level_<n>"


def _level(name: str, low: int, high: int, default: int) -> args.Level:
    """``e_<name>:<n>``, or the reference's verbose form ``e_<name>:level_<n>`` (the same level)."""
    return args.Level(name, f"{name} level", low, high, default, "level_", say_verbose=True)


COLORIZE = _level("colorize", 0, 100, 100)
SEPIA = _level("sepia", 1, 100, 80)
BRIGHTNESS = _level("brightness", -99, 100, 80)
#: Its parse is _parse_contrast (two scales, two spellings); the render is the plain level's.
CONTRAST = _level("contrast", -100, 100, 0)
SATURATION = _level("saturation", -100, 100, 80)
BLACKWHITE = _level("blackwhite", 0, 100, 50)
HUE = _level("hue", -100, 100, 80)
GAMMA = _level("gamma", -50, 150, 0)


def _parse_contrast(value: str, rest: str) -> int:
    """``e_contrast[:level_<n>][;type_<sigmoidal|linear>]``, or the ordered ``e_contrast[:<n>[:<type>]]``.
    The result is on the default (sigmoidal) scale, -100 to 100: a linear level n (1 to 200, CSS
    contrast(n%)) is the same curve as level n - 100, so both spellings share one canonical form and one
    cache entry (``e_contrast:level_150;type_linear`` is ``e_contrast:50``)."""
    if rest == "":
        return 0
    if rest.startswith(("level_", "type_")):
        options: dict[str, str] = {}
        for item in rest.split(";"):
            name, sep, text = item.partition("_")
            if not sep or name not in ("level", "type") or name in options:
                raise InvalidArgument("e", value, _CONTRAST_FORMS)
            options[name] = text
        level_text, kind = options.get("level"), options.get("type", "sigmoidal")
    else:
        level_text, _, kind = rest.partition(":")
        kind = kind.removeprefix("type_") or "sigmoidal"  # 50:sigmoidal, and 50:type_sigmoidal
    if kind not in ("sigmoidal", "linear"):
        raise InvalidArgument("e", value, _CONTRAST_FORMS)
    if kind == "linear":
        if level_text is None:
            return 0  # linear's default, 100 %, is no change
        return args.int_in("e", level_text, "linear contrast level", 1, 200, shown=value, forms=_FORMS) - 100
    if level_text is None:
        return 0
    return args.int_in("e", level_text, "contrast level", -100, 100, shown=value, forms=_FORMS)


_CONTRAST_FORMS = (
    "contrast takes level_<n> (-100 to 100) and type_sigmoidal or type_linear (level 1 to 200) separated "
    "by ';', or <n>[:<type>]"
)


def _rounded(image: pyvips.Image) -> pyvips.Image:
    """Float -> uchar, rounding to nearest (a bare cast truncates) and clamping to 0..255."""
    return (image + 0.5).cast("uchar")


def _point_op(canonical: str, fn: Callable[[pyvips.Image], pyvips.Image]) -> Action:
    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        return rgb_only(image, fn)

    return Action(canonical, run, sequential=True)


def _blend(matrix: list[list[float]], amount: float) -> pyvips.Image:
    """The 3x3 recomb matrix ``amount`` of the way from the identity to ``matrix``."""
    return pyvips.Image.new_from_list(
        [[(1 - amount) * (i == j) + amount * matrix[i][j] for j in range(3)] for i in range(3)]
    )


_SEPIA = [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]
_LUMA = (0.2126, 0.7152, 0.0722)


def _saturate(factor: float) -> pyvips.Image:
    """CSS saturate(): 0 is grey (by luma), 1 unchanged, 2 twice the chroma."""
    return pyvips.Image.new_from_list(
        [[_LUMA[j] + (1 - _LUMA[j] if i == j else -_LUMA[j]) * factor for j in range(3)] for i in range(3)]
    )


def _colorize(arguments: tuple[int, Mapping[str, Any]], prefix: str) -> Action:
    level, qualifiers = arguments
    colour: Color = qualifiers.get("co", GRAY)
    amount = level / 100 * colour.a / 255  # a translucent co_ tints less
    keep = 1 - amount
    canonical = ",".join(
        [
            *(render_param(k, v) for k, v in sorted(qualifiers.items())),
            "e_" + COLORIZE.render(level),
        ]
    )
    return _point_op(
        canonical,
        lambda rgb: _rounded(rgb.linear([keep] * 3, [c * amount for c in (colour.r, colour.g, colour.b)])),
    )


def _negate(arguments: None, prefix: str) -> Action:
    return _point_op("e_negate", lambda rgb: rgb.invert())


def _sepia(level: int, prefix: str) -> Action:
    matrix = _blend(_SEPIA, level / 100)
    return _point_op("e_" + SEPIA.render(level), lambda rgb: _rounded(rgb.recomb(matrix)))


def _brightness(level: int, prefix: str) -> Action:
    factor = 1 + level / 100  # -99 -> 1 % of the light, 100 -> twice: hence Cloudinary's odd -99 floor
    return _point_op("e_" + BRIGHTNESS.render(level), lambda rgb: _rounded(rgb * factor))


def _contrast(level: int, prefix: str) -> Action:
    factor = 1 + level / 100  # -100 -> flat mid-grey, 100 -> twice the distance from mid-grey
    offset = 127.5 * (1 - factor)
    return _point_op("e_" + CONTRAST.render(level), lambda rgb: _rounded(rgb.linear(factor, offset)))


def _blackwhite(level: int, prefix: str) -> Action:
    threshold = level * 2.55  # the level is a percentage of the luma's range

    def two_tone(rgb: pyvips.Image) -> pyvips.Image:
        white = rgb.colourspace("b-w") >= threshold
        # (the condition's b-w interpretation would otherwise pass to the result)
        return white.ifthenelse([255, 255, 255], [0, 0, 0]).cast("uchar").copy(interpretation="srgb")

    return _point_op("e_" + BLACKWHITE.render(level), two_tone)


#: Cloudinary does not publish its scale: e_hue:100 turns the hue half way round the colour wheel and
#: -100 the other way, so the two ends of the range meet, as on the wheel (ImageMagick's -modulate scale).
DEGREES_PER_HUE_LEVEL = 1.8


def _hue(level: int, prefix: str) -> Action:
    turn = level * DEGREES_PER_HUE_LEVEL

    def fn(rgb: pyvips.Image) -> pyvips.Image:
        lch = rgb.colourspace("lch")
        return lch.linear([1, 1, 1], [0, 0, turn]).copy(interpretation="lch").colourspace("srgb")

    return _point_op("e_" + HUE.render(level), fn)


def _gamma(level: int, prefix: str) -> Action:
    # out = in ** (1 / exponent): level 0 -> exponent 1 (no change); 150 -> 2.5 (midtones lifted, as a
    # display gamma above 1 does); -50 -> 0.5 (in squared: darker).
    exponent = 1 + level / 100
    return _point_op(
        "e_" + GAMMA.render(level),
        lambda rgb: _rounded((rgb / 255) ** (1 / exponent) * 255),  # (libvips' gamma truncates to uchar)
    )


def _saturation(level: int, prefix: str) -> Action:
    matrix = _saturate(1 + level / 100)
    return _point_op("e_" + SATURATION.render(level), lambda rgb: _rounded(rgb.recomb(matrix)))


param(
    ParamSpec(
        "co",
        "colour",
        lambda k, v: args.color(k, v, "colour"),
        "the colour of e_colorize (default gray), e_make_transparent (default: the edges' colour), e_outline "
        "(black) or e_shadow (gray)",
        "effect",
    )
)
effect(
    EffectSpec(
        "colorize",
        COLORIZE.parse,
        COLORIZE.render,
        _colorize,
        "blend towards the co_ colour (default gray): level 0-100 (default 100, a flat colour)",
        qualifiers=("co",),
    )
)
effect(
    EffectSpec(
        "negate", no_arguments("negate"), lambda _: "negate", _negate, "invert the colours (alpha kept)"
    )
)
effect(
    EffectSpec(
        "sepia",
        SEPIA.parse,
        SEPIA.render,
        _sepia,
        "sepia toning: level 1-100 (default 80)",
    )
)
effect(
    EffectSpec(
        "brightness",
        BRIGHTNESS.parse,
        BRIGHTNESS.render,
        _brightness,
        "scale the light by 1 + level/100: level -99 to 100 (default 80)",
    )
)
effect(
    EffectSpec(
        "contrast",
        _parse_contrast,
        CONTRAST.render,
        _contrast,
        "stretch (or, below 0, flatten) around mid-grey by 1 + level/100: level -100 to 100 (default 0, no "
        "change); type_linear: level 1 to 200 (default 100) as CSS contrast(level%), the same curve as "
        "level - 100. Cloudinary's sigmoidal curve (its default type) is not published: type_sigmoidal "
        "is rendered with this one",
    )
)
effect(
    EffectSpec(
        "saturation",
        SATURATION.parse,
        SATURATION.render,
        _saturation,
        "scale the colourfulness by 1 + level/100 (-100 is grey): level -100 to 100 (default 80)",
    )
)
effect(
    EffectSpec(
        "blackwhite",
        BLACKWHITE.parse,
        BLACKWHITE.render,
        _blackwhite,
        "pure black and white: white where the luma is at least level % of full, black elsewhere: "
        "level 0-100 (default 50)",
    )
)
effect(
    EffectSpec(
        "hue",
        HUE.parse,
        HUE.render,
        _hue,
        "turn the hue by level x 1.8 degrees (100: half way round), lightness and chroma kept: level "
        "-100 to 100 (default 80)",
    )
)
effect(
    EffectSpec(
        "gamma",
        GAMMA.parse,
        GAMMA.render,
        _gamma,
        "gamma curve out = in^(1/(1 + level/100)): above 0 lighter midtones, below darker: level -50 to "
        "150 (default 0, no change)",
    )
)
