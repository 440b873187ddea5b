"""Parameter values written with expressions: ``w_iw_div_2``, ``r_10:$v:30``, ``e_blur:$amount``,
``l_text:$style:Hi``. Each ':'-separated part is the parameter's own text or an expression
(transform/expressions.py says what those mean); the compile folds what the URL decides, the render the
rest, and the parameter's own validator then reads the text as if the URL had written it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grammar.ast import Expression
from grammar.errors import InvalidArgument, TransformationSyntaxError
from grammar.parse import parse_expression
from transform.expressions import (
    NAMES,
    UNSUPPORTED_NAMES,
    Facts,
    Known,
    Num,
    Str,
    Unevaluable,
    Value,
    evaluate,
    fold,
    is_value,
    reads,
)

#: A value piece that is an expression rather than a literal: a variable, an operator, a conversion, or
#: one of Cloudinary's names (``w_iw``, ``x_w_mul_0.1``). Other text is the parameter's own.
_EXPRESSION = re.compile(
    r"\$[A-Za-z]|_(add|sub|mul|div|mod|pow)_|_to_[fi]$|^(ctx|md):!"
    r"|^(" + "|".join(sorted({*NAMES, *UNSUPPORTED_NAMES}, key=len, reverse=True)) + r")(_|$)"
)


def pieces(value: str) -> list[str]:
    """``"10:$v:30"`` -> ["10", "$v", "30"]; ``"$s:!a:b!"`` -> ["$s", "!a:b!"] (empty pieces kept)."""
    out, start = [], 0
    quoted = False
    for index, char in enumerate(value):
        if char == "!":
            quoted = not quoted
        elif char == ":" and not quoted:
            out.append(value[start:index])
            start = index + 1
    out.append(value[start:])
    return out


#: A part that is one whole variable: what a parameter of free text takes (``l_text:$style:Hi``), where
#: names and operators are text of its own (a folder named ``w``).
_WHOLE_VARIABLE = re.compile(r"\$[A-Za-z][A-Za-z0-9]*")


_ALL_NAMES = frozenset({*NAMES, *UNSUPPORTED_NAMES})


def has_expression(value: str, *, text: bool = False) -> bool:
    if "$" not in value:  # (most values: a number, a ratio, a word; this is on every compile's path)
        if text:
            return False
        if "_" not in value and ":!" not in value:
            return any(piece in _ALL_NAMES for piece in value.split(":"))
    found = _WHOLE_VARIABLE.fullmatch if text else _EXPRESSION.search
    return any(found(piece) for piece in pieces(value))


@dataclass(frozen=True)
class Template:
    """A parameter value with expressions in some of its ':'-separated pieces, such as ``r_10:$v:30``;
    ``rounding`` says how computed numbers are written back (see ``Num.text``)."""

    key: str
    parts: tuple[str | Expression, ...]
    rounding: bool
    #: Literal text after the last part, not split on ':' (a border's ``_solid_rgb:FFB235`` after its
    #: width: ``bo_$size_solid_rgb:FFB235``, where only the width may be an expression).
    suffix: str = ""

    @classmethod
    def parse(cls, key: str, value: str, *, rounding: bool, text: bool = False, suffix: str = "") -> Template:
        """``text``: only whole-variable parts are expressions (see ``has_expression``)."""
        parts: list[str | Expression] = []
        for piece in pieces(value):
            if not (_WHOLE_VARIABLE.fullmatch(piece) if text else _EXPRESSION.search(piece)):
                parts.append(piece)
                continue
            try:
                parts.append(parse_expression(piece))
            except TransformationSyntaxError as exc:
                shown = value + suffix
                raise InvalidArgument(key, shown, f"invalid expression {piece}: {exc.public}") from None
        return cls(key, tuple(parts), rounding, suffix)

    @property
    def dynamic(self) -> bool:
        return any(not isinstance(part, str) for part in self.parts)

    def fold(self, known: Known, *, unbound: bool = False) -> Template:
        """What the URL decides put in: a template whose parts are all text is a plain value (``text``)."""
        parts: list[str | Expression] = []
        for part in self.parts:
            if isinstance(part, str):
                parts.append(part)
                continue
            try:
                folded = fold(part, known, unbound=unbound)
            except Unevaluable as exc:
                raise InvalidArgument(self.key, str(self), str(exc)) from None
            parts.append(self._text(folded) if is_value(folded) else folded)  # type: ignore[arg-type]
        return Template(self.key, tuple(parts), self.rounding, self.suffix)

    def substitute(self, facts: Facts) -> str:
        """The value's text when rendering."""
        texts = []
        for part in self.parts:
            if isinstance(part, str):
                texts.append(part)
                continue
            try:
                texts.append(self._text(evaluate(part, facts)))
            except Unevaluable as exc:
                raise InvalidArgument(self.key, str(self), str(exc)) from None
        return ":".join(texts) + self.suffix

    def _text(self, value: Value) -> str:
        if isinstance(value, Num):
            return value.text(self.rounding)
        if isinstance(value, Str):
            return value.raw
        raise InvalidArgument(self.key, str(self), "tags cannot be a parameter's value")

    def text(self) -> str:
        assert not self.dynamic
        return ":".join(str(part) for part in self.parts) + self.suffix

    def stand_in(self) -> str:
        """The value with 1 for every expression: what the compile checks the rest of a component with."""
        return ":".join(part if isinstance(part, str) else "1" for part in self.parts) + self.suffix

    def reads(self) -> set[str]:
        return set().union(*(reads(p) for p in self.parts if not isinstance(p, str)))

    def __str__(self) -> str:
        return ":".join(str(part) for part in self.parts) + self.suffix
