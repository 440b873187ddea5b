"""Named transformations ``t_<name>[.<name>...]``, expanded by the plan compiler from ``named``."""

from __future__ import annotations

import re

from grammar.errors import InvalidArgument
from transform.ops.registry import ParamSpec, param

_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _names(key: str, value: str) -> tuple[str, ...]:
    names = tuple(value.split("."))
    if not all(_NAME.fullmatch(name) for name in names):
        raise InvalidArgument(
            key, value, "named transformation must be names of letters, digits, '_' and '-', joined by '.'"
        )
    return names


param(
    ParamSpec(
        "t",
        "named transformation",
        _names,
        "apply named transformations (t_thumb or t_a.b)",
        "named",
        lambda v: ".".join(v),
    )
)
