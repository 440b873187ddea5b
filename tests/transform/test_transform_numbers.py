"""Numbers in transformation values: however long, signed, fractional or exotic, every parameter and
every effect answers a 400 naming itself, never a 500. Python's int() refuses strings of more than 4300
digits with a ValueError (and takes digits of other scripts, '²', that no URL means), so a value that
reached a bare int() was a 500 with a traceback."""

from __future__ import annotations

import pytest

from grammar import parse_transformation
from grammar.errors import BadRequest
from transform import compile_plan
from transform.ops import EFFECTS, PARAMS

HUGE = "9" * 4400
ZEROS = "0" * 4400 + "5"  # a small number written long: int() counts the leading zeros too
#: Shapes a number can take in a value, each with a huge (or non-ASCII) number in it.
SHAPES = (
    HUGE, ZEROS, f"-{ZEROS}", f"{ZEROS}:1", f"-{HUGE}", f"{HUGE}.5", f"0.{HUGE}", f"{HUGE}:{HUGE}",
    f"{HUGE}:1", f"1:{HUGE}", f"{HUGE}p", f"{HUGE}px_solid_black", f"level_{HUGE}",
    f"{HUGE}:{HUGE}:{HUGE}:{HUGE}", f"auto:border_gradient:{HUGE}", "1e999", "nan", "inf", "²", "1:²",
    "level_²",
)  # fmt: skip
#: Effects whose arguments are named options (``azimuth_220;elevation_60``) or a mode before a number.
OPTIONS = (
    f"azimuth_{HUGE}", f"elevation_{HUGE}", f"spread_{HUGE}", f"outer:{HUGE}", f"outer:1:{HUGE}",
    f"inner:{HUGE}:1", f"{HUGE}:white", f"1:{HUGE}:white", f"level_{HUGE}:type_linear",
)  # fmt: skip
TEXT = (
    f"text:Arial_{HUGE}:hi", f"text:Arial_{ZEROS}:hi", f"text:Arial_10_line_spacing_{ZEROS}:hi",
    "text:Arial_²:hi", f"text:Arial_10_letter_spacing_{HUGE}:hi", f"text:Arial_10_line_spacing_-{HUGE}:hi",
    "text:Arial_10_letter_spacing_²:hi",
)  # fmt: skip


def refused(text: str) -> BadRequest | None:
    """The 400 ``text`` gets, None when it is accepted; anything else (a ValueError) fails the test."""
    try:
        compile_plan(parse_transformation(text))
    except BadRequest as exc:
        assert exc.status == 400, text[:80]
        return exc
    return None


@pytest.mark.parametrize("key", sorted(set(PARAMS) - {"t"}))  # t_'s values are names, not numbers
def test_every_parameter_refuses_huge_numbers_by_name(key: str) -> None:
    for shape in SHAPES:
        exc = refused(f"{key}_{shape}")
        if exc is not None:  # some values stay valid text (b_auto:..., t_<name>): a 400 is not a must
            assert f"{key}_" in exc.public, (key, shape[:20], exc.public[:200])


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_every_effect_refuses_huge_numbers_by_name(name: str) -> None:
    for shape in (*SHAPES, *OPTIONS):
        exc = refused(f"e_{name}:{shape}")
        if exc is None:  # a small number written with thousands of zeros may well be valid
            assert ZEROS in shape, (name, shape[:20])
            continue
        assert f"e_{name}" in exc.public, (name, shape[:20], exc.public[:200])


@pytest.mark.parametrize("value", TEXT, ids=lambda v: v[:30])
def test_text_layer_sizes_and_spacings_are_bounded(value: str) -> None:
    for key in ("l", "u"):
        exc = refused(f"{key}_{value}")
        if exc is None:
            assert ZEROS in value, value[:40]
            continue
        assert f"{key}_text:" in exc.public, value[:40]
