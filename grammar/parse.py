"""Transformation text -> AST. The one place where lark errors become ``TransformationSyntaxError``."""

from __future__ import annotations

import functools
import re
from typing import Any, cast

# The parser is lark's stand-alone module generated from transformation.lark (grammar/generate.py says
# why): it brings its own copies of lark's classes, so Transformer, Token and the errors come from it.
from grammar._lalr import (
    Lark,
    Lark_StandAlone,
    Token,
    Transformer,
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from grammar.ast import (
    Comparison,
    Component,
    Condition,
    Conversion,
    Expression,
    Lookup,
    Name,
    Number,
    Operation,
    Param,
    Text,
    Variable,
)
from grammar.errors import TransformationSyntaxError

_SHOWN_CHARS = 120


class _ToAst(Transformer[Token, tuple[Component, ...]]):
    def start(self, components: list[Component]) -> tuple[Component, ...]:
        return tuple(components)

    def component(self, params: list[Param]) -> Component:
        return Component(tuple(params), ",".join(f"{p.key}_{p.value}" for p in params))

    def param(self, children: list[Token | str]) -> Param:
        key, value = children
        # Duck-typed: the methods also serve lark's own Token (tests compare with a fresh lark build).
        column = getattr(key, "column", None)
        assert isinstance(column, int)
        return Param(str(key), str(value), column)

    def value(self, tokens: list[Token]) -> str:
        return "".join(tokens)

    # ---- expressions (the `condition` and `expression` start rules) ----
    def condition(self, groups: list[tuple[Comparison, ...]]) -> Condition:
        return Condition(tuple(groups))

    def conjunction(self, comparisons: list[Comparison]) -> tuple[Comparison, ...]:
        return tuple(comparisons)

    def comparison(self, children: list[Any]) -> Comparison:
        left, operator, right = children
        return Comparison(left, _operator(operator), right)

    def expression(self, children: list[Expression]) -> Expression:
        return children[0]

    def sum(self, children: list[Any]) -> Operation:
        left, operator, right = children
        return Operation(left, _operator(operator), right)

    product = power = sum

    def conversion(self, children: list[Any]) -> Conversion:
        operand, to = children
        return Conversion(operand, str(to)[-1])

    def number(self, children: list[Token]) -> Number:
        return Number(float(children[0]), str(children[0]))

    def ratio(self, children: list[Token]) -> Number:
        left, right = (float(t) for t in children)
        text = f"{children[0]}:{children[1]}"
        if right == 0:
            raise TransformationSyntaxError(f"ratio {text} divides by zero")
        return Number(left / right, text)

    def variable(self, children: list[Token]) -> Variable:
        return Variable(str(children[0]))

    def name(self, children: list[Token]) -> Name:
        return Name(str(children[0]))

    def text(self, children: list[Token]) -> Text:
        return Text(str(children[0])[1:-1])

    def lookup(self, children: list[Token]) -> Lookup:
        source, key = children
        return Lookup(str(source), Text(str(key)[1:-1]))


@functools.cache
def parser() -> Lark:
    """Built once per process from the generated tables: about a millisecond, not a quarter second."""
    built: Lark = Lark_StandAlone(transformer=_ToAst())  # type: ignore[no-untyped-call]
    return built


# Traffic repeats a few transformation strings across many images, and the result is immutable.
@functools.lru_cache(maxsize=2048)
def parse_transformation(text: str) -> tuple[Component, ...]:
    """Parse chained components: ``"c_scale,w_400/e_grayscale"`` -> two ``Component``s.

    The empty string is the empty chain. Raises ``TransformationSyntaxError`` naming the column.
    """
    if not text:
        return ()
    try:
        # With a tree-less transformer, parse() returns what _ToAst.start returns.
        result = cast(tuple[Component, ...], parser().parse(text, start="start"))
    except UnexpectedInput as exc:
        raise syntax_error(text, exc) from None
    for component in result:
        for param in component.params:
            _check_pieces(text, param)
    return result


@functools.lru_cache(maxsize=1024)
def parse_condition(text: str) -> Condition:
    """The value of ``if_``: ``"w_gt_1000_and_ar_lt_1.0"`` -> a Condition. Raises
    ``TransformationSyntaxError`` whose message says where and what was expected (no URL context: the
    caller names the parameter)."""
    return cast(Condition, _parse_value(text, "condition"))


@functools.lru_cache(maxsize=1024)
def parse_expression(text: str) -> Expression:
    """A ``$name_`` value or a number written as arithmetic: ``"iw_div_2"`` -> an Operation."""
    return cast(Expression, _parse_value(text, "expression"))


#: Operators one value may hold: far more than any real use, and every walk of the tree (folding,
#: evaluating, writing it back) recurses once per operator.
MAX_OPERATORS = 64
_OPERATOR = re.compile(r"_(?:add|sub|mul|div|mod|pow|eq|ne|lt|gt|lte|gte|in|nin|and|or)_|_to_[fi]")


def _parse_value(text: str, start: str) -> object:
    if len(_OPERATOR.findall(text)) > MAX_OPERATORS:
        raise TransformationSyntaxError(f"more than {MAX_OPERATORS} operators in one value")
    try:
        return parser().parse(text, start=start)
    except UnexpectedInput as exc:
        column, expected = _position(text, exc)
        found = quoted(text[column - 1 : column + 5]) if column <= len(text) else "end of text"
        raise TransformationSyntaxError(
            f"unexpected {found} at character {column}; expected {_expected_in_expression(expected, start)}"
        ) from None
    except VisitError as exc:  # the transformer's own refusals (a ratio of zero)
        if isinstance(exc.orig_exc, TransformationSyntaxError):
            raise exc.orig_exc from None
        raise


_OPERAND = "a number, a ratio (3:4), a $variable, a name (w, iw, ...), !text! or ctx:!key!"


def _expected_in_expression(expected: set[str], start: str) -> str:
    if expected & {"NUMBER", "KEY", "VARIABLE"}:
        return _OPERAND
    if expected == {"STRING"}:
        return "!key! (ctx:!key!)"
    wanted = []
    if "COMPARE" in expected and start == "condition":
        wanted.append("a comparison (_eq_, _ne_, _lt_, _gt_, _lte_, _gte_, _in_, _nin_)")
    if expected & {"ADDITIVE", "MULTIPLICATIVE", "POW"}:
        wanted.append("an operator (_add_, _sub_, _mul_, _div_, _mod_, _pow_, _to_f, _to_i)")
    if "_AND" in expected and start == "condition":
        wanted.append("_and_ or _or_")
    if "$END" in expected or start == "expression":
        wanted.append("the end")
    return ", ".join(wanted) or ", ".join(sorted(expected))


def _operator(token: Token) -> str:
    """``_mul_`` -> ``mul``."""
    return str(token).strip("_")


#: An empty piece: a separator followed by another, or ending the value (NUMBER holds a '.' only between
#: digits, and WORD none of these characters, so only separators match).
_EMPTY_PIECE = re.compile(r"[:;._](?=[:;._]|$)")


def _check_pieces(text: str, param: Param) -> None:
    """The grammar lets a piece be empty after a separator, for the effects' positional arguments
    (``e_trim::white``, as url-gen writes a trim without its tolerance); any other parameter's value is
    refused as before."""
    if param.key == "e":
        return
    found = _EMPTY_PIECE.search(param.value)
    if found is not None:
        column = param.column + len(param.key) + 1 + found.start() + 1  # just after the separator
        after = show(text[param.column - 1 : column - 1])
        public = f"Invalid transformation syntax at column {column} of {show(text)}"
        raise TransformationSyntaxError(f"{public}: missing value after {after}")


def syntax_error(text: str, exc: UnexpectedInput) -> TransformationSyntaxError:
    column, expected = _position(text, exc)
    reason = _reason(text, column, expected)
    public = f"Invalid transformation syntax at column {column} of {show(text)}: {reason}"
    return TransformationSyntaxError(public, detail=f"{public} ({type(exc).__name__})")


def show(text: str, quote: str = '"') -> str:
    """Quote client text for a message, bounded in length: as the client wrote it (``"héllo"``, the
    body is UTF-8), but for what cannot be seen or would act on a terminal, a log line or a header (control
    characters, line and paragraph separators, bidi overrides, lone surrogates), which are backslash
    escapes (``"a\\nb"``). ``X-Cld-Error`` takes the message through ``cutout.headers.header_safe``,
    which percent-encodes what is not ASCII.

    >>> print(show("héllo wörld"), show("a\\nb\\x1b[31m\\u202e"), show("it's", "'"))
    "héllo wörld" "a\\nb\\x1b[31m\\u202e" 'it\\'s'
    """
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    return quote + _escape(text).replace(quote, "\\" + quote) + quote


def quoted(text: str) -> str:
    """``show`` in single quotes, for the messages that write a value so (``unexpected 'é!' at ...``)."""
    return show(text, "'")


def _escape(text: str) -> str:
    """Backslash escapes for the backslash itself and for what is not printable (``str.isprintable``:
    control and format characters, separators other than the space, unassigned code points)."""
    return "".join(char if char.isprintable() and char != "\\" else _escaped(char) for char in text)


def _escaped(char: str) -> str:
    # unicode_escape writes \n, \t, \\, \xNN, \uNNNN and \UNNNNNNNN; a lone surrogate (what
    # surrogateescape leaves for an undecodable byte) is written as its code point.
    return char.encode("unicode_escape", "backslashreplace").decode("ascii")


def _position(text: str, exc: UnexpectedInput) -> tuple[int, set[str]]:
    if isinstance(exc, UnexpectedToken):
        expected = set(exc.expected)
        if exc.token.type == "$END":
            return len(text) + 1, expected
        return exc.column, expected
    if isinstance(exc, UnexpectedCharacters):
        return exc.column, set(exc.allowed or ())
    return len(text) + 1, set()


def _reason(text: str, column: int, expected: set[str]) -> str:
    at = text[column - 1] if column <= len(text) else ""
    before = text[: column - 1]
    prev = before[-1:] or "/"
    if "KEY" in expected:
        if at in (",", "/", ""):
            return "empty parameter" if "," in (at, prev) else "empty component"
        return f"expected a parameter key (lower-case letters or a $variable), found {_char(at)}"
    if "WORD" in expected and "SEP" not in expected:
        if at in (",", "/", ""):
            param_text = before[max(before.rfind(","), before.rfind("/")) + 1 :]
            return f"missing value after {show(param_text)}"
        return f"unexpected {_char(at)}"
    if "WORD" not in expected and "SEP" not in expected:
        key = before[max(before.rfind(","), before.rfind("/")) + 1 :]
        return f"expected '_' after parameter key {show(key)}, found {_char(at) if at else 'end of text'}"
    return f"unexpected {_char(at)}"


def _char(char: str) -> str:
    if not char:
        return "end of text"
    return "character " + _escape(char).join("''")
