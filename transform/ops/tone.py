"""Colour adjustments: ``e_colorize`` (with ``co_``), ``e_negate``, ``e_sepia``, ``e_brightness``,
``e_contrast``, ``e_saturation``, ``e_blackwhite``, ``e_hue``, ``e_gamma``, ``e_vibrance``, the automatic
``e_auto_contrast``, ``e_auto_brightness``, ``e_auto_color`` and their combination ``e_improve``. Each is a
point operation on the colour bands (alpha kept). The first six are libvips' linear and recomb on the sRGB
values, as the CSS filter functions of the same names define them; e_hue turns the hue in CIE LCh
(lightness and chroma kept, as a hue rotation in sRGB would not), e_blackwhite thresholds the luma, e_gamma
is a power curve, e_vibrance scales the CIE chroma, less the more colourful a pixel already is.

The automatic ones measure the image first (histograms of a thumbnail, see ``_Sample``) and then map each
band through a 256-entry table (maplut): one cheap streaming pass, whatever the measurement decided.

Ranges and defaults are Cloudinary's (transformation reference; for e_contrast, whose reference entry gives
none, the SDKs' documented server default 0; the SDKs' "Range: 0 to 100, Server default: 100" for the auto
adjustments' blend and "-100 to 100, Server default: 20" for e_vibrance). Cloudinary does not publish how
it renders the automatic ones: what they do here is said at each.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvips

from grammar.errors import InvalidArgument
from transform import pixels
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
_LUMA = pixels.LUMA


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


# -- e_vibrance -----------------------------------------------------------------------------------------

VIBRANCE = args.Level("vibrance", "vibrance strength", -100, 100, 20)
#: The CIE chroma (LCh C) from which a colour counts as vivid and e_vibrance leaves it alone; below, the boost
#: grows as the chroma falls (sRGB's most colourful pixels reach 100 to 130, skin 20 to 40, a dull
#: sky 10 to 25).
VIVID_CHROMA = 100.0
#: Skin tones, whatever the skin, lie in a narrow band of CIE hue angles (about 20 to 90 degrees, centred
#: near 55): there the boost is cut by up to SKIN_PROTECTION, or faces turn orange.
SKIN_HUE, SKIN_HALF_WIDTH, SKIN_PROTECTION = 55.0, 35.0, 0.7
_SKIN_A, _SKIN_B = math.cos(math.radians(SKIN_HUE)), math.sin(math.radians(SKIN_HUE))
_SKIN_EDGE = math.cos(math.radians(SKIN_HALF_WIDTH))


def _clip_low(image: pyvips.Image, floor: float = 0.0) -> pyvips.Image:
    return (image < floor).ifthenelse(floor, image)


def vibrance(rgb: pyvips.Image, strength: int) -> pyvips.Image:
    """Chroma C becomes C x (1 + strength/100 x (1 - C/VIVID_CHROMA) x skin), lightness and hue kept: at
    100 a dull colour gets nearly twice its chroma, a vivid one next to none more, a grey none at all;
    below 0 the dull colours fade to grey first. ``skin`` is 1 outside the skin hues, down to
    1 - SKIN_PROTECTION at their centre. In CIE Lab, a and b scaled alike (the LCh hue kept): half the
    cost of a round trip through LCh, whose hue angle needs an atan per pixel; how near a pixel's hue is to
    the skin's is the cosine of the angle between them, (a, b) . (cos 55, sin 55) / C."""
    lab = rgb.colourspace("lab")
    lightness, a, b = lab[0], lab[1], lab[2]
    chroma = (a * a + b * b) ** 0.5
    muted = _clip_low(1 - chroma / VIVID_CHROMA)
    closeness = (a * _SKIN_A + b * _SKIN_B) / (chroma + 1e-6)  # 1 on the skin hue, 0 a quarter turn off
    skin = _clip_low((closeness - _SKIN_EDGE) / (1 - _SKIN_EDGE))
    factor = 1 + (strength / 100) * muted * (1 - SKIN_PROTECTION * skin)
    boosted = lightness.bandjoin([a * factor, b * factor]).copy(interpretation="lab")
    return boosted.colourspace("srgb")


def _vibrance(strength: int, prefix: str) -> Action:
    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        if strength == 0:
            return image  # (the Lab round trip would move a few values by one)
        return rgb_only(image, lambda rgb: vibrance(rgb, strength))

    return Action("e_" + VIBRANCE.render(strength), run, sequential=True)


# -- automatic levels: e_auto_contrast, e_auto_brightness, e_auto_color, e_improve ---------------------

AUTO_CONTRAST = args.Level("auto_contrast", "auto_contrast blend", 0, 100, 100)
AUTO_BRIGHTNESS = args.Level("auto_brightness", "auto_brightness blend", 0, 100, 100)
AUTO_COLOR = args.Level("auto_color", "auto_color blend", 0, 100, 100)

#: The share of the pixels at each end that a stretch lets clip: a few specks (a specular highlight, a
#: dead pixel) must not decide it.
CLIP = 0.005
#: The most a stretch multiplies the range by: a nearly flat image (fog, a plain backdrop) is stretched
#: this far, not until its noise fills the range.
MAX_GAIN = 4.0
#: The exponents auto brightness may use to bring the median to mid-grey (2.0 darkens, 0.5 lightens).
GAMMA_RANGE = (0.5, 2.0)
_LEVELS = np.arange(256, dtype=np.float64)

#: Per band, the value each of the 256 input levels maps to (a (3, 256) array: R, G, B).
Curves = np.ndarray


class _Sample:
    """The image's opaque pixels (alpha >= 128: a transparent pixel's colour is not seen), thumbnailed,
    with the histograms of their R, G, B and luma: what the automatic adjustments measure."""

    def __init__(self, image: pyvips.Image) -> None:
        small = pixels.measured(image)  # (percentiles of a histogram barely move with the size)
        self.rgb = small.extract_band(0, n=3) if pixels.has_alpha(small) else small
        self.alpha = small.extract_band(3) if pixels.has_alpha(small) else None

    def histograms(self, curves: Curves) -> np.ndarray:
        """(4, 256) counts of R, G, B and luma of the sample once mapped through ``curves``."""
        rgb = self.rgb.maplut(_lut(curves))
        luma = pixels.luma(rgb)
        bands = rgb.bandjoin(luma)
        if self.alpha is not None:
            # Transparent pixels counted from 256 up, past the 0..255 bins read: a masked histogram.
            # ((alpha < 128) is 0 or 255; ifthenelse would cast 256 to the condition's uchar.)
            keyed = bands.cast("ushort") + (self.alpha < 128).cast("ushort") * 256 / 255
            counts = _counts(keyed.cast("ushort"))
            if counts[3].sum() > 0:
                return counts
        return _counts(bands)  # (with nothing opaque, every pixel counts after all)


def _counts(bands: pyvips.Image) -> np.ndarray:
    """hist_find's counts of each band's levels 0..255, as a (bands, 256) array."""
    found = np.asarray(bands.hist_find().numpy(), dtype=np.float64).reshape(-1, bands.bands)[:256]
    # A ushort image's histogram is only as long as its highest value: a masked sample with no
    # transparent pixel and nothing brighter than 196 has 197 bins. Always 256, as callers index them.
    return np.pad(found, ((0, 256 - len(found)), (0, 0))).T


def _percentile(counts: np.ndarray, share: float) -> float:
    """The lowest level that at least ``share`` of the pixels are at or below."""
    cumulative = np.cumsum(counts)
    return float(np.searchsorted(cumulative, share * cumulative[-1]))


def _stretch(counts: np.ndarray, centre: bool) -> Callable[[np.ndarray], np.ndarray]:
    """The linear map taking the histogram's CLIP and 1 - CLIP percentiles to 0 and 255 (levels). With
    the gain capped at MAX_GAIN, the range's middle goes to mid-grey when ``centre`` (per band: the bands
    are levelled alike, or a cast would stay), else no further than keeps the range inside 0..255 (the
    contrast stretch: no brightness change it need not make)."""
    low, high = _percentile(counts, CLIP), _percentile(counts, 1 - CLIP)
    if high <= low:
        return lambda x: x  # one flat level: nothing to stretch
    gain = min(255 / (high - low), MAX_GAIN)
    half = gain * (high - low) / 2
    middle = (low + high) / 2
    target = 127.5 if centre else min(max(middle, half), 255 - half)
    return lambda x: (x - middle) * gain + target


def _brighten(counts: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The gamma curve taking the median luma to mid-grey (exponent within GAMMA_RANGE)."""
    median = min(max(_percentile(counts, 0.5), 1.0), 254.0) / 255
    exponent = min(max(math.log(0.5) / math.log(median), GAMMA_RANGE[0]), GAMMA_RANGE[1])
    return lambda x: 255 * (np.clip(x, 0, 255) / 255) ** exponent


def _identity() -> Curves:
    return np.tile(_LEVELS, (3, 1))


def luma_counts(image: pyvips.Image) -> np.ndarray:
    """(256,) counts of the luma levels of the image's opaque pixels, thumbnailed (all pixels when none
    is opaque): what e_tint:equalize spreads."""
    counts: np.ndarray = _Sample(image).histograms(_identity())[3]
    return counts


def _then(curves: Curves, fns: list[Callable[[np.ndarray], np.ndarray]], strength: float) -> Curves:
    """``curves`` followed by ``fns`` (one for every band, or one per band), ``strength`` of the way."""
    per_band = fns if len(fns) == 3 else fns * 3
    mapped = np.stack([fn(band) for fn, band in zip(per_band, curves, strict=True)])
    clipped: Curves = np.clip(curves + strength * (mapped - curves), 0, 255)
    return clipped


def _lut(curves: Curves) -> pyvips.Image:
    table = np.ascontiguousarray((curves.T + 0.5).clip(0, 255).astype(np.uint8)).reshape(1, 256, 3)
    return pyvips.Image.new_from_memory(table.tobytes(), 256, 1, 3, "uchar")


#: The stages an automatic adjustment chains, in order: each measured on the sample as the stages before
#: it left it.
STAGES = ("color", "contrast", "brightness")


def auto_curves(sample: _Sample, strengths: Mapping[str, float]) -> Curves:
    """The curves of the stages ``strengths`` names (a stage's strength 0..1: how far towards its own
    result): colour (each band stretched on its own histogram: a cast, one band's range shifted or
    narrowed, is levelled away), contrast (the three bands stretched alike, on their histograms added
    together: the hues kept, no band clipped beyond CLIP) and brightness (a gamma curve taking the
    median luma to mid-grey)."""
    curves = _identity()
    for stage in STAGES:
        strength = strengths.get(stage, 0.0)
        if strength == 0:
            continue
        counts = sample.histograms(curves)
        if stage == "color":
            fns = [_stretch(counts[band], centre=True) for band in range(3)]
        elif stage == "contrast":
            # On the three bands' histograms together, not the luma's: a blue sky stretched by its luma
            # would clip its blue band and turn cyan.
            fns = [_stretch(counts[:3].sum(axis=0), centre=False)]
        else:
            fns = [_brighten(counts[3])]
        curves = _then(curves, fns, strength)
    return curves


@dataclass(frozen=True)
class Improve:
    mode: str  # indoor or outdoor
    blend: int

    def render(self) -> str:
        mode = ":indoor" if self.mode == "indoor" else ""
        return f"improve{mode}" + ("" if self.blend == 100 else f":{self.blend}")


IMPROVE_MODES = ("outdoor", "indoor")
_IMPROVE_FORMS = (
    "improve takes an optional mode, indoor or outdoor (the default), then an optional blend, an integer "
    "from 0 to 100 (default 100): e_improve:indoor:60"
)

#: What e_improve chains, per mode (the stages' strengths 0..1 and a vibrance strength). Outdoors,
#: daylight seldom leaves a strong cast and haze flattens the contrast: half the colour levelling, the full
#: contrast stretch, half the brightness move, a clear vibrance. Indoors, lamps cast (tungsten orange,
#: fluorescent green) and rooms are dim: the full colour levelling and brightness move, a gentler contrast
#: stretch (deep indoor shadows would clip), little vibrance (skin is most of many indoor photos).
IMPROVE: dict[str, tuple[dict[str, float], int]] = {
    "outdoor": ({"color": 0.5, "contrast": 1.0, "brightness": 0.5}, 30),
    "indoor": ({"color": 1.0, "contrast": 0.6, "brightness": 1.0}, 10),
}


def _parse_improve(value: str, rest: str) -> Improve:
    """``e_improve[:<mode>][:<blend>]``; the mode defaults to outdoor, and the SDKs leave it out when only
    the blend is given (``e_improve:50``)."""
    first, sep, second = rest.partition(":")
    if first in IMPROVE_MODES:
        mode, blend_text = first, second
    elif first == "" or args.integer(first) is not None:
        if sep:
            raise InvalidArgument("e", value, _IMPROVE_FORMS)
        mode, blend_text = "outdoor", first
    else:
        raise InvalidArgument("e", value, _IMPROVE_FORMS)
    if blend_text == "":
        return Improve(mode, 100)
    return Improve(mode, args.int_in("e", blend_text, "improve blend", 0, 100, shown=value))


def _measured_action(
    canonical: str, blend: int, make: Callable[[_Sample], Callable[[pyvips.Image], pyvips.Image]]
) -> Action:
    """An adjustment that measures the image (``make`` gets the sample and returns the point operation on
    the colour bands) and is blended with the original, ``blend`` % of the way. An animation's frames all
    get the first frame's measure (measured on each, the frames would flicker)."""
    key = object()

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        if blend == 0:
            return image
        fn = ctx.measured.get(key)
        if fn is None:
            image = image.copy_memory()  # read to measure, then to adjust
            fn = ctx.measured[key] = make(_Sample(image))
        if blend == 100:
            return rgb_only(image, fn)
        amount = blend / 100
        return rgb_only(image, lambda rgb: _rounded(rgb * (1 - amount) + fn(rgb) * amount))

    return Action(canonical, run)


def _auto(level: args.Level, stage: str) -> Callable[[int, str], Action]:
    def build(blend: int, prefix: str) -> Action:
        def make(sample: _Sample) -> Callable[[pyvips.Image], pyvips.Image]:
            # The blend folded into the curves: out = in + blend x (curve(in) - in), one table.
            lut = _lut(auto_curves(sample, {stage: blend / 100}))
            return lambda rgb: rgb.maplut(lut)

        return _measured_action("e_" + level.render(blend), 100 if blend else 0, make)

    return build


def _improve(improve: Improve, prefix: str) -> Action:
    strengths, vibrance_strength = IMPROVE[improve.mode]

    def make(sample: _Sample) -> Callable[[pyvips.Image], pyvips.Image]:
        lut = _lut(auto_curves(sample, strengths))
        return lambda rgb: vibrance(rgb.maplut(lut), vibrance_strength)

    return _measured_action("e_" + improve.render(), improve.blend, make)


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
effect(
    EffectSpec(
        "vibrance",
        VIBRANCE.parse,
        VIBRANCE.render,
        _vibrance,
        "boost the colourfulness of the dull colours more than of the vivid ones (CIE chroma x (1 + "
        "strength/100 x (1 - chroma/100)), skin hues boosted less): strength -100 to 100 (default 20; "
        "below 0 the dull colours fade first)",
    )
)
effect(
    EffectSpec(
        "auto_contrast",
        AUTO_CONTRAST.parse,
        AUTO_CONTRAST.render,
        _auto(AUTO_CONTRAST, "contrast"),
        "stretch the range of the R, G and B values together (0.5 % clipped at each end, at most x4) to "
        "full, the three bands alike (hues kept), blended with the original: blend 0-100 (default 100)",
    )
)
effect(
    EffectSpec(
        "auto_brightness",
        AUTO_BRIGHTNESS.parse,
        AUTO_BRIGHTNESS.render,
        _auto(AUTO_BRIGHTNESS, "brightness"),
        "a gamma curve (exponent 0.5 to 2) taking the median luma to mid-grey, blended with the original: "
        "blend 0-100 (default 100)",
    )
)
effect(
    EffectSpec(
        "auto_color",
        AUTO_COLOR.parse,
        AUTO_COLOR.render,
        _auto(AUTO_COLOR, "color"),
        "levels per band: each of R, G, B stretched to full on its own range (0.5 % clipped at each end; at "
        "most x4, its middle then at mid-grey), which removes a colour cast, blended with the original: "
        "blend 0-100 (default 100)",
    )
)
effect(
    EffectSpec(
        "improve",
        _parse_improve,
        Improve.render,
        _improve,
        "e_auto_color, e_auto_contrast and e_auto_brightness chained, then e_vibrance; mode outdoor "
        "(default: colour 50 %, contrast 100 %, brightness 50 %, vibrance 30) or indoor (colour 100 %, "
        "contrast 60 %, brightness 100 %, vibrance 10), blended with the original: blend 0-100 (default "
        "100)",
    )
)
