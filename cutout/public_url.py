"""Where an answer points its client: the one base URL under which every face (the Upload API, the HTTP
API, the vendor adapters, the console) writes the URLs it hands out.

``CUTOUT_PUBLIC_URL`` names delivery's host when a CDN or proxy stands in front; without it, and for URLs
that must reach this server itself (an upload URL, the console's own origin), the base is where the
request came to, as its client addressed it: the ``Host`` header, and ``https`` when the TLS proxy in
front says so (``X-Forwarded-Proto``, or ``Forwarded: proto=``; both nginx recipes send the first).
uvicorn runs with ``proxy_headers=False`` (every delivery hit would pay for it), so the scheme is read
here, on the few paths that build URLs. Both headers are taken from whoever sends them, as the ``Host``
header is: they only shape URLs in that caller's own answer, and the scheme of the origin
``foreign_page`` compares a browser's ``Origin`` with (another site's ``Origin`` matches neither).
"""

from __future__ import annotations

import re

from starlette.requests import HTTPConnection


class BadHost(ValueError):
    """The ``Host`` header is not ``host[:port]``: it would go into the answer's URLs as it is."""


_HOST = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?")
_FORWARDED_PROTO = re.compile(r"(?:^|[;,\s])proto=\"?(https?)\"?", re.IGNORECASE)
#: A WebSocket's answers point at HTTP URLs: its own scheme, as HTTP.
_AS_HTTP = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def scheme(conn: HTTPConnection) -> str:
    """``http`` or ``https``: the proxy's word when it gives one, else the connection's own."""
    forwarded = conn.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    if not forwarded:
        found = _FORWARDED_PROTO.search(conn.headers.get("forwarded", ""))
        forwarded = found[1].lower() if found else ""
    if forwarded in ("http", "https"):
        return forwarded
    return _AS_HTTP.get(conn.url.scheme, "http")


def request_base(conn: HTTPConnection) -> str:
    """``scheme://host[:port]`` where this request came to (``cutout serve`` sets no ASGI root path);
    ``BadHost`` for a ``Host`` header that is not a host name or address and port."""
    host = conn.headers.get("host")
    if host is None:  # HTTP/1.0 without Host: the address the server listens on
        name, port = conn.scope.get("server") or ("localhost", None)
        name = f"[{name}]" if ":" in str(name) else str(name)
        host = f"{name}:{port}" if port else name
    if not _HOST.fullmatch(host):
        raise BadHost(f"The Host header {host[:80]!r} is not a host name (and port)")
    return f"{scheme(conn)}://{host}"


def public_base(conn: HTTPConnection, public_url: str | None) -> str:
    """Where clients reach delivery, without a trailing slash: ``CUTOUT_PUBLIC_URL`` when set, else
    ``request_base``."""
    return public_url.rstrip("/") if public_url else request_base(conn)


#: What ``Sec-Fetch-Site`` says of a request made by another site's page (``same-site`` is a sibling
#: host or another port of this one: a different origin all the same).
_OTHER_SITES = frozenset({"cross-site", "same-site"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def _normal(origin: str) -> str:
    """``origin`` in lower case without its scheme's default port (browsers leave it out, a ``Host``
    header may carry it)."""
    origin = origin.strip().lower()
    scheme_name = origin.partition("://")[0]
    port = _DEFAULT_PORTS.get(scheme_name)
    return origin.removesuffix(port) if port else origin


def foreign_page(conn: HTTPConnection) -> str | None:
    """Why ``conn`` comes from a page of another origin than this server's, or None.

    A browser attaches the HTTP Basic credentials it holds for this server (the console's sign-in) to
    any request to it, a form or a ``fetch`` posted by any site included; what tells those apart is what
    browsers add and pages cannot forge: ``Sec-Fetch-Site`` (every current browser) and ``Origin`` (on
    every cross-origin POST). An SDK, curl or a server sends neither, and neither does a page's own
    same-origin GET (``Sec-Fetch-Site: same-origin``, no ``Origin``), so both pass. An ``Origin`` of
    ``null`` (a sandboxed frame, a ``data:`` page) is foreign too."""
    site = conn.headers.get("sec-fetch-site", "").strip().lower()
    if site in _OTHER_SITES:
        return f"Sec-Fetch-Site says it is {site}"
    origin = conn.headers.get("origin")
    if origin is None:
        return None
    try:
        own = request_base(conn)
    except BadHost:
        own = ""
    if _normal(origin) != _normal(own):
        return f"its Origin is {origin[:100]}, not {own or 'this server'}"
    return None
