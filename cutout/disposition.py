"""``Content-Disposition`` of an attachment (fl_attachment), safe for any file name.

A name that is plain ASCII goes in ``filename="..."`` with ``"`` and ``\\`` escaped (RFC 9110's
quoted-string). Any other name also gets RFC 6266's ``filename*=UTF-8''<percent-encoded>``, which every
current browser prefers, and ``filename`` then carries an ASCII stand-in for older clients: accents
dropped, other characters, and ``%`` (some clients percent-decode ``filename``), as ``_``. Control
characters never reach the header: URLs cannot ask for them (transform/ops/flags.py refuses them, public
ids cannot hold them), and they are replaced here too, so a header can never be split.

>>> content_disposition("road", "jpg")
'attachment; filename="road.jpg"'
>>> content_disposition("café", "png")
'attachment; filename="cafe.png"; filename*=UTF-8\\'\\'caf%C3%A9.png'
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from grammar.path import is_control

#: RFC 8187's attr-char, beside letters and digits: what ``filename*`` may hold unencoded.
_ATTR_SAFE = "!#$&+-.^_`|~"


def content_disposition(stem: str, extension: str) -> str:
    name = "".join("_" if is_control(c) else c for c in f"{stem}.{extension}")
    fallback = _ascii(name)
    header = f'attachment; filename="{_quoted(fallback)}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe=_ATTR_SAFE)}"
    return header


def _ascii(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    kept = (c for c in decomposed if not unicodedata.combining(c))
    return "".join(c if " " <= c <= "~" and c != "%" else "_" for c in kept)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
