"""What the compiler knows of user variables, component by component: ``$w_300/c_scale,w_$w`` folds to
``c_scale,w_300`` here, and what only the image can decide is left for the render (transform/dynamic.py).

Variables are assigned in URL order, the ``$name_`` parameters of a component before its other
parameters use them (and after its ``if_`` is tested). An assignment inside a condition happens only when
its branch runs: within the branch its value is known, after the block only if every way through gave the
same value; otherwise the variable is assigned when rendering, on every way through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grammar.errors import BadRequest, InvalidArgument
from transform.expressions import (
    ASSET_NAMES,
    Num,
    Str,
    Unevaluable,
    Value,
    as_expression,
    fold,
    reads,
    text_of,
)
from transform.ops.conditions import Assignment
from transform.ops.registry import spec_for
from transform.ops.text import TextLayer, interpolate, interpolated
from transform.templates import Template

#: Names read from the asset's record (tags, ctx:!key!): the delivered asset's, so not inside a layer.
RECORD_NAMES = ASSET_NAMES | {"ctx", "md"}


Knowledge = dict[str, Value | None]


@dataclass
class Scope:
    """The variables known at this point of the compile: a value, or None (assigned when rendering)."""

    unbound: bool = False  # a named transformation checked alone: its variables may come from the URL
    known: Knowledge = field(default_factory=dict)
    #: One entry per open if_ block: what was known at its if_, and at its if_else (None before).
    _blocks: list[tuple[Knowledge, Knowledge | None]] = field(default_factory=list)

    @property
    def conditional(self) -> bool:
        return bool(self._blocks)

    def enter(self) -> None:
        self._blocks.append((dict(self.known), None))

    def otherwise(self) -> None:
        before, _ = self._blocks[-1]
        self._blocks[-1] = (before, dict(self.known))
        self.known = dict(before)

    def leave(self) -> dict[str, Value]:
        """Close the block: what is known after it. Returns the variables known before it that are not
        known after, with their values: they must be assigned when rendering before the block (the
        branch that leaves them alone keeps that value, which the compile folded and never stored)."""
        before, then = self._blocks.pop()
        ways = [then, self.known] if then is not None else [self.known, before]
        merged: Knowledge = {}
        for name in set(ways[0]) | set(ways[1]):
            first, second = ways[0].get(name, _MISSING), ways[1].get(name, _MISSING)
            # A variable set on one way only is assigned when rendering (undefined on the other way).
            merged[name] = first if first == second and first is not _MISSING else None
        self.known = merged
        return {n: v for n, v in before.items() if v is not None and merged.get(n) is None}


_MISSING: Any = object()
#: A parameter a named transformation checked on its own leaves to the URLs that use it (``co_$c``, its
#: variable theirs to set): the rest of it is checked without it.
_UNCHECKED: Any = object()
_FOLDED = (Assignment, Template, TextLayer)


def bind(params: Mapping[str, Any], scope: Scope, *, in_layer: bool) -> dict[str, Any]:
    """A component's parameters with what the URL decides folded in: templates whose values are all
    known become the parameter's typed value; assignments the URL decides are dropped (and remembered),
    unless inside a condition; the others stay, as Assignment and Template, for the render."""
    for value in params.values():
        if isinstance(value, _FOLDED):
            break
    else:
        return dict(params)  # (most components: nothing to fold; this is on every compile's path)
    bound: dict[str, Any] = {}
    # The component's assignments first, in URL order: its other parameters may use them.
    ordered = sorted(params.items(), key=lambda item: not isinstance(item[1], Assignment))
    for key, value in ordered:
        if isinstance(value, Assignment):
            folded = _fold(key, str(value), value, scope)
            constant = isinstance(folded, Num | Str)
            scope.known[key] = folded if constant else None
            if constant and not scope.conditional:
                continue  # decided by the URL: nothing is left to do when rendering
            expression = as_expression(folded)
            _check_record(key, str(value), reads(expression), in_layer)
            bound[key] = Assignment(key, expression)
        elif isinstance(value, Template):
            bound[key] = _bind_template(key, value, scope, in_layer)
            if bound[key] is _UNCHECKED:
                del bound[key]
                continue
        else:
            bound[key] = value
        if isinstance(bound[key], TextLayer) and interpolated(bound[key]):
            bound[key] = _interpolate(key, bound[key], scope, in_layer)
    return bound


def _interpolate(key: str, layer: TextLayer, scope: Scope, in_layer: bool) -> TextLayer:
    """The values the URL decides put into the text now; the others are put in when rendering."""
    values = {}
    for name in sorted(interpolated(layer)):
        if name not in scope.known and not scope.unbound:
            raise InvalidArgument(key, str(layer), f"{name} is not defined (set it earlier in the chain: "
                                  f"{name}_<value>)")  # fmt: skip
        value = scope.known.get(name)
        if value is not None:
            values[name] = text_of(value)
    return interpolate(layer, values)


def _fold(key: str, text: str, assignment: Assignment, scope: Scope) -> Any:
    try:
        return fold(assignment.expression, scope.known, unbound=scope.unbound)
    except Unevaluable as exc:
        raise InvalidArgument(key, text, str(exc)) from None


def _bind_template(key: str, template: Template, scope: Scope, in_layer: bool) -> Any:
    folded = template.fold(scope.known, unbound=scope.unbound)
    if folded.dynamic and spec_for(key).variables is None:
        if scope.unbound and all(name.startswith("$") for name in folded.reads()):
            return _UNCHECKED  # a named transformation alone: the URLs using it set the variable
        # A value the compile itself needs (a format, a crop mode, a colour...): the URL must decide it.
        raise InvalidArgument(
            key, str(template), "a $variable here must be set from the URL, outside if_ blocks (not from "
            "the image, ctx:!key! or a branch), as only the URL's text decides this parameter"
        )  # fmt: skip
    if folded.dynamic:
        _check_record(key, str(template), folded.reads(), in_layer)
        if key == "e" and not isinstance(folded.parts[0], str):
            raise InvalidArgument(
                key, str(template), "the effect's name must be known from the URL (only its arguments may "
                "depend on the image)"
            )  # fmt: skip
        return folded
    text = folded.text()
    try:
        return spec_for(key).parse(key, text)
    except InvalidArgument as exc:
        shown = str(template) if text == str(template) else f"{template} (= {text})"
        raise InvalidArgument(key, shown, exc.expected) from None


def _check_record(key: str, text: str, names: set[str], in_layer: bool) -> None:
    if in_layer and names & RECORD_NAMES:
        raise BadRequest(
            f"Invalid transformation parameter - {key}_{text}: tags and ctx:!key! are the delivered "
            "asset's; they cannot be read inside a layer (test them around the layer instead)"
        )
