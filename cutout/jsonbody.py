"""The one reader of JSON a client sends (request bodies, WebSocket messages), for every face.

``json.loads`` raises RecursionError, not ValueError, on deep nesting (``[[[[...]]]]`` 100,000 deep
takes a 200 kB body), which each face's ``except ValueError`` let through as a 500. Nesting is also
bounded well below Python's recursion limit, so that nothing that walks the data afterwards (a
``json.dumps`` of an echoed field, a recursive check) can hit it either: no request of any API here
nests deeper than a few levels. Each face turns ``JsonBodyError`` into its own 400 shape.
"""

from __future__ import annotations

import json
from typing import Any

#: Deeper JSON is refused. Runware's tasks, the deepest any face takes, nest three or four levels.
MAX_DEPTH = 32


class JsonBodyError(ValueError):
    """Not JSON, or nested deeper than MAX_DEPTH; the message says which (and where, for a syntax
    error). A ValueError, so that existing ``except ValueError`` clauses keep catching it."""


class RepeatedKey(JsonBodyError):
    """JSON, but an object gives one key twice (``_unique``)."""


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``raw`` parsed, or JsonBodyError.

    >>> loads('{"a": [1, 2]}')
    {'a': [1, 2]}
    """
    try:
        data = json.loads(raw, object_pairs_hook=_unique, parse_int=_integer)
    except RecursionError:
        raise JsonBodyError(f"it nests deeper than {max_depth} levels") from None
    except JsonBodyError:
        raise
    except ValueError as exc:  # UnicodeDecodeError included
        raise JsonBodyError(str(exc)[:200]) from None
    if _deeper_than(data, max_depth):
        raise JsonBodyError(f"it nests deeper than {max_depth} levels")
    return data


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: ``json.loads`` keeps the last of a repeated key, so
    ``{"channels": "alpha", "channels": "rgba"}`` would pass one value over in silence, where a form or a
    query with a parameter twice is refused (RFC 8259: names SHOULD be unique)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise RepeatedKey(f"the key {key[:60]!r} is given more than once in an object")
        data[key] = value
    return data


def _integer(digits: str) -> int:
    """``int`` of a JSON integer, refused past Python's 4300 digits with words for the client (``int``'s
    own message tells the reader to call ``sys.set_int_max_str_digits``)."""
    if len(digits.lstrip("-")) > 4300:
        raise JsonBodyError(f"a number of {len(digits)} digits is too long")
    return int(digits)


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep (a loop, not recursion, on purpose)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
