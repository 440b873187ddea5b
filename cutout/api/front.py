"""A repeated ``POST /v1/remove-background`` answered before Starlette's routing and middleware, as
``cutout.fasthits`` answers hot delivery hits.

A request is answered here only when it is fully known to be a repeat: its key passes the route's own
gate (``Gate.known``, then ``Gate.take``), it is sync with no webhook, its body (declared, at most
``HOT_BYTES``) reads as the route reads it, and the job (the image's sha256 and the options) and the
result with its description are in this process's memory (``Remover.repeat``). The answer is the route's
own (``result_response``), counted under the route's label. Everything else (every first request, every
error, a 401 or a 429) goes to the Starlette route with the body replayed: one way to claim, queue,
generate and cache, one way to fail.

Why: on a 47 KB photo under uvicorn (bench/api_bench.py), a raw ASGI answer to the POST reaches about
0.85x of a delivery hit, Starlette's routing, request and response objects alone about 0.4x.
"""

from __future__ import annotations

from collections import deque

import anyio.to_thread
from cachetools import LRUCache
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from cutout.api import auth, intake
from cutout.api.options import SOURCES, flag
from cutout.api.remover import HOT_BYTES, MEMO_ENTRIES, Job, Result
from cutout.api.routes import Api, _counter, prefers_async, result_response
from cutout.memory import BoundedDict

#: The one route answered here, and its label in ``cutout_api_requests_total``.
PATH = "/v1/remove-background"
ROUTE = "POST /v1/remove-background"
#: The headers the route reads. One given twice is left to the route (which reads the first).
_READ = frozenset((b"content-length", b"content-type", b"authorization", b"x-api-key", b"prefer"))

#: The bodies of the requests answered here that are kept to recognise them again, in bytes.
SEEN_BYTES = 16 << 20

RawHeaders = list[tuple[bytes, bytes]]
#: A request's content type, query string, body length and the body's first and last 64 bytes.
Shape = tuple[bytes, bytes, int, bytes, bytes]


def _body_size(seen: tuple[bytes, Job]) -> int:
    return len(seen[0]) + 1


class RepeatFront:
    def __init__(self) -> None:
        # Both are pure functions of their keys: a query string's fields (None: a field given twice,
        # the route's 400), and a binary answer's headers by the result's and the mask's etags (the
        # description is memoised by the same pair).
        self._queries: BoundedDict[bytes, tuple[tuple[str, str], ...] | None] = BoundedDict(MEMO_ENTRIES)
        self._binary: BoundedDict[tuple[str, str], RawHeaders] = BoundedDict(MEMO_ENTRIES)
        # The requests answered here, by their content type, query and a sample of their body: one
        # whose body is byte for byte the same is the same request (the route's reading of a request
        # depends on nothing else), so its job is known without hashing the body again. The bytes are
        # compared in full, so this is exact: a crafted body that matches the sample is merely not
        # found here, and takes the sha256 path. The sha256 of the body costs more than the rest of
        # the answer (27 us for a 47 KB photo, the comparison 1 us). Only touched on the event loop.
        self._seen: LRUCache[Shape, tuple[bytes, Job]] = LRUCache(SEEN_BYTES, getsizeof=_body_size)

    async def answer(self, api: Api, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answer ``scope`` (a POST to ``PATH``) when it repeats a request whose result is in memory,
        and return None; otherwise answer nothing and return the ``receive`` to hand to the app (it
        gives the body again if some was read here)."""
        headers = _read(scope)
        limit = api.settings.max_upload_bytes
        length = headers.get(b"content-length", b"") if headers is not None else b""
        if headers is None or not length.isdigit() or not 0 < int(length) <= min(HOT_BYTES, limit):
            return receive  # unknown or large: the route streams it (and refuses it past the limit)
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        x_api_key = headers[b"x-api-key"].decode("latin-1") if b"x-api-key" in headers else None
        key = api.gate.known(auth.presented_in(authorization, x_api_key))
        if key is None or prefers_async(headers.get(b"prefer", b"").decode("latin-1")):
            return receive  # the 401 is the route's; so is every task (nothing read yet)
        recorded: list[Message] = []
        try:
            answered = await self._repeat(api, key, scope, headers, receive, recorded, int(length))
        except Exception:  # noqa: BLE001 - whatever it is, the route reads the request again and answers it
            answered = None
        if answered is None:
            return _replaying(recorded, receive)
        job, result, request = answered
        await self._send(api, job, result, request, scope, send)
        return None

    async def _repeat(
        self,
        api: Api,
        key: str,
        scope: Scope,
        headers: dict[bytes, bytes],
        receive: Receive,
        recorded: list[Message],
        length: int,
    ) -> tuple[Job, Result, Request] | None:
        chunks = []
        more = True
        while more:
            message = await receive()
            recorded.append(message)
            if message["type"] != "http.request":
                return None  # gone: the route sees the disconnect
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(body) != length:
            return None
        request = Request(scope, _replaying(recorded, receive))
        shape = (headers.get(b"content-type", b""), scope["query_string"], length, body[:64], body[-64:])
        seen = self._seen.get(shape)
        if seen is not None and seen[0] == body:
            result = api.remover.ready(seen[1])
            if result is not None:
                api.gate.take(key)
                return seen[1], result, request
        if intake.is_raw(intake.media_type(headers.get(b"content-type", b"").decode("latin-1"))):
            # What intake.read makes of a raw body, without its request objects: the query's fields.
            fields = self._fields(scope["query_string"])
            if fields is None or any(name in fields for name in SOURCES):
                return None  # the route's 400: a field twice, or a second image
            received = intake.Intake(fields, "body", body)
        else:  # multipart, form or JSON: read exactly as the route reads it
            received = await intake.read(request, api.settings.max_upload_bytes)
            fields = received.fields
        if flag("async", fields.get("async", "false")) or "webhook_url" in fields:
            return None
        if fields.get("encoding") == "url" and api.settings.strict and not api.settings.api_secret:
            return None  # the route's 400
        repeat = api.remover.repeat(received)
        if repeat is None:
            return None
        api.gate.take(key)  # only now: a request handed to the route is counted there (a 429 is its)
        self._seen[shape] = (body, repeat[0])
        return repeat[0], repeat[1], request

    def _fields(self, query: bytes) -> dict[str, str] | None:
        items = self._queries.get(query)
        if items is None and query not in self._queries:
            parsed = QueryParams(query).multi_items()  # as request.query_params
            names = [name for name, _ in parsed]
            items = tuple(parsed) if len(set(names)) == len(names) else None
            self._queries[query] = items
        return dict(items) if items is not None else None

    async def _send(
        self, api: Api, job: Job, result: Result, request: Request, scope: Scope, send: Send
    ) -> None:
        if job.options.output == "binary":
            shape = (result.entry.etag, result.mask_etag)
            raw = self._binary.get(shape)
            if raw is None:
                raw = self._binary[shape] = result_response(result, job).raw_headers
            await send({"type": "http.response.start", "status": 200, "headers": raw})
            await send({"type": "http.response.body", "body": result.entry.data})
        else:
            await result_response(result, job, request, api.settings)(scope, request.receive, send)
        _counter(ROUTE, 200).inc()
        store = api.remover.service.store
        if store.uses_pending:  # after the answer, as the route's background task does
            await anyio.to_thread.run_sync(store.record_uses)


def _read(scope: Scope) -> dict[bytes, bytes] | None:
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _READ:
            if name in found:
                return None
            found[name] = value
    return found


def _replaying(recorded: list[Message], receive: Receive) -> Receive:
    """``receive`` with the messages already read from it given again first."""
    pending = deque(recorded)

    async def replay() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replay

