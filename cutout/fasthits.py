"""An ASGI front that answers hot cache hits, and repeated API requests (``cutout.api.front``), before
Starlette's routing and middleware run.

Only a URL whose preparation is memoised and whose bytes are in this process's memory is answered
here (``Service.hot``, which never blocks); everything else, errors included, goes to the Starlette app
unchanged.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from cutout import cors, metrics
from cutout.api import Api, front
from cutout.hinting import ACCEPT_CH, client_hints
from cutout.memory import BoundedDict
from cutout.responses import Shape, answer
from cutout.service import Service

RawHeaders = list[tuple[bytes, bytes]]
#: The Client Hints w_auto and dpr_auto read (ASGI header names are lower case).
_HINTS = frozenset(name.lower().encode() for name in ACCEPT_CH.split(", "))
#: Every request header a hot answer depends on.
_READ = _HINTS | {b"accept", b"if-none-match", b"range", b"if-range"}


def encode(headers: dict[str, str], length: int | None) -> RawHeaders:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if length is not None:
        raw.append((b"content-length", str(length).encode()))
    return raw


class FastHits:
    def __init__(
        self, app: Starlette, *, skip: frozenset[str], repeats: tuple[front.Face, ...] = (front.NATIVE,)
    ) -> None:
        """``skip``: the app's own paths (health, metrics), never delivery URLs. ``repeats``: the POST
        routes whose repeated requests are answered here (``cutout.api.front``)."""
        self.app = app
        self.skip = skip
        # The headers of a 200 depend only on the derivative and how it was asked for, so they are
        # encoded once per ``Delivered.shape`` (etag, vary, versioned, warning, attachment).
        self._encoded: BoundedDict[Shape, RawHeaders] = BoundedDict(4096)
        self._repeats = front.RepeatFront(repeats)

    @staticmethod
    def _naming(send: Send, name: str) -> Send:
        """``send`` with this replica's name added to every response (CUTOUT_REPLICA_NAME), the app's and
        the fast path's alike, so that tests and operators see which replica answered."""
        header = (b"x-cutout-replica", name.encode("latin-1", "replace"))

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        return named

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service: Service | None = getattr(self.app.state, "service", None)
        if service is not None and service.settings.replica_name and scope["type"] == "http":
            send = self._naming(send, service.settings.replica_name)
        if scope["type"] == "http" and cors.is_api_path(scope["path"]):
            if await cors.answer_preflight(scope, send):
                return
            send = cors.allowing(send)
        hot = scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self._repeats.faces:
            api: Api | None = getattr(self.app.state, "api", None)
            if api is not None:  # a repeated API request, answered from memory (else the body replayed)
                replay = await self._repeats.answer(api, scope, receive, send)
                if replay is None:
                    return
                receive = replay
            await self.app(scope, receive, send)
            return
        if service is None or not hot or scope["path"] in self.skip:
            await self.app(scope, receive, send)
            return
        # The first of repeated headers wins, as in Starlette's ``headers.get`` that the app reads them
        # with: a request (Width: 300, Width: 900) must get the same answer whichever path serves it.
        first: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _READ and name not in first:
                first[name] = value
        accept, if_none_match = first.get(b"accept"), first.get(b"if-none-match")
        if_range = first.get(b"if-range")
        ranged = first.get(b"range") if scope["method"] == "GET" else None  # defined for GET only
        hinted = {name.decode("latin-1"): value.decode("latin-1") for name, value in first.items()
                  if name in _HINTS}  # fmt: skip
        raw_path = scope.get("raw_path") or scope["path"].encode()
        accept_text = accept.decode("latin-1") if accept else None
        path_text = raw_path.decode("latin-1")
        hints = client_hints(path_text, lambda name: hinted.get(name.lower()))
        delivered = service.hot(path_text, accept_text, hints)
        if delivered is None:
            await self.app(scope, receive, send)
            return
        metrics.cache_hits_total.inc()
        shape = delivered.shape
        raw = None if if_none_match or ranged else self._encoded.get(shape)
        if raw is None:
            inm = if_none_match.decode("latin-1") if if_none_match else ""
            status, extra, body = answer(delivered, service.settings.max_age, inm,
                                         ranged.decode("latin-1") if ranged else "",
                                         if_range.decode("latin-1") if if_range else "")  # fmt: skip
            # A 304 carries no Content-Length: it would have to be the 200's (RFC 9110, 8.6).
            raw = encode(extra, len(body) if status != 304 else None)
            if status == 200:
                self._encoded[shape] = raw
        else:
            metrics.answered_200.inc()
            status, body = 200, delivered.entry.data
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
        if service.store.uses_pending:  # after the answer: the client does not wait for this bookkeeping
            await anyio.to_thread.run_sync(service.store.record_uses)
