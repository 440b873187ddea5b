"""A repeated ``POST /v1/remove-background`` answered before Starlette's routing and middleware, as
``cutout.fasthits`` answers hot delivery hits.

A request is answered here only when it is fully known to be a repeat: its key passes the route's own
gate, it is sync with no webhook, its body (declared, and at most ``HOT_BYTES``) reads as the route reads
it (``intake.read``), and the job (the image's sha256 and the options) and the result with its
description are in this process's memory (``Remover.repeat``). The answer is the route's own
(``result_response``), counted under the route's label. Everything else (every first request, every
error, a 401 or a 429) goes to the Starlette route with the body replayed: one way to claim, queue,
generate and cache, one way to fail.

Measured on a 47 KB photo under uvicorn (bench/api_bench.py): Starlette's routing and middleware cost
more than the whole answer; a raw ASGI answer of the same POST reaches about 0.85x of a delivery hit.
"""

from __future__ import annotations

from collections import deque

import anyio.to_thread
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from cutout.api import auth, intake
from cutout.api.options import flag
from cutout.api.remover import HOT_BYTES
from cutout.api.routes import Api, _counter, _prefers_async, result_response

#: The one route answered here, and its label in ``cutout_api_requests_total``.
PATH = "/v1/remove-background"
ROUTE = "POST /v1/remove-background"


def _replaying(recorded: list[Message], receive: Receive) -> Receive:
    """``receive`` with the messages already read from it given again first."""
    pending = deque(recorded)

    async def replay() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replay


def _declared(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def answer_repeat(api: Api, scope: Scope, receive: Receive, send: Send) -> Receive | None:
    """Answer ``scope`` (a POST to ``PATH``) when it repeats a request whose result is in memory, and
    return None; otherwise answer nothing and return the ``receive`` to hand to the app (it gives the
    body again if some was read here)."""
    length = _declared(scope)
    if length is None or length > min(HOT_BYTES, api.settings.max_upload_bytes):
        return receive  # unknown or large: the route streams it (and refuses it past the limit)
    recorded: list[Message] = []

    async def recording() -> Message:
        message = await receive()
        recorded.append(message)
        return message

    request = Request(scope, recording)
    key = api.gate.known(auth.presented(request))
    if key is None or _prefers_async(request):
        return receive  # the 401 is the route's; so is every task (nothing read yet)
    try:
        received = await intake.read(request, api.settings.max_upload_bytes)
        fields = received.fields
        if flag("async", fields.get("async", "false")) or "webhook_url" in fields:
            return _replaying(recorded, receive)
        if fields.get("encoding") == "url" and api.settings.strict and not api.settings.api_secret:
            return _replaying(recorded, receive)  # the route's 400
        repeat = api.remover.repeat(received)
        if repeat is None:
            return _replaying(recorded, receive)
        api.gate.take(key)  # only now: a request handed to the route is counted there
    except Exception:  # noqa: BLE001 - whatever it is, the route reads the request again and answers it
        return _replaying(recorded, receive)
    job, result = repeat
    del received
    response = result_response(result, job, request, api.settings)
    _counter(ROUTE, response.status_code).inc()
    store = api.remover.service.store
    await response(scope, receive, send)
    if store.uses_pending:  # after the answer, as the route's background task does
        await anyio.to_thread.run_sync(store.record_uses)
    return None
