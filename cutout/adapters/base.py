"""What every vendor adapter shares: the guarded endpoint (key from the vendor's own header, errors in
the vendor's own envelope) and the few calls into cutout's API core they translate onto.

An adapter never claims, queues, generates or caches by itself: an image becomes an original through
``Remover.original``, the options a job through ``Remover.job`` (so the native option parser checks every
value), the result comes from ``Remover.make`` and what is not ready at once is a native task
(``Tasks`` + ``Runner``). Each adapter only renames fields on the way in and reshapes the answer."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from cachetools import LRUCache
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cutout import metrics
from cutout.api import Api, auth, front
from cutout.api.errors import ApiError, from_origin
from cutout.api.intake import Intake, limit_body, merge
from cutout.api.remover import UPLOADS, Job, Result
from cutout.api.routes import delivery_path
from cutout.api.tasks import ERROR, SUCCESS, new_id, visible
from cutout.fetch import fetch
from cutout.gone import client_gone
from cutout.headers import header_safe
from cutout.memory import BoundedDict
from grammar.errors import OriginError

log = logging.getLogger("cutout.adapters")

#: The response header that lists what a vendor treats as a hint and cutout does not act on.
HINTS_HEADER = "X-Cutout-Ignored-Hints"

Handler = Callable[[Request, Api], Awaitable[Response]]
ErrorShape = Callable[[ApiError], Response]


@dataclass(frozen=True)
class HeaderKey:
    """A face's key: from the first of ``names`` present (as the vendor writes them), or from
    ``Authorization: Bearer`` when ``bearer``; ``sent_as`` names them for the face's 401."""

    names: tuple[str, ...]
    bearer: bool = False

    def __call__(self, request: Request) -> str | None:
        return _key(request.headers.get, self.names, self.bearer)

    @property
    def sent_as(self) -> str:
        named = [*self.names, *(["Authorization: Bearer <key>"] if self.bearer else [])]
        return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " or " + named[-1]


def header_key(*names: str, bearer: bool = False) -> HeaderKey:
    """The key from the first of ``names`` present, or from ``Authorization: Bearer`` when ``bearer``."""
    return HeaderKey(names, bearer)


def raw_key(*names: str, bearer: bool = False) -> Callable[[front.Headers], str | None]:
    """``header_key`` for the ASGI front (``Face.key``): the same key from the raw headers it read."""

    def read(headers: front.Headers) -> str | None:
        def get(name: str) -> str | None:
            value = headers.get(name.lower().encode())  # ASGI's raw header names are lower case
            return value.decode("latin-1") if value is not None else None

        try:
            return _key(get, names, bearer)
        except ApiError:
            return None  # two different keys: the route's 400, in the vendor's envelope

    return read


def _key(get: Callable[[str], str | None], names: tuple[str, ...], bearer: bool) -> str | None:
    """The key of ``Authorization: Bearer`` (when ``bearer``), else of the first of ``names``; a 400
    naming them when two carry different keys (``auth.one_key``): no vendor documents an order among
    them (remove.bg and rembg know X-Api-Key alone, RapidAPI X-RapidAPI-Key; Bearer is cutout's own)."""
    sent = [("Authorization: Bearer", auth.bearer_token(get("authorization") or ""))] if bearer else []
    return auth.one_key(sent + [(name, get(name)) for name in names])


def key_headers(*names: str, bearer: bool = False) -> frozenset[bytes]:
    """The headers a ``raw_key`` reads (with the body's length and type, which every face reads)."""
    return frozenset({b"content-length", b"content-type", *(n.lower().encode() for n in names),
                      *([b"authorization"] if bearer else [])})  # fmt: skip


@dataclass(frozen=True)
class Read(Intake):
    """What a face's route read of a request (``Face.intake``): the native intake, and what its answer
    needs besides the job and result (``context``), for the front's ``Face.respond``."""

    context: Any = None


def known_size(api: Api, public_id: str) -> tuple[int, int] | None:
    """The width and height ``dimensions`` found before, from memory (None: not known here), for the
    front's ``Face.fits``: it never waits."""
    sizes = _SIZES.get(api.remover)
    return sizes.get(public_id) if sizes is not None else None


def endpoint(
    handler: Handler, key: HeaderKey | None, error: ErrorShape
) -> Callable[[Request], Awaitable[Response]]:
    """As ``cutout.api.routes.endpoint``: 404 while the API is off (CUTOUT_API_KEYS / CUTOUT_API_OPEN),
    the key checked by the API's own gate (same keys, same rate), every failure in the vendor's shape.
    ``key`` None: the handler checks it (a key that comes in the body)."""

    async def run(request: Request) -> Response:
        api: Api | None = getattr(request.app.state, "api", None)
        if api is None:
            raise HTTPException(404)
        try:
            if key is not None:
                auth.admit(request, api.gate.check_key(key(request), key.sent_as))
            response = await handler(request, api)
        except ApiError as exc:
            return error(exc)
        except OriginError as exc:
            return error(from_origin(exc))
        except ClientDisconnect:
            return client_gone(request)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return error(ApiError("internal_error", "Internal error"))
        store = api.remover.service.store
        if store.uses_pending and response.background is None:
            # As the native route: memory hits tell the disk cache's LRU of their use (about once a minute
            # a result), after the answer. Without it an adapter's hits were told only by other routes.
            response.background = BackgroundTask(anyio.to_thread.run_sync, store.record_uses)
        return response

    return run


def limited(request: Request, api: Api, limit: int | None = None) -> None:
    """The body refused past the vendor's limit, or the server's when that is lower (413)."""
    server = api.settings.max_upload_bytes
    limit_body(request, server if limit is None else min(limit, server))


def query(request: Request) -> dict[str, str]:
    """The query, one value per name. A name given twice is a 400 naming it (as the native intake's): a
    dict of the query keeps the last value and drops the other unseen (``mode=fg-image&mode=fg-mask``)."""
    values: dict[str, str] = {}
    merge(values, request.query_params.multi_items(), "query")
    return values


@dataclass(frozen=True)
class Made:
    data: bytes
    meta: dict[str, Any]  # width, height, format, bytes, confidence, foreground (px), box (relative)
    job: Job


async def store(
    api: Api, *, data: bytes | None = None, url: str | None = None, public_id: str | None = None
) -> str:
    """The public id of an image given as bytes, as a URL (the guarded fetcher) or by id."""
    if data is not None:
        return await api.remover.original(Intake({}, "body", data))
    if url is not None:
        return await api.remover.original(Intake({"image_url": url}, "image_url", None))
    assert public_id is not None
    return await api.remover.original(Intake({"public_id": public_id}, "public_id", None))


def known_job(api: Api, data: bytes, fields: Mapping[str, str]) -> Job | None:
    """The job of an image the request carries with native option ``fields``, when the same content and
    options came before (by any face, the native POST too) and its original is unchanged: the native
    POST's own hot path (``Remover.known_job``: the image's hash looked up in memory, no thread hop).
    An image this face answered before is found by its bytes, without hashing them again (``_Seen``)."""
    seen = _seen(api)
    shape = _shape(data, fields)
    hit = seen.get(shape)
    # Byte for byte the same image with the same options has the same job; ready(): its result is in
    # memory and its original unchanged (else the native path below checks, or the job is made again).
    if hit is not None and hit[0] == data and api.remover.ready(hit[1]) is not None:
        return hit[1]
    job = api.remover.known_job(Intake(dict(fields), "body", data))
    if job is not None:
        seen[shape] = (data, job)
    return job


def remember(api: Api, data: bytes, fields: Mapping[str, str], job: Job) -> None:
    api.remover.remember_job(Intake(dict(fields), "body", data), job)
    _seen(api)[_shape(data, fields)] = (data, job)


#: The carried images whose jobs were found, with their bytes, by a sample of the bytes and the options,
#: per Remover (a server has one; the tests several): an image whose bytes are the same (compared in full:
#: 1 us for a 47 KB photo) has the same job, found without its sha256 (40 us). Bounded by the bytes kept;
#: only touched on the event loop. (The native POST's ASGI front keeps the same for its own requests.)
_SEEN_BYTES = 16 << 20
_Seen = LRUCache[tuple[Any, ...], tuple[bytes, Job]]
_SEEN: weakref.WeakKeyDictionary[Any, _Seen] = weakref.WeakKeyDictionary()


def _seen(api: Api) -> _Seen:
    seen = _SEEN.get(api.remover)
    if seen is None:
        seen = _SEEN[api.remover] = LRUCache(_SEEN_BYTES, getsizeof=lambda value: len(value[0]) + 1)
    return seen


def _shape(data: bytes, fields: Mapping[str, str]) -> tuple[Any, ...]:
    return tuple(sorted(fields.items())), len(data), data[:64], data[-64:]


async def carried_job(
    api: Api,
    data: bytes,
    fields: Mapping[str, str],
    files: Mapping[str, bytes] | None = None,
    source: str = "body",
) -> Job:
    """The job for an image the request carries and native option ``fields`` (``files``: other parts,
    as bg_image_file): found as ``known_job`` does, else stored and made as ``store`` + ``job`` would,
    then remembered for the next request with the same content and options, whichever face sends it.
    ``source``: the field that carried it (``image_file``, ``image_file_b64``), named by the errors."""
    if not files:
        known = known_job(api, data, fields)
        if known is not None:
            return known
    intake = Intake(dict(fields), source, data, dict(files or {}))
    known = api.remover.known_job(intake) if files else None
    if known is not None:
        return known
    made = await job(api, await api.remover.original(intake), fields, files)
    api.remover.remember_job(intake, made)
    if not files:
        _seen(api)[_shape(data, fields)] = (data, made)
    return made


#: Width and height of stored uploads, by public id, per Remover (its settings' pixel limit passed them).
#: ``api-uploads/<sha256>`` names its content, so its size never changes: a vendor's size limit is
#: checked without a thread hop and a header read each time.
_SIZES: weakref.WeakKeyDictionary[Any, BoundedDict[str, tuple[int, int]]] = weakref.WeakKeyDictionary()


async def dimensions(api: Api, public_id: str) -> tuple[int, int]:
    """The original's upright width and height (400/413 as ``Remover.job``), for a vendor's own limits."""
    sizes = _SIZES.get(api.remover)
    if sizes is None:
        sizes = _SIZES[api.remover] = BoundedDict(4096)
    known = sizes.get(public_id)
    if known is not None:
        return known
    size = await api.remover.dimensions(public_id)
    if public_id.startswith(UPLOADS + "/"):
        sizes[public_id] = size
    return size


async def download(api: Api, url: str) -> bytes:
    """An image's bytes by URL through the guarded fetcher, under the API's fetch policy (for a vendor
    that needs the bytes themselves, as API4AI's md5)."""
    try:
        return (await fetch(url, api.remover.policy)).content
    except OriginError as exc:
        raise from_origin(exc, parameter="url") from None


async def job(
    api: Api, public_id: str, fields: Mapping[str, str], files: Mapping[str, bytes] | None = None
) -> Job:
    """The native job for native option fields (checked by the native parser: a bad value is a 400).
    ``files``: multipart parts besides the image (``bg_image_file``), for a server whose API takes them;
    passed only when there are some."""
    extra: dict[str, Any] = {"files": dict(files)} if files else {}
    return await api.remover.job(public_id, dict(fields), **extra)


async def make(api: Api, job: Job) -> Made:
    """The result within the API's sync wait (CUTOUT_API_WAIT_SECONDS). A synchronous vendor has no
    task to hand back, so past the wait the answer is 503 ``still_processing`` with Retry-After: the job
    goes on, and the retry is a cache hit."""
    result = await api.remover.make(job, wait=api.settings.api_wait_seconds)
    if result is None:
        raise ApiError(
            "still_processing",
            f"The result is still being made (past CUTOUT_API_WAIT_SECONDS, "
            f"{api.settings.api_wait_seconds:g} s); retry shortly, it goes on meanwhile",
            headers={"Retry-After": "2"},
        )
    return Made(result.entry.data, result.meta, job)


async def queue(
    api: Api,
    job: Job,
    webhook_url: str | None = None,
    context: Mapping[str, Any] | None = None,
    owner: str = "",
) -> dict[str, Any]:
    """A native task for ``job`` (driven by the API's runner, swept up again after a restart).
    ``context`` rides along in the task's job: what the adapter needs to answer for it later, and
    ``payload``, the name of its webhook body in ``cutout.api.runner.PAYLOADS``. ``owner``: the caller,
    whose key alone reads the task back."""
    record = {**(context or {}), **job.as_json()}
    task = await anyio.to_thread.run_sync(api.tasks.create, record, webhook_url, owner)
    metrics.api_tasks_total.labels("created").inc()  # as the native API counts its own
    api.runner.start(task)
    return task


async def finished_task(
    api: Api, job: Job, result: Result, context: Mapping[str, Any] | None = None, owner: str = ""
) -> dict[str, Any]:
    """A task born successful, for a job whose result is already made (``Remover.ready``): what the
    runner would have recorded after driving it, written once, with no driver. Its bytes are not kept
    with it: for a vendor whose answer is the result's delivery URL (a cached entry already), not the
    task's copy."""
    now = time.time()
    record = {
        "task_id": new_id(), "status": SUCCESS, "created_at": now, "finished_at": now,
        "job": {**(context or {}), **job.as_json()}, "webhook_url": None, "result": result.meta,
        "error": None, "owner": owner,
    }  # fmt: skip
    await anyio.to_thread.run_sync(api.tasks.put, record)
    metrics.api_tasks_total.labels("created").inc()
    metrics.api_tasks_total.labels(SUCCESS).inc()
    return record


async def failed_task(
    api: Api, code: str, message: str, context: Mapping[str, Any], owner: str = ""
) -> dict[str, Any]:
    """A task born failed: for a vendor whose engine-side failures (the source cannot be downloaded or
    decoded) are a task's ``error`` status rather than the creating request's refusal."""
    now = time.time()
    record = {
        "task_id": new_id(), "status": ERROR, "created_at": now, "finished_at": now, "job": dict(context),
        "webhook_url": None, "result": None, "error": {"code": code, "message": message}, "owner": owner,
    }  # fmt: skip
    await anyio.to_thread.run_sync(api.tasks.put, record)
    metrics.api_tasks_total.labels("created").inc()
    metrics.api_tasks_total.labels(ERROR).inc()
    return record


async def task(api: Api, task_id: str, owner: str) -> dict[str, Any] | None:
    """The task, if it is ``owner``'s (another key's is as unknown)."""
    found: dict[str, Any] | None = await anyio.to_thread.run_sync(api.tasks.get, task_id)
    return visible(found, owner)


async def task_data(api: Api, task_id: str) -> bytes | None:
    data: bytes | None = await anyio.to_thread.run_sync(api.tasks.data, task_id)
    return data


#: What this process wrote to each task store's notes, with when it stops trusting it (monotonic).
_WRITTEN: weakref.WeakKeyDictionary[Any, BoundedDict[str, tuple[Any, float]]] = weakref.WeakKeyDictionary()


def written(api: Api, name: str) -> Any:
    """A note this process wrote within the notes' lifetime, from memory (None: not known here; read
    it with ``noted``). For notes that are written once and never change: a repeated request finds
    them without a thread hop; another worker's are read as usual."""
    known = _memory(api).get(name)
    return known[0] if known is not None and known[1] > time.monotonic() else None


def remember_note(api: Api, name: str, value: Any, share: float = 1.0) -> None:
    """Remember a note just written (``note``, or ``Tasks.note`` in a thread) for ``written``, for this
    ``share`` of the notes' lifetime."""
    _memory(api)[name] = (value, time.monotonic() + api.tasks.ttl * share)


def _memory(api: Api) -> BoundedDict[str, tuple[Any, float]]:
    # Per task store (a server has one; the tests several, each with its own notes).
    memory = _WRITTEN.get(api.tasks)
    if memory is None:
        memory = _WRITTEN[api.tasks] = BoundedDict(4096)
    return memory


async def note(api: Api, name: str, value: Any) -> None:
    await anyio.to_thread.run_sync(api.tasks.note, name, value)


async def noted(api: Api, name: str) -> Any:
    return await anyio.to_thread.run_sync(api.tasks.noted, name)


def delivery_root(base_url: str, api: Api) -> str:
    """Where clients reach delivery URLs: CUTOUT_PUBLIC_URL (a CDN or proxy in front, as the Upload API's
    answers use it), else ``base_url``, where this request came to (``request_base``)."""
    return (api.settings.public_url or base_url).rstrip("/")


def result_url(base_url: str, api: Api, public_id: str, transformation: str) -> str:
    """A URL of the result: the delivery URL of the same transformation, served from the same cache
    entry by the delivery route (signed when CUTOUT_API_SECRET is set, so strict mode serves it), under
    ``delivery_root``."""
    return delivery_root(base_url, api) + delivery_path(public_id, transformation, api.settings)


def hints(ignored: list[str]) -> dict[str, str]:
    # Hints quote the client's values (Runware's model is any JSON): a CR LF, or '日', in a header was an
    # injected header, or a 500.
    return {HINTS_HEADER: ", ".join(header_safe(hint) for hint in ignored)} if ignored else {}
