"""``w_auto`` and ``dpr_auto``: a width and a device pixel ratio the browser's Client Hints decide.

Like ``f_auto`` (negotiated from Accept, transform/formats.py), they are settled per request before the
plan is compiled: ``resolve`` rewrites the URL's components into plain ``w_<pixels>`` and ``dpr_<n>.0``,
so the compiled plan, its canonical form and so the derivative's cache key name the size delivered (two
devices never share an entry), and the render is an ordinary one. The caller sends ``Vary`` naming the
headers ``Resolved.vary`` lists.

Where each rule comes from:

- The hints: ``Sec-CH-DPR`` (the device pixel ratio), ``Sec-CH-Width`` (the width the image occupies in
  the layout, in device pixels) and ``Viewport-Width`` (the window's width, in CSS pixels)
  (https://cloudinary.com/documentation/responsive_server_side_client_hints). Browsers that predate the
  ``Sec-CH-`` names send ``DPR``, ``Width`` and ``Viewport-Width``; MDN: the width hints are physical
  pixels rounded up (https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Sec-CH-Width), the viewport
  CSS pixels (https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Viewport-Width). The ``Sec-CH-``
  form wins when both come.
- "The device's DPR is rounded up to an integer value (1.0, 2.0, 3.0, etc.) and the actual required width
  value is rounded up to the closest multiple of 100 pixels (by default)"; ``w_auto:100:387`` names a
  fallback width "used in the case that the Client Hint header is not available", itself rounded up (to
  400); ``dpr_auto,w_auto/c_limit,w_2000`` "limits the delivered image to 2000px wide in case that the
  Client Hints are not available", so ``w_auto`` without hints nor fallback leaves the width as it is;
  Cloudinary "determines the required width of an image based on the browser's viewport-width or the
  layout width"
  (https://cloudinary.com/blog/introducing_smart_cropping_intelligent_quality_selection_and_automated_responsive_images).
- ``dpr_auto`` without a hint is 1.0: "the default is still a 1x, baseline image"
  (https://cloudinary.com/blog/client_hints_and_responsive_images_what_changed_in_chrome_67).
- ``w_auto:breakpoints`` chooses widths from the image's own content and bytes (same blog): a 400 here.

Where the documents are silent, this module's choices (README says them too):

- A width hint is already in device pixels: where a ``dpr_`` multiplies the ``w_auto`` (the component's
  own, or a ``dpr_`` alone in the chain), the width written is the hint divided by that ratio, rounded
  up to the step, so the image delivered is at least as wide as the hint and never multiplied twice
  (``w_auto,dpr_auto`` with ``Sec-CH-Width: 660`` and ``Sec-CH-DPR: 2``: ``w_400,dpr_2.0``, 800 px).
  ``Viewport-Width`` is multiplied by the DPR hint to be device pixels too.
- Hints are bounded, not refused (the URL is valid whatever a client sends): a DPR over ``MAX_AUTO_DPR``
  counts as that, a width over ``MAX_HINT_WIDTH`` as that, and a hint that is not a positive number is
  ignored (as if absent). With the rounding, one URL has at most ``MAX_HINT_WIDTH / step`` widths times
  ``MAX_AUTO_DPR`` ratios of derivatives, however many values clients send.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from grammar.ast import Component, Param
from grammar.errors import BadRequest, InvalidArgument
from transform.delivery import DPR_COMPANIONS
from transform.ops.args import MAX_LENGTH, fmt_float, integer
from transform.ops.registry import spec_for
from transform.plan import Plan, compile_plan

DPR_HEADERS = ("Sec-CH-DPR", "DPR")
WIDTH_HEADERS = ("Sec-CH-Width", "Width")
VIEWPORT_HEADERS = ("Sec-CH-Viewport-Width", "Viewport-Width")
#: What a server opts in to with Accept-CH (the ``Sec-CH-`` names, and the older ones for browsers that
#: only know those).
ACCEPT_CH = ", ".join((*DPR_HEADERS, *WIDTH_HEADERS, *VIEWPORT_HEADERS))
#: The step w_auto rounds up to when the URL gives none (Cloudinary's "multiple of 100 pixels").
DEFAULT_STEP = 100
#: dpr_auto never exceeds this: phones report up to about 3.5, which rounds up to 4.
MAX_AUTO_DPR = 4
#: The widest a width hint counts as: an 8K screen's 7680 device pixels fit.
MAX_HINT_WIDTH = 8192
_HINT_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{0,12})?|\.[0-9]{1,12}")


@dataclass(frozen=True)
class Hints:
    """The Client Hints of one request, read and bounded (None: absent or unusable)."""

    dpr: float | None = None
    width: int | None = None
    viewport_width: int | None = None

    @classmethod
    def read(cls, header: Callable[[str], str | None]) -> Hints:
        """``header``: a request's header by name (case-insensitive, as Starlette's ``headers.get``)."""
        dpr = _first(header, DPR_HEADERS)
        width = _first(header, WIDTH_HEADERS)
        viewport = _first(header, VIEWPORT_HEADERS)
        return cls(
            min(dpr, float(MAX_AUTO_DPR)) if dpr is not None else None,
            _pixels(width),
            _pixels(viewport),
        )


NO_HINTS = Hints()


def _first(header: Callable[[str], str | None], names: Sequence[str]) -> float | None:
    """The first of ``names`` that holds a positive number (the ``Sec-CH-`` name first)."""
    for name in names:
        text = (header(name) or "").strip()
        if _HINT_NUMBER.fullmatch(text) and float(text) > 0:
            return float(text)
    return None


def _pixels(value: float | None) -> int | None:
    return min(math.ceil(value), MAX_HINT_WIDTH) if value is not None else None


@dataclass(frozen=True)
class AutoWidth:
    """``w_auto[:<step>[:<fallback>]]``."""

    step: int
    fallback: int | None


@dataclass(frozen=True)
class Resolved:
    """The components with w_auto and dpr_auto replaced (each keeping its ``raw`` text as the URL wrote
    it, which a 400 quotes: ``t_ must be alone in its component ('t_big,w_auto')``, not the value the
    hints chose); ``vary``: the request headers the values were read from (every one that could change
    them, for Vary); ``written``: the auto parameters as the URL writes them, in order (empty when the URL
    has none); ``transformation``: the chain with the chosen values written in (``c_scale,w_400``),
    which compiles to the same plan without any hint."""

    components: tuple[Component, ...]
    vary: tuple[str, ...]
    written: tuple[str, ...]
    transformation: str


def is_auto(param: Param) -> bool:
    return (param.key == "w" and (param.value == "auto" or param.value.startswith("auto:"))) or (
        param.key == "dpr" and param.value == "auto"
    )


def uses_hints(components: Sequence[Component]) -> bool:
    return any(is_auto(p) for c in components for p in c.params)


def auto_width(value: str) -> AutoWidth:
    """Parse the value of ``w_auto...`` (a 400 naming what is wrong)."""
    parts = value.split(":")
    if len(parts) > 1 and parts[1].startswith("breakpoints"):
        raise InvalidArgument("w", value, "w_auto:breakpoints (widths chosen from the image's content) is "
                              "not supported; give a rounding step and a fallback width, w_auto:100:400")
    if len(parts) > 3:
        raise InvalidArgument("w", value, "expected w_auto, w_auto:<rounding step> or "
                              "w_auto:<rounding step>:<fallback width>")
    numbers = [integer(part) for part in parts[1:]]
    for part, number in zip(parts[1:], numbers, strict=True):
        if number is None or not 1 <= number <= MAX_LENGTH:
            raise InvalidArgument("w", value, f"w_auto's rounding step and fallback width are whole pixels "
                                  f"from 1 to {MAX_LENGTH} ({part!r} is not)")
    step = numbers[0] if numbers else DEFAULT_STEP
    return AutoWidth(step or DEFAULT_STEP, numbers[1] if len(numbers) > 1 else None)


def auto_dpr(hints: Hints) -> int:
    """dpr_auto's ratio: the DPR hint rounded up to a whole number (1 to MAX_AUTO_DPR), 1 without one."""
    if hints.dpr is None or not hints.dpr > 0:
        return 1
    return max(1, min(MAX_AUTO_DPR, math.ceil(min(hints.dpr, MAX_AUTO_DPR))))


def resolve_hints(components: Sequence[Component], hints: Hints) -> Resolved:
    """``components`` with each ``w_auto...`` and ``dpr_auto`` made the value ``hints`` decide."""
    written = tuple(f"{p.key}_{p.value}" for c in components for p in c.params if is_auto(p))
    if not written:
        return Resolved(tuple(components), (), (), "/".join(c.raw for c in components))
    ratio = float(auto_dpr(hints))
    chain = None
    for component in components:
        keys = {p.key for p in component.params}
        if "dpr" in keys and keys - DPR_COMPANIONS == {"dpr"}:  # as delivery.is_delivery_dpr reads it
            chain = _ratio_of(component, ratio)
    resolved = []
    texts = []
    vary: set[str] = set()
    for component in components:
        if not any(is_auto(p) for p in component.params):
            resolved.append(component)
            texts.append(component.raw)
            continue
        own = _ratio_of(component, ratio)
        params = []
        for p in component.params:
            if p.key == "dpr" and p.value == "auto":
                vary.update(DPR_HEADERS)
                p = replace(p, value=fmt_float(ratio))
            elif is_auto(p):
                vary.update((*WIDTH_HEADERS, *VIEWPORT_HEADERS, *DPR_HEADERS))
                p = replace(p, value=_width(auto_width(p.value), hints, own or chain or 1.0))
            params.append(p)
        resolved.append(Component(tuple(params), component.raw))
        texts.append(",".join(f"{p.key}_{p.value}" for p in params))
    order = (*DPR_HEADERS, *WIDTH_HEADERS, *VIEWPORT_HEADERS)
    return Resolved(tuple(resolved), tuple(h for h in order if h in vary), written, "/".join(texts))


def _ratio_of(component: Component, auto: float) -> float | None:
    """The dpr_ a component gives (dpr_auto's resolved), None when it gives none or an invalid one
    (compiling the plan says what is wrong with it)."""
    for p in component.params:
        if p.key == "dpr":
            if p.value == "auto":
                return auto
            try:
                return float(spec_for("dpr").parse("dpr", p.value))  # as compiling reads it
            except BadRequest:
                return None
    return None


def _width(auto: AutoWidth, hints: Hints, ratio: float) -> str:
    """The w_ value: the needed device pixels over the ratio that will multiply it, rounded up to the
    step; the fallback rounded up when no width hint came; else ``1.0`` (the width as it is)."""
    device = hints.width
    if device is None and hints.viewport_width is not None:
        device = math.ceil(hints.viewport_width * min(hints.dpr or 1.0, MAX_AUTO_DPR))
    if device is not None and device > 0:
        device = min(device, MAX_HINT_WIDTH)
        css = math.ceil(device / ratio)
    elif auto.fallback is not None:
        css = auto.fallback
    else:
        return "1.0"
    rounded = math.ceil(css / auto.step) * auto.step
    # Never a width the URL could not write (MAX_LENGTH: a dpr_ under 1 would otherwise let a wide hint
    # make w_20000, a 400 naming what nobody wrote), nor more than dpr_ may multiply into one
    # (transform/ops/registry.py).
    return str(max(1, min(rounded, MAX_LENGTH, int(MAX_LENGTH / ratio))))


def written_name(canonical: str, resolved: Resolved) -> str:
    """What strict mode and ``cutout eager`` compare for a URL with w_auto or dpr_auto: the canonical form
    its plan has without hints, and the auto parameters as written (so an allowed ``c_scale,w_400`` does
    not allow ``c_scale,w_auto:100:400``, which any client may make 4000 wide)."""
    return f"{canonical}|{','.join(resolved.written)}" if resolved.written else canonical


def compile_unhinted(
    components: Sequence[Component], *, named: Mapping[str, str] | None = None, unbound: bool = False
) -> tuple[Plan, str]:
    """The plan a URL has without Client Hints (its fallbacks), and the name strict mode compares
    (``written_name``): what checks a transformation before any request, eager renders and ``cutout
    render`` use."""
    resolved = resolve_hints(components, NO_HINTS)
    plan = compile_plan(resolved.components, named=named, unbound=unbound)
    return plan, written_name(plan.canonical, resolved)
