"""Effects whose one argument is an optional integer level (args.Level: e_sepia, e_vignette, e_shadow...):
each accepts its range's ends, refuses one beyond with its range named, and leaves its default out of the
canonical form, bare and in the verbose spelling the reference also writes (``e_sepia:level_50``)."""

from __future__ import annotations

import pytest

from grammar import parse_transformation
from grammar.errors import BadRequest
from transform import compile_plan
from transform.ops import EFFECTS
from transform.ops.args import Level

LEVELS = sorted(
    (
        spec.parse.__self__
        for spec in EFFECTS.values()
        if isinstance(getattr(spec.parse, "__self__", None), Level)
    ),
    key=lambda level: level.name,
)


def canonical(text: str) -> str:
    return compile_plan(parse_transformation(text)).canonical


def test_the_four_families_use_it() -> None:
    names = {level.name for level in LEVELS}
    assert {"unsharp_mask", "pixelate", "vignette", "make_transparent", "opacity_threshold"} <= names
    assert {"sepia", "gamma", "colorize", "shadow"} <= names


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: level.name)
def test_a_level_s_range_default_and_spellings(level: Level) -> None:
    name, spellings = level.name, ["", level.verbose] if level.verbose else [""]
    assert canonical(f"e_{name}") == canonical(f"e_{name}:{level.default}") == f"e_{name}"
    for spelling in spellings:
        for end in (level.low, level.high):
            expected = f"e_{name}" if end == level.default else f"e_{name}:{end}"
            assert canonical(f"e_{name}:{spelling}{end}") == expected
        with pytest.raises(BadRequest) as caught:
            canonical(f"e_{name}:{spelling}{level.high + 1}")
        forms = f" (bare or {level.verbose}<n>)" if level.say_verbose else ""
        assert caught.value.public == (
            f"Invalid transformation parameter - e_{name}:{spelling}{level.high + 1}: "
            f"{level.noun} must be an integer from {level.low} to {level.high}{forms}"
        )


def test_a_verbose_spelling_is_taken_once_and_only_where_accepted() -> None:
    with pytest.raises(BadRequest, match="shadow strength must be"):
        canonical("e_shadow:strength_strength_5")
    with pytest.raises(BadRequest, match="vignette strength must be"):
        canonical("e_vignette:strength_5")
    assert canonical("e_shadow:strength_5") == "e_shadow:5"
