"""w_auto and dpr_auto settled from Client Hints (transform/hints.py): the rules, the bounds, the fallbacks,
and that the settled plan's key names the size."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from grammar import parse_transformation
from grammar.errors import BadRequest, InvalidArgument
from transform import compile_plan
from transform.hints import (
    MAX_AUTO_DPR,
    MAX_HINT_WIDTH,
    NO_HINTS,
    Hints,
    auto_dpr,
    auto_width,
    compile_unhinted,
    resolve_hints,
    uses_hints,
)

ALL = ("Sec-CH-DPR", "DPR", "Sec-CH-Width", "Width", "Sec-CH-Viewport-Width", "Viewport-Width")


def read(headers: Mapping[str, str]) -> Hints:
    lowered = {k.lower(): v for k, v in headers.items()}
    return Hints.read(lambda name: lowered.get(name.lower()))


def settled(text: str, hints: Hints) -> str:
    return resolve_hints(parse_transformation(text), hints).transformation


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, NO_HINTS),
        ({"Sec-CH-DPR": "2", "Sec-CH-Width": "660", "Sec-CH-Viewport-Width": "412"}, Hints(2.0, 660, 412)),
        ({"DPR": "1.5", "Width": "100.2", "Viewport-Width": "300"}, Hints(1.5, 101, 300)),  # ceiling
        ({"Sec-CH-DPR": "3", "DPR": "1"}, Hints(3.0, None, None)),  # the Sec-CH- name wins
        ({"Sec-CH-DPR": "junk", "DPR": "2"}, Hints(2.0, None, None)),  # an unusable one is absent
        ({"Sec-CH-DPR": "1e9", "Sec-CH-Width": "10000000"}, Hints(None, MAX_HINT_WIDTH, None)),
        ({"Sec-CH-DPR": "1000000000"}, Hints(float(MAX_AUTO_DPR), None, None)),
        ({"Sec-CH-DPR": "0", "Sec-CH-Width": "-5", "Viewport-Width": "NaN"}, NO_HINTS),
        ({"Sec-CH-DPR": "inf", "Sec-CH-Width": "1" * 40}, NO_HINTS),
    ],
)
def test_hints_are_read_and_bounded(headers: dict[str, str], expected: Hints) -> None:
    assert read(headers) == expected


@pytest.mark.parametrize(
    ("text", "hints", "expected"),
    [
        # dpr_auto: the DPR rounded up to a whole number, 1.0 without a hint, MAX_AUTO_DPR at most.
        ("c_scale,w_100/dpr_auto", NO_HINTS, "c_scale,w_100/dpr_1.0"),
        ("c_scale,w_100/dpr_auto", Hints(dpr=1.25), "c_scale,w_100/dpr_2.0"),
        ("c_scale,w_100/dpr_auto", Hints(dpr=2.625), "c_scale,w_100/dpr_3.0"),
        ("c_scale,w_100/dpr_auto", Hints(dpr=1e9), "c_scale,w_100/dpr_4.0"),
        ("c_scale,w_100/dpr_auto", Hints(dpr=0.75), "c_scale,w_100/dpr_1.0"),
        # w_auto: rounded up to the step (100 by default); the fallback too; else the width as it is.
        ("c_scale,w_auto", Hints(width=250), "c_scale,w_300"),
        ("c_scale,w_auto:50", Hints(width=260), "c_scale,w_300"),
        ("c_scale,w_auto:100:387", NO_HINTS, "c_scale,w_400"),
        ("c_limit,w_auto", NO_HINTS, "c_limit,w_1.0"),
        ("c_scale,w_auto:20:350", Hints(width=10**9), "c_scale,w_8200"),  # MAX_HINT_WIDTH, rounded up
        # The viewport is CSS pixels: times the DPR hint.
        ("c_scale,w_auto", Hints(dpr=2.0, viewport_width=412), "c_scale,w_900"),
        # A width hint is device pixels: divided by the dpr_ that will multiply it, own or the chain's.
        ("c_scale,w_auto,dpr_auto", Hints(dpr=2.0, width=660), "c_scale,w_400,dpr_2.0"),
        ("c_scale,w_auto/dpr_auto", Hints(dpr=2.625, width=1050), "c_scale,w_400/dpr_3.0"),
        ("c_scale,w_auto/dpr_2.0", Hints(width=800), "c_scale,w_400/dpr_2.0"),
        # The chain's dpr_ as delivery reads it: with f_, q_, cs_ or d_ beside it (delivery.DPR_COMPANIONS).
        ("c_scale,w_auto/dpr_auto,cs_srgb", Hints(dpr=2.0, width=800), "c_scale,w_400/dpr_2.0,cs_srgb"),
        ("c_scale,w_auto", Hints(dpr=2.0, width=660), "c_scale,w_700"),  # no dpr_: the device pixels
        # A step so large the ratio would multiply it past what a URL may write: capped.
        ("c_scale,w_auto:16000,dpr_auto", Hints(dpr=4.0, width=8000), "c_scale,w_4096,dpr_4.0"),
        # A dpr_ under 1 divides a wide hint past what a URL may write: capped there too (was w_80000,
        # a 400 naming a width nobody wrote).
        ("c_scale,w_auto,dpr_0.1", Hints(width=8000), "c_scale,w_16384,dpr_0.1"),
    ],
)
def test_settled_values(text: str, hints: Hints, expected: str) -> None:
    assert settled(text, hints) == expected
    compile_plan(resolve_hints(parse_transformation(text), hints).components)  # and it is a valid URL


def test_vary_names_what_could_change_the_answer() -> None:
    assert resolve_hints(parse_transformation("c_scale,w_100"), Hints(2.0, 10, 10)).vary == ()
    dpr_only = resolve_hints(parse_transformation("c_scale,w_100/dpr_auto"), NO_HINTS)
    assert dpr_only.vary == ("Sec-CH-DPR", "DPR")
    # w_auto reads the width, the viewport and (for the viewport and the ratio) the DPR.
    assert resolve_hints(parse_transformation("c_limit,w_auto"), NO_HINTS).vary == ALL


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("auto:breakpoints", "w_auto:breakpoints"),
        ("auto:breakpoints_200_1920_30_15:800", "w_auto:breakpoints"),
        ("auto:0", "from 1 to 16384 ('0' is not)"),
        ("auto:100:0", "from 1 to 16384 ('0' is not)"),
        ("auto:100:abc", "('abc' is not)"),
        ("auto:100:16385", "('16385' is not)"),
        ("auto:1:2:3", "w_auto:<rounding step>:<fallback width>"),
    ],
)
def test_bad_forms_are_400s_naming_the_parameter(value: str, said: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        auto_width(value)
    assert caught.value.status == 400 and f"w_{value}" in caught.value.public and said in caught.value.public


def test_keys_differ_per_settled_size_and_strict_names_the_url_as_written() -> None:
    components = parse_transformation("c_scale,w_auto:100:400/dpr_auto")
    assert uses_hints(components) and not uses_hints(parse_transformation("c_scale,w_400/f_auto"))
    derivatives = {
        compile_plan(resolve_hints(components, hints).components).derivative
        for hints in (NO_HINTS, Hints(dpr=2.0), Hints(dpr=2.0, width=900), Hints(dpr=3.0, width=900))
    }
    assert derivatives == {"c_scale,w_400/dpr_1.0", "c_scale,w_400/dpr_2.0", "c_scale,w_500/dpr_2.0",
                           "c_scale,w_300/dpr_3.0"}
    plan, written = compile_unhinted(components)
    assert plan.derivative == "c_scale,w_400/dpr_1.0"
    assert written == "c_scale,w_400/dpr_1.0|w_auto:100:400,dpr_auto"
    assert compile_unhinted(parse_transformation("c_scale,w_400"))[1] == "c_scale,w_400"


def test_auto_dpr_never_exceeds_its_bound() -> None:
    assert [auto_dpr(Hints(dpr=d)) for d in (0.5, 1.0, 1.01, 3.5, 4.0, 4.5, 1e300)] == [1, 1, 2, 4, 4, 4, 4]


def test_an_error_quotes_the_component_as_the_url_wrote_it() -> None:
    """Not the value the hints (or their absence) chose: ('t_big,w_1.0') names nothing the user wrote."""
    components = parse_transformation("c_scale,w_auto,dpr_auto/t_big,w_auto")
    resolved = resolve_hints(components, Hints(dpr=2.0, width=800))
    assert [c.raw for c in resolved.components] == ["c_scale,w_auto,dpr_auto", "t_big,w_auto"]
    assert resolved.transformation == "c_scale,w_400,dpr_2.0/t_big,w_800"
    with pytest.raises(BadRequest, match=r"\('t_big,w_auto'\)"):
        compile_unhinted(components, named={"big": "c_fill,w_900"})
