"""What applies to the delivered image as a whole, taken out of the components that say it: the output
(f_, q_, the output flags), the animation (pg_, dl_, vs_, e_loop), the default image (d_), the download's
name (fl_attachment) and a dpr_ component of its own, which multiplies the whole chain's sizes. Each is
refused inside a layer or an if_ block, and given twice only with the same value.

The plan compiler (transform/plan.py) calls these on each component before building its steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grammar.errors import BadRequest
from transform.ops import render_param
from transform.ops.effects import Effect
from transform.ops.flags import KEEP_ATTRIBUTION, KEEP_IPTC, STRIP_PROFILE, attachment_name, is_output_flag
from transform.ops.output import Quality
from transform.ops.pages import Loop
from transform.templates import Template

#: Where a component is when not on the delivered image itself (what the 400s name).
IN_CONDITION = "inside an if_ block"
IN_LAYER = "inside a layer"

#: Keys that apply to the delivered image as a whole, taken out of their component; the animation's
#: (pg_, dl_, vs_, and e_loop, taken as "loop") may not differ between two components.
_DELIVERY = ("f", "q", "cs", "pg", "dl", "vs")
_ANIMATION = {"pg": "pages", "dl": "delays", "vs": "samplings", "loop": "loops"}


def take_delivery(params: dict[str, Any], out: dict[str, Any], *, nested: str | None) -> None:
    """Moves f_, q_, cs_, pg_, dl_, vs_ and e_loop out of a component into ``out`` (cs_ only to be checked:
    what it asks for is what every output is, transform/ops/output.py COLOUR_SPACES)."""
    chosen = params.get("e")
    if isinstance(chosen, Template) and str(chosen).split(":")[0] == "loop":
        raise BadRequest(f"Invalid transformation parameter - e_{chosen}: the loop count must be known from "
                         "the URL (it applies to the delivered animation)")  # fmt: skip
    taken = [key for key in _DELIVERY if key in params]
    if isinstance(chosen, Effect) and isinstance(chosen.arguments, Loop):
        taken.append("e")
    for key in taken:
        shown = "e_loop" if key == "e" else f"{key}_"
        if nested:
            raise BadRequest(f"Invalid transformation: {shown} applies to the delivered image, not {nested}")
        if key in _ANIMATION or key == "e":
            if "l" in params or "u" in params:
                raise BadRequest(
                    f"Invalid transformation: {shown} applies to the delivered image, not {IN_LAYER}"
                )
        value = params.pop(key)
        if key == "e":
            key, value = "loop", value.arguments
        if key in _ANIMATION and out.get(key, value) != value:
            raise BadRequest(
                f"Invalid transformation: {shown} is given twice, with different {_ANIMATION[key]}"
            )
        out[key] = value


def take_default(params: dict[str, Any], out: dict[str, Any], *, nested: str | None) -> None:
    """d_ names the default of the delivered image, wherever it is in the chain (outside layers): the
    whole transformation then applies to the default. A layer's own missing image stays a 404."""
    default = params.pop("d")
    if nested or "l" in params or "u" in params:
        where = nested if nested == IN_CONDITION else "inside a layer or in the component that opens one"
        raise BadRequest(
            f"Invalid transformation: d_ names the default of the delivered image; it cannot be {where}"
        )
    if out.setdefault("d", default) != default:
        raise BadRequest("Invalid transformation: d_ is given twice, with different images")


def attachment(flags: Sequence[str]) -> str | None:
    """The download's name that fl_attachment gives ("" for the public id's); None when there is none."""
    names = {name for name in map(attachment_name, flags) if name is not None}
    if len(names) > 1:
        raise BadRequest("Invalid transformation: fl_attachment is given twice, with different names")
    return names.pop() if names else None


def progressive(flags: Sequence[str]) -> bool:
    """Whether fl_progressive asks for progressive output. With fl_progressive:none too (in two fl_ of a
    component, or two components) one of the two would be dropped silently: a 400, as in one fl_."""
    if "progressive" in flags and "progressive:none" in flags:
        raise BadRequest("Invalid transformation: fl_progressive and fl_progressive:none ask for opposite "
                         "things; keep one")  # fmt: skip
    return "progressive" in flags


def kept_metadata(flags: Sequence[str], quality: Quality | None) -> str | None:
    """What of the original's metadata the output keeps: "all" (fl_keep_iptc), "attribution"
    (fl_keep_attribution alone: its rights fields), or None. Cloudinary documents that fl_keep_iptc cannot
    be combined with q_auto (https://cloudinary.com/documentation/transformation_reference#fl_keep_iptc),
    which strips metadata; it says no such thing of fl_keep_attribution, whose few fields q_auto has no
    reason to drop. fl_strip_profile, in another component, asks for the opposite of either."""
    flag = KEEP_IPTC if KEEP_IPTC in flags else KEEP_ATTRIBUTION if KEEP_ATTRIBUTION in flags else None
    if flag is None:
        return None
    if STRIP_PROFILE in flags:
        raise BadRequest(f"Invalid transformation: fl_{flag} and fl_strip_profile ask for opposite things "
                         "(the original's metadata, and none); keep one")  # fmt: skip
    if flag == KEEP_ATTRIBUTION:
        return "attribution"
    if quality is not None and quality.number is None:
        raise BadRequest(
            f"Invalid transformation parameter - fl_keep_iptc: cannot be combined with q_{quality} "
            "(automatic quality strips metadata, as Cloudinary's); give a number (q_80) or leave q_ out"
        )
    return "all"


def take_output_flags(params: dict[str, Any], out: dict[str, Any], *, nested: str | None) -> None:
    """Moves the output flags out of a component's fl_ into ``out["fl"]``; the layer flags stay."""
    flags = params.get("fl", ())
    output = [flag for flag in flags if is_output_flag(flag)]
    if not output:
        return
    if nested:
        raise BadRequest(
            f"Invalid transformation: fl_{output[0]} applies to the delivered image, not {nested}"
        )
    out["fl"] = (*out.get("fl", ()), *output)
    rest = tuple(flag for flag in flags if not is_output_flag(flag))
    if rest:
        params["fl"] = rest
    else:
        del params["fl"]


#: What a dpr_ of its own may come with (``dpr_1.0,cs_srgb``).
DPR_COMPANIONS = frozenset({"f", "q", "cs", "d"})


def is_delivery_dpr(params: Mapping[str, Any]) -> bool:
    """The component is a dpr_ of its own (with f_, q_, cs_ or d_ at most: ``dpr_1.0,cs_srgb``)."""
    return set(params) - DPR_COMPANIONS == {"dpr"}


def delivery_dpr(expanded: Sequence[Mapping[str, Any]]) -> float | None:
    """The dpr_ of a component that holds nothing else (with f_/q_ at most): Cloudinary's URL-gen SDKs
    write ``c_scale,h_300/dpr_2.0`` (a delivery action), which multiplies the requested sizes of the
    whole chain (600 px high). None when there is none."""
    alone = [p["dpr"] for p in expanded if is_delivery_dpr(p)]
    if not alone:
        return None
    # A component's own dpr_ would win over the chain's for that component, leaving the chain's unused
    # where it is the only sized one (c_scale,w_100,dpr_2.0/dpr_3.0): two ratios for one delivered image
    # are a contradiction however they are placed, as two dpr_ components are.
    own = [p["dpr"] for p in expanded if "dpr" in p and not is_delivery_dpr(p)]
    if len(set(alone + own)) > 1:
        raise BadRequest("Invalid transformation: dpr_ is given twice, with different values")
    if not any("w" in p or "h" in p for p in expanded):
        value = render_param("dpr", alone[0])
        raise BadRequest(f"Invalid transformation parameter - {value}: dpr_ needs w_ or h_ to multiply")
    return float(alone[0])
