"""What Cloudinary's expressions mean: the values of ``if_`` conditions, of ``$name_`` variables and of
numbers written with variables or arithmetic (``w_iw_div_2``, ``x_$pad``).

One evaluator serves both times an expression is looked at. At compile time (``fold``) every variable
whose value the URL alone decides is replaced by that value, so ``$w_300/c_scale,w_$w`` is plainly
``c_scale,w_300`` (same plan, same cache key, shrink-on-load and all); what is left names the image
(``iw``, ``w``, ``fc``, ``tags``...) and is evaluated when the image is rendered (``evaluate``).

Pure Python: the image facts come in through ``Facts``, which ``transform.dynamic`` fills from pyvips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from grammar.ast import (
    Comparison,
    Condition,
    Conversion,
    Expression,
    Lookup,
    Name,
    Number,
    Operation,
    Text,
    Variable,
)
from grammar.parse import quoted

#: The image characteristics cutout evaluates, and what each is.
NAMES = {
    "w": "the current width (after the steps before)",
    "h": "the current height",
    "ar": "the current aspect ratio, width / height",
    "iw": "the original's width (upright)",
    "ih": "the original's height",
    "iar": "the original's aspect ratio",
    "fc": "the number of faces detected in the original",
    "pc": "the number of pages (frames) of the original",
    "tags": "the asset's tags (with in and nin)",
}
#: Names Cloudinary defines that this server does not evaluate, and why.
UNSUPPORTED_NAMES = {
    # pg_ chooses frames, but a condition is decided once for the whole image, never frame by frame.
    "cp": "a condition holds for the whole image, not page by page (pg_ chooses the pages)",
    "px": "a page's offset in its document (PSD layers) is not read",
    "py": "a page's offset in its document (PSD layers) is not read",
    "tar": "the trimmed aspect ratio is not computed",
    "ils": "the illustration score is not computed",
    "idn": "the initial density is not read",
    "du": "video is not supported",
    "idu": "video is not supported",
}
#: ``ctx:!key!`` reads the asset's context; structured metadata (``md:``) is not kept by this server.
LOOKUPS = {"ctx": "a context value of the asset (ctx:!key!); empty when it has none"}
#: Names whose value comes from the asset's record rather than its pixels.
ASSET_NAMES = frozenset({"tags"})
#: Results beyond this size are refused: no parameter takes them, and it keeps pow_ finite.
MAX_MAGNITUDE = 1e9


class Unevaluable(Exception):
    """An expression that has no value (undefined variable, division by zero, text in arithmetic...);
    the caller names the parameter (``InvalidArgument``)."""


@dataclass(frozen=True)
class Num:
    """A number. ``literal`` is the URL's own text when the number was written (``$s_0.5/w_$s`` means
    ``w_0.5``, a fraction); None when it was computed (``w_iw_div_3`` is 333 pixels)."""

    value: float
    literal: str | None = None

    def text(self, rounding: bool) -> str:
        """The value as a parameter's text: the literal as written; computed values whole (``rounding``,
        parameters that take integers or pixels) or as a decimal."""
        if self.literal is not None:
            return self.literal
        if rounding or self.value == int(self.value):
            return str(int(math.floor(self.value + 0.5)))
        return f"{self.value:.6f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Str:
    """Text, as a URL writes it (``raw``, percent-encoded), so it can be put back into a parameter."""

    raw: str

    @property
    def text(self) -> str:
        return unquote(self.raw)


Value = Num | Str | tuple[str, ...]  # the last: a list of tags


@dataclass(frozen=True)
class AssetFacts:
    """What the asset's record says that conditions may read (its tags and context) and g_custom crops
    on (its custom coordinates, as fractions of the original: left, top, width, height)."""

    tags: tuple[str, ...] = ()
    context: tuple[tuple[str, str], ...] = ()
    custom: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def token(self) -> str:
        """Text that changes whenever these facts do: part of the keys of results that read them."""
        facts = repr((sorted(self.tags), sorted(self.context)))
        # Without custom coordinates, the text it was before they existed (keys already cached stay valid).
        return f"{facts}|custom:{self.custom!r}" if self.custom else facts


@dataclass(frozen=True)
class Facts:
    """What a name or a variable stands for at one point of a render."""

    variables: Mapping[str, Value]
    image: Callable[[str], Value]  # a name (w, iw, fc...) -> its value
    asset: AssetFacts


def text_of(value: Value) -> str:
    """What ``$(name)`` in a text layer shows of a value: a number as written or computed, text decoded."""
    if isinstance(value, Num):
        return value.text(rounding=False)
    if isinstance(value, Str):
        return value.text
    return ":".join(value)


def describe(value: Value) -> str:
    if isinstance(value, Num):
        return value.text(rounding=False)
    if isinstance(value, Str):
        return f"!{value.raw}!"
    return "tags " + ":".join(value)


# ---- evaluation -------------------------------------------------------------------------------------
def evaluate(expression: Expression, facts: Facts) -> Value:
    """The value of ``expression`` when rendering. Raises Unevaluable."""
    match expression:
        case Number(value, text):
            return Num(value, text)
        case Text(raw):
            return Str(raw)
        case Variable(name):
            if name not in facts.variables:
                raise Unevaluable(f"{name} is not defined (set it earlier in the chain: {name}_<value>)")
            return facts.variables[name]
        case Name(name):
            check_name(name)
            return facts.image(name)
        case Lookup(source, key):
            check_lookup(source)
            found = dict(facts.asset.context).get(key.value, "")
            return Str(quote(found, safe=""))
        case Operation(left, operator, right):
            return arithmetic(operator, evaluate(left, facts), evaluate(right, facts))
        case Conversion(operand, to):
            return convert(evaluate(operand, facts), to)
    raise AssertionError(expression)


def holds(condition: Condition, facts: Facts) -> bool:
    """``and`` binds tighter than ``or``; every comparison is evaluated (an error is never skipped)."""
    results = [[compare(c, facts) for c in group] for group in condition.alternatives]
    return any(all(group) for group in results)


def compare(comparison: Comparison, facts: Facts) -> bool:
    left, right = evaluate(comparison.left, facts), evaluate(comparison.right, facts)
    operator = comparison.operator
    if operator in ("in", "nin"):
        found = set(_items(right, comparison))
        inside = all(item in found for item in _items(left, comparison))
        return inside if operator == "in" else not inside
    if isinstance(left, tuple) or isinstance(right, tuple):
        raise Unevaluable(f"tags can only be tested with _in_ or _nin_ ({comparison})")
    if isinstance(left, Str) and isinstance(right, Str):
        a, b = left.text, right.text
        if operator in ("eq", "ne"):
            return (a == b) == (operator == "eq")
        raise Unevaluable(f"{comparison}: texts are compared with _eq_ or _ne_ (convert with _to_f)")
    x, y = _number(left, comparison), _number(right, comparison)
    return {
        "eq": x == y, "ne": x != y, "lt": x < y, "gt": x > y, "lte": x <= y, "gte": x >= y,
    }[operator]  # fmt: skip


def _number(value: Value, comparison: Comparison) -> float:
    """A number for an ordering; text that reads as one (a context value) counts as that number."""
    if isinstance(value, Num):
        return value.value
    assert isinstance(value, Str)
    try:
        return _finite(float(value.text))
    except (ValueError, Unevaluable):
        raise Unevaluable(f"{comparison}: !{value.raw}! is not a number") from None


def _items(value: Value, comparison: Comparison) -> tuple[str, ...]:
    """The members _in_ and _nin_ look at: tags, or ``!a:b!`` (several, each must be there)."""
    if isinstance(value, tuple):
        return value
    if isinstance(value, Str):
        return tuple(value.text.split(":")) if value.text else ()
    raise Unevaluable(f"{comparison}: _in_ and _nin_ compare texts and tags, not numbers")


def arithmetic(operator: str, left: Value, right: Value) -> Num:
    if not isinstance(left, Num) or not isinstance(right, Num):
        shown = describe(left if not isinstance(left, Num) else right)
        raise Unevaluable(f"_{operator}_ needs numbers, not {shown} (convert text with _to_f)")
    x, y = left.value, right.value
    if operator in ("div", "mod") and y == 0:
        raise Unevaluable(f"division by zero (_{operator}_ {describe(right)})")
    try:
        result = {
            "add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y, "div": lambda: x / y,
            "mod": lambda: math.fmod(x, y), "pow": lambda: math.pow(x, y),
        }[operator]()  # fmt: skip
    except (OverflowError, ValueError):  # 10_pow_1000, or a negative number to a fractional power
        raise Unevaluable(f"{describe(left)}_{operator}_{describe(right)} has no finite value") from None
    return Num(_finite(result))


def convert(value: Value, to: str) -> Num:
    if isinstance(value, tuple):
        raise Unevaluable("tags cannot be converted to a number")
    if isinstance(value, Str):
        try:
            number = _finite(float(value.text))
        except (ValueError, Unevaluable):
            shown = f"!{value.raw}!" if value.raw else "an empty text (no such context value?)"
            raise Unevaluable(f"{shown} is not a number (_to_{to})") from None
    else:
        number = _finite(value.value)
    return Num(float(math.trunc(number)) if to == "i" else number)


def _finite(value: float) -> float:
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise Unevaluable(f"{value:g} is out of range (at most {MAX_MAGNITUDE:g} either way)")
    return value


def check_name(name: str) -> None:
    if name in NAMES:
        return
    if name in UNSUPPORTED_NAMES:
        raise Unevaluable(f"{name} is not supported by this server: {UNSUPPORTED_NAMES[name]}")
    known = ", ".join(NAMES)
    raise Unevaluable(f"unknown name {quoted(name)} (names are {known}, ctx:!key!, or a $variable)")


def check_lookup(source: str) -> None:
    if source == "md":
        raise Unevaluable("structured metadata (md:) is not supported by this server; use ctx:!key!")
    if source not in LOOKUPS:
        raise Unevaluable(f"unknown source {quoted(source)}: ctx:!key! reads the asset's context")


# ---- compile time -----------------------------------------------------------------------------------
#: What the compiler knows of a variable: its value when the URL alone decides it, else None (it is
#: assigned when rendering).
Known = Mapping[str, Value | None]


def fold(expression: Expression, known: Known, *, unbound: bool = False) -> Value | Expression:
    """``expression`` with every variable the URL decides replaced by its value: a Value when nothing is
    left to the image, else the expression that is (evaluated when rendering). Checks names; a variable
    not assigned before is Unevaluable unless ``unbound`` (a named transformation checked on its own)."""
    match expression:
        case Variable(name):
            if name not in known:
                if unbound:
                    return expression
                raise Unevaluable(f"{name} is not defined (set it earlier in the chain: {name}_<value>)")
            value = known[name]
            return expression if value is None else value
        case Name(name):
            check_name(name)
            return expression
        case Lookup(source, _):
            check_lookup(source)
            return expression
        case Operation(left, operator, right):
            a, b = fold(left, known, unbound=unbound), fold(right, known, unbound=unbound)
            if is_value(a) and is_value(b):
                return arithmetic(operator, a, b)  # type: ignore[arg-type]
            return Operation(as_expression(a), operator, as_expression(b))
        case Conversion(operand, to):
            inner = fold(operand, known, unbound=unbound)
            return convert(inner, to) if is_value(inner) else Conversion(as_expression(inner), to)  # type: ignore[arg-type]
    return evaluate(expression, Facts({}, _no_image, AssetFacts()))  # a Number or a Text


def fold_condition(condition: Condition, known: Known, *, unbound: bool = False) -> Condition:
    """The condition with what the URL decides put in (checked the same way); it is always evaluated
    when rendering (even ``if_5_gt_3``: cheap, and it keeps the rule simple)."""
    return Condition(
        tuple(
            tuple(
                Comparison(
                    as_expression(fold(c.left, known, unbound=unbound)),
                    c.operator,
                    as_expression(fold(c.right, known, unbound=unbound)),
                )
                for c in group
            )
            for group in condition.alternatives
        )
    )


def is_value(item: Value | Expression) -> bool:
    return isinstance(item, Num | Str | tuple)


def as_expression(item: Value | Expression) -> Expression:
    """A folded value back as an expression (``Num(2.5)`` -> ``Number(2.5, "2.5")``)."""
    if isinstance(item, Num):
        return Number(item.value, item.literal or item.text(rounding=False))
    if isinstance(item, Str):
        return Text(item.raw)
    assert not isinstance(item, tuple), "tags are never known at compile time"
    return item


def _no_image(name: str) -> Value:
    raise AssertionError(f"{name} is folded only with a literal")


def reads(expression: Expression) -> set[str]:
    """The names an expression reads (``ctx`` for a lookup, ``$name`` for variables)."""
    match expression:
        case Name(name):
            return {name}
        case Lookup(source, _):
            return {source}
        case Variable(name):
            return {name}
        case Operation(left, _, right):
            return reads(left) | reads(right)
        case Conversion(operand, _):
            return reads(operand)
    return set()


def condition_reads(condition: Condition) -> set[str]:
    return set().union(*(reads(c.left) | reads(c.right) for c in condition.comparisons()))
