"""An ASGI front that answers hot cache hits before Starlette's routing and middleware run.

Only a URL whose preparation is memoised and whose bytes are in this process's memory is answered
here; everything else, errors included, goes to the Starlette app unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from cutout import metrics
from cutout.memory import BoundedDict
from cutout.responses import answer
from cutout.service import Origin

_OWN_ROUTES = ("/healthz", "/readyz", "/metrics")
RawHeaders = list[tuple[bytes, bytes]]


def encode(headers: dict[str, str], length: int | None) -> RawHeaders:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if length is not None:
        raw.append((b"content-length", str(length).encode()))
    return raw


class FastHits:
    def __init__(self, app: Starlette) -> None:
        self.app = app
        # The headers of a 200 depend only on the derivative and how it was asked for, so they are
        # encoded once: (etag, vary, versioned) -> raw headers.
        self._encoded: BoundedDict[tuple[str, bool, bool], RawHeaders] = BoundedDict(4096)

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin: Origin | None = getattr(self.app.state, "origin", None)
        hot = scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
        hot = hot and scope["path"] not in _OWN_ROUTES
        if origin is None or not hot:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        accept = headers.get(b"accept")
        raw_path = scope.get("raw_path") or scope["path"].encode()
        accept_text = accept.decode("latin-1") if accept else None
        delivered = origin.memory_hit(raw_path.decode("latin-1"), accept_text)
        if delivered is None:
            await self.app(scope, receive, send)
            return
        metrics.cache_hits_total.inc()
        if_none_match = headers.get(b"if-none-match", b"").decode("latin-1")
        shape = (delivered.entry.etag, delivered.vary, delivered.versioned)
        raw = None if if_none_match else self._encoded.get(shape)
        if raw is None:
            status, extra, body = answer(delivered, origin.settings.max_age, if_none_match)
            # A 304 carries no Content-Length: it would have to be the 200's (RFC 9110, 8.6).
            raw = encode(extra, len(body) if status != 304 else None)
            if status == 200:
                self._encoded[shape] = raw
        else:
            metrics.answered_200.inc()
            status, body = 200, delivered.entry.data
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
