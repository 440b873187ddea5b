"""Conditions ``if_<condition>`` (with ``if_else`` and ``if_end``) and user variables ``$name_<value>``.

Both are structure rather than image operations: the plan compiler (transform/plan.py) turns a condition
into a step that picks a branch when rendering and folds variables into the values that use them
(transform/expressions.py says what the expressions mean); these rows say what the values look like.
"""

from __future__ import annotations

from dataclasses import dataclass

from grammar.ast import Condition, Expression
from grammar.errors import InvalidArgument, TransformationSyntaxError
from grammar.parse import parse_condition, parse_expression
from transform.ops.registry import ParamSpec, param

#: ``if_else`` and ``if_end``: the words that separate and close the branches of an ``if_`` block.
BRANCH_WORDS = ("else", "end")

_CONDITION = (
    "a condition <name>_<operator>_<value> (w_gt_1000, ar_lt_1.0, !sale!_in_tags; operators eq, ne, lt, "
    "gt, lte, gte, in, nin; joined by _and_ or _or_), else or end"
)
_ASSIGNMENT = (
    "a number, !text!, a name (iw, w, ...), another $variable, ctx:!key!, or arithmetic of these "
    "(_add_, _sub_, _mul_, _div_, _mod_, _pow_; _to_f, _to_i)"
)


@dataclass(frozen=True)
class Assignment:
    """``$w_iw_div_2``: the variable (with its ``$``) and the expression it is set to."""

    name: str
    expression: Expression

    def __str__(self) -> str:
        return str(self.expression)


def _condition(key: str, value: str) -> Condition | str:
    if value in BRANCH_WORDS:
        return value
    try:
        return parse_condition(value)
    except TransformationSyntaxError as exc:
        raise InvalidArgument(key, value, f"{key}_ takes {_CONDITION}: {exc.public}") from None


def _assignment(key: str, value: str) -> Assignment:
    try:
        return Assignment(key, parse_expression(value))
    except TransformationSyntaxError as exc:
        raise InvalidArgument(key, value, f"a variable takes {_ASSIGNMENT}: {exc.public}") from None


param(
    ParamSpec(
        "if",
        "condition",
        _condition,
        "apply what follows only when the condition holds: if_<condition>/.../[if_else/.../]if_end, or "
        "to its own component (if_w_gt_500,c_scale,w_500); w, h, ar (current image), iw, ih, iar "
        "(original), fc (faces), pc (pages), tags, ctx:!key! (the asset's)",
        "condition",
    )
)
param(
    ParamSpec(
        "$",
        "user variable",
        _assignment,
        "set a variable ($name_<value>) that later parameters use (w_$name, w_$name_mul_2, "
        "if_w_gt_$name): a number, !text! or an expression of the image's names (iw, w, ...)",
        "variable",
    )
)
