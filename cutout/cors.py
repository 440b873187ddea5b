"""CORS for the background-removal APIs: cutout's own (``/v1/``) and the vendors' faces (remove.bg,
rembg, API4AI, Runware, Azure, Perfect Corp). Their clients include pages (rembg's own server allows
every origin, method and header), and a key in a header is no cookie: no credentials are involved, so
any origin may call and read the answers, errors included. Delivery answers carry their own CORS
headers (``cutout.responses.CORS``); the Upload API's are in ``cutout.upload.routes`` (its Admin API,
which takes the secret itself, has none). Applied by ``cutout.fasthits`` before routing, so that the
answers the API front replays from memory carry them too.
"""

from __future__ import annotations

import re

from starlette.types import Message, Scope, Send

#: Exact paths and path prefixes of the API faces (``/v1`` is Runware's; ``/v1_1/`` is not an API face).
_EXACT = frozenset({"/v1", "/api/remove"})
_PREFIXES = ("/v1/", "/v1.0/", "/computervision/", "/s2s/")
_ALLOW = [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", b"*")]
#: What an Access-Control-Request-Headers value may be: header names (RFC 9110 tokens) and commas.
_HEADER_NAMES = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*")
#: The longest Access-Control-Request-Headers value a preflight takes.
MAX_ASKED_HEADERS = 1000


def header_names(asked: str) -> bool:
    """Whether a preflight's Access-Control-Request-Headers value is a list of header names that may be
    allowed as asked (every preflight here: the API faces', the Upload API's, delivery's)."""
    return len(asked) <= MAX_ASKED_HEADERS and _HEADER_NAMES.fullmatch(asked) is not None


def is_api_path(path: str) -> bool:
    return path in _EXACT or path.startswith(_PREFIXES)


async def answer_preflight(scope: Scope, send: Send) -> bool:
    """Answer a CORS preflight (an OPTIONS with Access-Control-Request-Method) and say so; anything
    else is left to the app."""
    if scope["method"] != "OPTIONS":
        return False
    asked: bytes | None = None
    method = False
    for name, value in scope["headers"]:
        if name == b"access-control-request-method":
            method = True
        elif name == b"access-control-request-headers":
            asked = value.strip()
    if not method:
        return False
    headers = [*_ALLOW, (b"access-control-allow-methods", b"GET, POST, PUT, DELETE, OPTIONS"),
               (b"access-control-max-age", b"86400"), (b"content-length", b"0")]  # fmt: skip
    if asked and header_names(asked.decode("latin-1")):  # else none allowed
        headers.append((b"access-control-allow-headers", asked))
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
    return True


def allowing(send: Send) -> Send:
    """``send`` with Access-Control-Allow-Origin added to the response (unless it has one)."""

    async def allowed(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"access-control-allow-origin" for name, _ in headers):
                message = {**message, "headers": [*headers, *_ALLOW]}
        await send(message)

    return allowed
