"""Effects: ``e_<name>[:<arguments>]``. One ``e_`` per component: Cloudinary applies only the last and drops
the others silently, so two are a 400 here (transform/plan.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyvips

from grammar.errors import BadRequest, InvalidArgument, NotAvailable
from transform import pixels
from transform.ops import args
from transform.ops.registry import (
    EFFECTS,
    Action,
    Ctx,
    EffectSpec,
    ParamSpec,
    builder,
    effect,
    param,
    render_param,
)
from transform.seam import MaskSource, cut_out, fit_for_segmentation


@dataclass(frozen=True)
class Effect:
    spec: EffectSpec
    arguments: Any

    def __str__(self) -> str:
        return self.spec.render(self.arguments)


def _parse(key: str, value: str) -> Effect:
    name, _, rest = value.partition(":")
    spec = EFFECTS.get(name)
    if spec is None:
        raise InvalidArgument(key, value, f"effect must be one of {', '.join(EFFECTS)}")
    return Effect(spec, spec.parse(value, rest))


#: Keys that only qualify an effect; the effects that read them say so in ``EffectSpec.qualifiers``.
EFFECT_QUALIFIERS = ("co",)


@builder("effect")
def build(params: Mapping[str, Any], claimed: set[str], prefix: str) -> Action | None:
    chosen: Effect | None = params.get("e")
    for key in EFFECT_QUALIFIERS:
        if key in params and (chosen is None or key not in chosen.spec.qualifiers):
            names = sorted(f"e_{name}" for name, spec in EFFECTS.items() if key in spec.qualifiers)
            users = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
            raise BadRequest(
                f"Invalid transformation parameter - {render_param(key, params[key])}: "
                f"{key}_ needs {users} in the same component"
            )
    if chosen is None or "e" in claimed:  # (claimed: the resize ran it before its pad, see before_pad)
        return None
    claimed.add("e")
    if not chosen.spec.qualifiers:
        return chosen.spec.build(chosen.arguments, prefix)
    extra = {key: params[key] for key in chosen.spec.qualifiers if key in params}
    claimed.update(extra)
    return chosen.spec.build((chosen.arguments, extra), prefix)


def no_arguments(name: str) -> Any:
    def parse(value: str, rest: str) -> None:
        if rest:
            raise InvalidArgument("e", value, f"e_{name} takes no arguments")

    return parse


def _strength(name: str) -> Any:
    def parse(value: str, rest: str) -> int:
        return 100 if rest == "" else args.int_in("e", rest, f"{name} strength", 1, 2000, shown=value)

    return parse


#: The largest e_blur strength taken (as 2000): see _blur_strength.
BLUR_CLAMPED = 100_000


def _blur_strength(value: str, rest: str) -> int:
    """e_blur's strength, 1 to 2000; a larger one, up to BLUR_CLAMPED, is 2000 (sites write e_blur:10000
    to blur an underlay away, ``u_<id>,...,e_blur:10000``, and Cloudinary delivers it: its blur stops at
    2000). Beyond that it is no strength anyone means: a 400."""
    if rest == "":
        return 100
    strength = args.integer(rest)
    if strength is not None and 2000 < strength <= BLUR_CLAMPED:
        return 2000
    return args.int_in("e", rest, "blur strength", 1, 2000, shown=value,
                       forms=f"larger ones up to {BLUR_CLAMPED} are 2000")  # fmt: skip


def rgb_only(image: pyvips.Image, fn: Any) -> pyvips.Image:
    """Run ``fn`` on the colour bands and put the alpha band back unchanged."""
    if not pixels.has_alpha(image):
        return pixels.normalize(fn(image))
    return pixels.normalize(fn(image.extract_band(0, n=3))).bandjoin(image.extract_band(3))


def _grayscale(arguments: None, prefix: str) -> Action:
    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        return rgb_only(image, lambda rgb: rgb.colourspace("b-w").colourspace("srgb"))

    return Action("e_grayscale", run, sequential=True)


#: The sigma from which a blur is computed at once (see _blur).
WIDE_BLUR = 10.0


def _blur(strength: int, prefix: str) -> Action:
    sigma = max(0.3, strength / 20)  # e_blur:100 -> sigma 5 px; e_blur:2000 -> 100 px

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        if not pixels.has_alpha(image):
            blurred = image.gaussblur(sigma).cast("uchar")
        else:
            # Blur premultiplied, or transparent pixels' colours bleed into the visible ones.
            blurred = image.premultiply().gaussblur(sigma).unpremultiply().cast("uchar")
        return blurred.copy(interpretation="srgb")

    # wide: a later blur would otherwise recompute this one's margins for each of its tiles, and chained
    # blurs would cost quadratically (4 x e_blur:2000 on 4 MP: 19 s, not 1.2); run_steps computes it.
    return Action(f"e_{_render_strength('blur', strength)}", run, wide=sigma >= WIDE_BLUR)


def _sharpen(strength: int, prefix: str) -> Action:
    amount = 3.0 * strength / 100  # libvips' default slope at e_sharpen:100

    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        return rgb_only(image, lambda rgb: rgb.sharpen(sigma=1.0, m2=amount, m1=0.0))

    return Action(f"e_{_render_strength('sharpen', strength)}", run)


def _render_strength(name: str, strength: int) -> str:
    return name if strength == 100 else f"{name}:{strength}"


def _blur_at_dpr(strength: int, ratio: float) -> int:
    """A blur's strength is its radius (sigma = strength / 20 px): a device pixel ratio multiplies it, as
    Cloudinary's blur at dpr_2.0 looks on the screen as the blur at dpr_1.0 does."""
    return args.at_dpr("e", _render_strength("blur", strength), strength, ratio, "blur strength", 1, 2000)


def _effect_at_dpr(key: str, chosen: Effect, ratio: float) -> Effect:
    scale = chosen.spec.dpr
    return chosen if scale is None else Effect(chosen.spec, scale(chosen.arguments, ratio))


_SHADOW_DEFAULTS = {"azimuth": 215, "elevation": 45, "spread": 50}


def _parse_shadow(value: str, rest: str) -> dict[str, int]:
    given = (
        {}
        if rest == ""
        else args.named_options(
            "e",
            rest,
            "e_dropshadow",
            shown=value,
            allowed={
                "azimuth": lambda v: args.int_in("e", v, "azimuth", 0, 360, shown=value),
                "elevation": lambda v: args.int_in("e", v, "elevation", 0, 90, shown=value),
                "spread": lambda v: args.int_in("e", v, "spread", 0, 100, shown=value),
            },
        )
    )
    return {**_SHADOW_DEFAULTS, **given}


def _render_shadow(options: dict[str, int]) -> str:
    changed = [f"{k}_{v}" for k, v in options.items() if v != _SHADOW_DEFAULTS[k]]
    return "dropshadow" + (":" + ";".join(changed) if changed else "")


def _dropshadow(options: dict[str, int], prefix: str) -> Action:
    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        if not pixels.has_alpha(image):
            raise BadRequest(
                "Invalid transformation: e_dropshadow needs an image with transparency "
                "(a transparent original, or e_background_removal before it)"
            )
        return cast_shadow(image, **options)

    return Action(f"e_{_render_shadow(options)}", run)


def cast_shadow(image: pyvips.Image, *, azimuth: int, elevation: int, spread: int) -> pyvips.Image:
    """A soft shadow of the alpha channel behind the image. Light comes from ``azimuth`` (0 = from behind,
    so the shadow falls towards the viewer, i.e. down; clockwise) at ``elevation`` above the ground; a
    larger ``spread`` is a larger light, hence a softer shadow. The canvas keeps its size."""
    side = min(image.width, image.height)
    length = side * 0.08 * math.cos(math.radians(elevation))
    dx = round(-math.sin(math.radians(azimuth)) * length)
    dy = round(math.cos(math.radians(azimuth)) * length)
    sigma = 0.5 + side * 0.03 * spread / 100
    alpha = image.extract_band(3)
    shade = (alpha.gaussblur(sigma) * 0.6).cast("uchar")
    shade = shade.embed(dx, dy, image.width, image.height, extend="black")
    shadow = pixels.solid(image.width, image.height, [0, 0, 0, 0]).extract_band(0, n=3).bandjoin(shade)
    return shadow.composite2(image, "over").cast("uchar").copy(interpretation="srgb")


@dataclass(frozen=True)
class Removal:
    fine_edges: bool = False
    #: cutout's own qualifier (``fullsize_y``): an image larger than SEGMENT_MAX_SIDE keeps its size, its
    #: mask made at that side and laid on it. Cloudinary (and the default) scale such an image down first;
    #: the HTTP API and the vendors' faces promise the original's size ("full").
    full_size: bool = False

    def render(self) -> str:
        flags = (("fineedges_y", self.fine_edges), ("fullsize_y", self.full_size))
        options = [name for name, on in flags if on]
        return "background_removal" + (":" + ";".join(options) if options else "")


def _parse_removal(value: str, rest: str) -> Removal:
    fine = full = False
    seen: set[str] = set()
    for option in rest.split(";") if rest else []:
        name = option.partition("_")[0]
        if name in seen:  # fineedges_y;fineedges_n: one of the two would be dropped silently
            raise InvalidArgument("e", value, f"e_background_removal's {name} is given twice")
        seen.add(name)
        if option.startswith("hints_"):
            raise InvalidArgument(
                "e",
                value,
                "hints_ are not supported (the model finds the foreground "
                "without hints); use e_background_removal[:fineedges_y]",
            )
        if option in ("fineedges_y", "fineedges_n"):
            fine = option == "fineedges_y"
        elif option in ("fullsize_y", "fullsize_n"):
            full = option == "fullsize_y"
        else:
            expected = "e_background_removal takes fineedges_y|n and cutout's fullsize_y|n, separated by ;"
            raise InvalidArgument("e", value, expected)
    return Removal(fine, full)


def _background_removal(removal: Removal, prefix: str) -> Action:
    def run(ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
        if ctx.masks is None:
            raise NotAvailable("Background removal is not available: no segmentation model")
        with ctx.uncounted():  # the model, then the cut-out at the size the model fits the image to
            return cut(ctx, image, ctx.masks)

    def cut(ctx: Ctx, image: pyvips.Image, masks: MaskSource) -> pyvips.Image:
        fitted = fit_for_segmentation(image)
        fitted = fitted.copy_memory()  # read by the segmenter and by the compositing: decode once
        # The same key with or without fullsize_y: one mask, made at the fitted size.
        mask = masks(fitted, key=f"{ctx.source_key}|{prefix}", fine_edges=removal.fine_edges)
        if not removal.full_size or (fitted.width, fitted.height) == (image.width, image.height):
            return pixels.normalize(cut_out(fitted, mask.alpha))
        # The guided upsampling has followed the photo's edges up to the fitted size; the last step to
        # the full size (at most 50 MP / 6144 px: about 1.5x) is a smooth resize of the mask.
        alpha = mask.alpha.resize(image.width / fitted.width, vscale=image.height / fitted.height,
                                  kernel="linear")  # no ringing at the edge, as lanczos would make
        alpha = alpha.gravity("north-west", image.width, image.height, extend="copy")  # rounding: +-1 px
        return pixels.normalize(cut_out(image.copy_memory(), alpha))

    return Action("e_" + removal.render(), run, segmentation=True, still_only="e_background_removal")


effect(
    EffectSpec(
        "background_removal",
        _parse_removal,
        Removal.render,
        _background_removal,
        "cut out the foreground with IS-Net (fineedges_y: finer hair and fur; fullsize_y, cutout's own: an "
        "image over 6144 px keeps its size instead of being scaled to 6144 first)",
    )
)
effect(
    EffectSpec(
        "grayscale",
        no_arguments("grayscale"),
        lambda _: "grayscale",
        _grayscale,
        "convert to greyscale (alpha kept)",
    )
)
effect(
    EffectSpec(
        "blur",
        _blur_strength,
        lambda s: _render_strength("blur", s),
        _blur,
        "Gaussian blur, strength 1-2000 (default 100; a larger one, up to 100000, is 2000)",
        dpr=_blur_at_dpr,
    )
)
effect(
    EffectSpec(
        "sharpen",
        _strength("sharpen"),
        lambda s: _render_strength("sharpen", s),
        _sharpen,
        "unsharp mask, strength 1-2000 (default 100)",
    )
)
effect(
    EffectSpec(
        "dropshadow",
        _parse_shadow,
        _render_shadow,
        _dropshadow,
        "shadow cast from the alpha channel: azimuth 0-360 (215), elevation 0-90 (45), spread 0-100 (50)",
    )
)
param(
    ParamSpec(
        "e",
        "effect",
        _parse,
        "an effect e_<name>[:<arguments>] (the effects table); one per component (two are a 400)",
        "effect",
        dpr=_effect_at_dpr,
        variables="integer",
    )
)
