"""Live validation for the builder: a transformation string is checked by the server's own parser,
compiler and resolver, exactly as its delivery URL would be, and answers with the same status and
message (and the column the message is about, for the caret under the field).

Nothing is rendered here: the page asks the delivery URL itself for the image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cutout.console import snippets
from cutout.service import Service
from grammar import parse_path, parse_transformation, plain_transformation
from grammar.errors import BadRequest, OriginError
from grammar.parse import quoted as grammar_quoted
from transform.hints import compile_unhinted

_SYNTAX_COLUMN = re.compile(r"at column (\d+) of ")
_PARAMETER = re.compile(r"parameter - ([a-z]+)(?:_([^:\s]*))?")
#: A component the message quotes last (``grammar.parse.quoted``: ``\'`` and ``\\`` escaped inside).
_COMPONENT = re.compile(r"in ('(?:[^'\\]|\\.)*')$")


@dataclass(frozen=True)
class Target:
    """What the transformation is for: the image and where its URL points."""

    base_url: str  # scheme://host[:port] the page was served from
    cloud: str
    public_id: str
    version: int | None


#: What a browser percent-encodes in a URL's path (WHATWG's path percent-encode set, less ``#`` and ``?``,
#: which end the path instead), besides every character outside printable ASCII.
_SENT_ENCODED = frozenset(' "<>`{}')


def as_sent(transformation: str) -> str:
    """The transformation as its URL reaches the server: typed in the builder (or the address bar) as
    ``l_text:Arial_40:héllo wörld``, the browser sends ``h%C3%A9llo%20w%C3%B6rld``, which the delivery URL
    takes; checked as typed, the space and the ``é`` were a 400 that URL never answers."""
    return "".join(quote(ch, safe="") if ch in _SENT_ENCODED or not " " < ch < "\x7f" else ch
                   for ch in transformation)


def delivery_path(target: Target, transformation: str) -> str:
    parts = [f"/{target.cloud}/image/upload"]
    if transformation:
        parts.append(transformation)
    version = target.version or snippets.default_version(target.public_id)
    if version:
        parts.append(f"v{version}")
    parts.append(snippets.escape_public_id(target.public_id))
    return "/".join(parts)


def column_of(error: OriginError, transformation: str) -> int | None:
    """The 1-based column of ``transformation`` the error is about, when it names one."""
    found = _SYNTAX_COLUMN.search(error.public)
    if found:
        return int(found.group(1))
    try:
        components = parse_transformation(transformation)
    except OriginError:
        return None
    key = getattr(error, "key", None)
    value = getattr(error, "value", None)
    named = _PARAMETER.search(error.public)
    if key is None and named:
        key, value = named.group(1), named.group(2)
    if key is not None:
        params = [p for c in components for p in c.params if p.key == key]
        exact = [p for p in params if value is None or p.value == value]
        if exact or params:
            return (exact or params)[0].column
    quoted = _COMPONENT.search(error.public)
    if quoted:
        start = 0
        for component in components:  # the component's own text, where it starts in the whole string
            start = transformation.find(component.raw, start)
            if grammar_quoted(component.raw) == quoted.group(1) and start >= 0:
                return start + 1
            start += len(component.raw)
    return None


def check(service: Service, target: Target, transformation: str, accept: str | None) -> dict[str, Any]:
    """Blocking (the resolver reads the originals store): run it in a thread."""
    transformation = as_sent(transformation)
    # Read as delivery reads it (``%24w_300`` is ``$w_300``): by delivery's own function, so the two
    # cannot drift apart. Messages and columns are about this text (the page draws its caret under it).
    read = plain_transformation(transformation)
    path = delivery_path(target, transformation)
    answer: dict[str, Any] = {"transformation": transformation, "read": read, "path": path,
                              "url": target.base_url + path}
    try:
        # The parser and compiler first: they name the column even where the path would read the text
        # as folders (then the delivery URL would say the original is missing, which helps nobody).
        # w_auto and dpr_auto as a request without Client Hints gets them (their fallbacks).
        plan, _ = compile_unhinted(parse_transformation(read), named=service.settings.named)
        if parse_path(path).raw_transformation != transformation:
            raise BadRequest(f"{grammar_quoted(transformation)} is not read as a transformation in a "
                             "delivery URL: its first component has no known parameter key, so it would be a "
                             "folder")
        # The original, its layers, strict mode: resolved as the URL would be (nothing is rendered).
        service.resolver.resolve(path, accept)
    except OriginError as exc:
        answer.update(ok=False, status=exc.status, message=exc.public,
                      column=column_of(exc, read))
        return answer
    answer.update(
        ok=True, status=200, message="", column=None, canonical=plan.canonical,
        cutout=plan.needs_segmentation,
        python=snippets.python(target.base_url, target.cloud, transformation, target.public_id,
                               target.version),
        javascript=snippets.javascript(target.base_url, target.cloud, transformation, target.public_id,
                                       target.version),
    )
    return answer
