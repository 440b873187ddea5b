"""A repeated ``POST /v1/remove-background`` answered before Starlette's routing and middleware, as
``cutout.fasthits`` answers hot delivery hits; a vendor adapter's route can be answered the same way
through a ``Face`` of its own (``cutout.adapters.FACES``).

A request is answered here only when it is fully known to be a repeat: its key passes the route's own
gate (``Gate.known``, then ``Gate.take``), its body (declared, at most ``HOT_BYTES``) reads as the route
reads it, and the job (the image's sha256 and the options) and the result with its description are in
this process's memory (``Remover.repeat``). The answer is the route's own, counted under the route's
label. Everything else (every first request, every error, a 401 or a 429) goes to the Starlette route
with the body replayed: one way to claim, queue, generate and cache, one way to fail.

Why: on a 47 KB photo under uvicorn (bench/api_bench.py), a raw ASGI answer to the POST reaches about
0.85x of a delivery hit, Starlette's routing, request and response objects alone about 0.4x.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio.to_thread
from cachetools import LRUCache
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from cutout.api import auth, intake
from cutout.api.errors import ApiError
from cutout.api.intake import Intake
from cutout.api.options import SOURCES, flag
from cutout.api.remover import HOT_BYTES, MEMO_ENTRIES, Job, Result
from cutout.api.routes import Api, _counter, prefers_async, result_response
from cutout.memory import BoundedDict

#: The bodies of the requests answered here that are kept to recognise them again, in bytes.
SEEN_BYTES = 16 << 20

Headers = dict[bytes, bytes]
RawHeaders = list[tuple[bytes, bytes]]
#: A request's path, content type, query string, body length and the body's first and last 64 bytes.
Shape = tuple[str, bytes, bytes, int, bytes, bytes]


def _always(headers: Headers) -> bool:
    return True


def _fits(api: Api, job: Job, received: Intake, owner: str) -> bool:
    return True


@dataclass(frozen=True)
class Face:
    """A POST route whose repeats the front may answer: the native ``POST /v1/remove-background``
    (``NATIVE``), or a vendor adapter's (``create_app`` gives ``FastHits`` the faces it answers).

    The front does the shared part: the body (declared, at most ``HOT_BYTES``) read and, for anything not
    answered, replayed to the route; the key checked by the API's gate (``Gate.known``, then ``Gate.take``
    once answered); a body seen before byte for byte recognised without hashing it again;
    ``Remover.repeat`` for the rest. The face says how its route reads a request and answers as the
    route does; where one of its functions returns None (or False) the route answers, errors included."""

    path: str
    #: The headers the route reads: one of them given twice leaves the request to the route.
    reads: frozenset[bytes]
    #: The caller's key as the route reads it from the headers (None: none given).
    key: Callable[[Headers], str | None]
    #: The native ``Intake`` the route would make of the request (fields in the native API's names), or
    #: None. Given the API, a request whose body is read already, its headers and the body.
    intake: Callable[[Api, Request, Headers, bytes], Awaitable[intake.Intake | None]]
    #: The route's answer for the job's result (in memory), given what ``intake`` returned (a face keeps
    #: what its answer needs besides the job in a subclass of ``Intake``; it depends only on the path,
    #: content type, query and body, as ``intake`` is not asked again for a body seen before).
    respond: Callable[[Api, Job, Result, Request, Intake], Response]
    #: False leaves the request to the route before its body is read (the native: a task asked for).
    admits: Callable[[Headers], bool] = _always
    #: The route's own checks that need the job (a vendor's limits on the image's size) or the caller
    #: (``owner_of`` its key: what the route noted for it): False leaves the request to the route. Asked
    #: for every request answered here, before the key's rate is taken. (``respond`` reads the caller with
    #: ``auth.caller``, as the route does.)
    fits: Callable[[Api, Job, Intake, str], bool] = _fits
    #: The ``cutout_api_requests_total`` route label the route counts its answers under, if any.
    label: str | None = None


class RepeatFront:
    def __init__(self, faces: tuple[Face, ...]) -> None:
        self.faces = {face.path: face for face in faces}
        # The requests answered here, by path, content type, query and a sample of their body: one whose
        # body is byte for byte the same is the same request (a route's reading of a request depends on
        # nothing else), so its job is known without hashing the body again. The bytes are compared in
        # full, so this is exact: a crafted body that matches the sample is merely not found here, and
        # takes the sha256 path. The sha256 costs more than the rest of the answer (27 us for a 47 KB
        # photo, the comparison 1 us). Only touched on the event loop.
        self._seen: LRUCache[Shape, tuple[bytes, Job, Intake]] = LRUCache(SEEN_BYTES, getsizeof=_body_size)

    async def answer(self, api: Api, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answer ``scope`` (a POST to one of the faces' paths) when it repeats a request whose result is
        in memory, and return None; otherwise answer nothing and return the ``receive`` to hand to the
        app (it gives the body again if some was read here)."""
        face = self.faces[scope["path"]]
        headers = _read(scope, face.reads)
        limit = api.settings.max_upload_bytes
        length = headers.get(b"content-length", b"") if headers is not None else b""
        if headers is None or not length.isdigit() or not 0 < int(length) <= min(HOT_BYTES, limit):
            return receive  # unknown or large: the route streams it (and refuses it past the limit)
        key = api.gate.known(face.key(headers))
        if key is None or not face.admits(headers):
            return receive  # the 401 is the route's, and so is anything else (nothing read yet)
        recorded: list[Message] = []
        try:
            answered = await self._repeat(api, face, key, scope, headers, receive, recorded, int(length))
        except Exception:  # noqa: BLE001 - whatever it is, the route reads the request again and answers it
            answered = None
        if answered is None:
            return _replaying(recorded, receive)
        job, result, request, received = answered
        try:
            response = face.respond(api, job, result, request, received)
        except Exception:  # noqa: BLE001 - a bad Host for a result URL, say: the route answers in its shape
            return _replaying(recorded, receive)
        await response(scope, request.receive, send)
        if face.label is not None:
            _counter(face.label, 200).inc()
        store = api.remover.service.store
        if store.uses_pending:  # after the answer, as the route's background task does
            await anyio.to_thread.run_sync(store.record_uses)
        return None

    async def _repeat(
        self,
        api: Api,
        face: Face,
        key: str,
        scope: Scope,
        headers: Headers,
        receive: Receive,
        recorded: list[Message],
        length: int,
    ) -> tuple[Job, Result, Request, Intake] | None:
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
        auth.admit(request, key)  # the caller, for fits and respond, as the route's gate marks it
        owner = auth.caller(request)
        shape = (face.path, headers.get(b"content-type", b""), scope["query_string"], length, body[:64],
                 body[-64:])  # fmt: skip
        seen = self._seen.get(shape)
        if seen is not None and seen[0] == body:
            result = api.remover.ready(seen[1])
            if result is not None and face.fits(api, seen[1], seen[2], owner):
                api.gate.take(key)
                return seen[1], result, request, seen[2]
        received = await face.intake(api, request, headers, body)
        repeat = api.remover.repeat(received) if received is not None else None
        if received is None or repeat is None or not face.fits(api, repeat[0], received, owner):
            return None
        api.gate.take(key)  # only now: a request handed to the route is counted there (a 429 is its)
        self._seen[shape] = (body, repeat[0], received)
        return repeat[0], repeat[1], request, received


def _body_size(seen: tuple[bytes, Job, Intake]) -> int:
    carried = seen[2].data
    return len(seen[0]) + (len(carried) if carried is not None and carried is not seen[0] else 0) + 1


def _read(scope: Scope, names: frozenset[bytes]) -> Headers | None:
    found: Headers = {}
    for name, value in scope["headers"]:
        if name in names:
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


# -- the native POST /v1/remove-background ------------------------------------------------------------------
def _native_key(headers: Headers) -> str | None:
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    x_api_key = headers[b"x-api-key"].decode("latin-1") if b"x-api-key" in headers else None
    try:
        return auth.presented_in(authorization, x_api_key)
    except ApiError:
        return None  # two different keys: the route's 400


def _native_admits(headers: Headers) -> bool:
    return not prefers_async(headers.get(b"prefer", b"").decode("latin-1"))


_queries: BoundedDict[bytes, tuple[tuple[str, str], ...] | None] = BoundedDict(MEMO_ENTRIES)


def _query_fields(query: bytes) -> dict[str, str] | None:
    """The query's fields as ``intake.read`` reads them; None for a field given twice (its 400)."""
    items = _queries.get(query)
    if items is None and query not in _queries:
        parsed = QueryParams(query).multi_items()  # as request.query_params
        names = [name for name, _ in parsed]
        items = tuple(parsed) if len(set(names)) == len(names) else None
        _queries[query] = items
    return dict(items) if items is not None else None


async def _native_intake(api: Api, request: Request, headers: Headers, body: bytes) -> intake.Intake | None:
    if intake.is_raw(intake.media_type(headers.get(b"content-type", b"").decode("latin-1"))):
        # What intake.read makes of a raw body, without its request objects: the query's fields.
        fields = _query_fields(request.scope["query_string"])
        if fields is None or any(name in fields for name in SOURCES):
            return None  # the route's 400: a field twice, or a second image
        received = intake.Intake(fields, "body", body)
    else:  # multipart, form or JSON: read exactly as the route reads it
        received = await intake.read(request, api.settings.max_upload_bytes)
        fields = received.fields
    if flag("async", fields.get("async", "false")) or "webhook_url" in fields:
        return None  # a task: the route's
    if fields.get("encoding") == "url" and api.settings.strict and not api.settings.api_secret:
        return None  # the route's 400
    return received


#: A binary answer's headers, by the result's and the mask's etags (what its description depends on).
_binary: BoundedDict[tuple[str, str], RawHeaders] = BoundedDict(MEMO_ENTRIES)


def _native_respond(api: Api, job: Job, result: Result, request: Request, received: Intake) -> Response:
    if job.options.output != "binary":
        return result_response(result, job, request, api.settings)
    shape = (result.entry.etag, result.mask_etag)
    raw = _binary.get(shape)
    response = Response(result.entry.data) if raw is not None else result_response(result, job)
    if raw is None:
        _binary[shape] = response.raw_headers
    else:
        response.raw_headers = raw
    return response


NATIVE = Face(
    path="/v1/remove-background",
    reads=frozenset((b"content-length", b"content-type", b"authorization", b"x-api-key", b"prefer")),
    key=_native_key,
    intake=_native_intake,
    respond=_native_respond,
    admits=_native_admits,
    label="POST /v1/remove-background",
)
