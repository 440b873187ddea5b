"""Text from clients (public ids, option values) in response headers."""

from __future__ import annotations

from urllib.parse import quote

#: Printable ASCII but '%': what a header value may hold as it is.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if c != 0x25)


def header_safe(text: str) -> str:
    """``text`` as a header value, which must be ASCII without control characters (public ids may hold
    anything): UTF-8 percent-encoding of '%' itself, control and non-ASCII characters, which
    ``decodeURIComponent`` and ``urllib.parse.unquote`` undo exactly.

    >>> header_safe("Résumé 100%\\n")
    'R%C3%A9sum%C3%A9 100%25%0A'
    """
    return quote(text, safe=_HEADER_SAFE, errors="replace")
