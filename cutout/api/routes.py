"""The HTTP API's routes: ``POST /v1/remove-background`` and the tasks. Each handler is parse -> core ->
respond; every failure leaves as the one JSON error shape (``errors.ApiError``)."""

from __future__ import annotations

import base64
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cutout import metrics
from cutout.api import auth, intake, openapi
from cutout.api.errors import ApiError, from_origin, invalid, public_base
from cutout.api.options import flag
from cutout.api.remover import Job, Remover, Result
from cutout.api.runner import Runner, public_view
from cutout.api.tasks import FINAL, SUCCESS, Tasks, visible
from cutout.gone import client_gone
from cutout.settings import Settings
from cutout.webhooks import check_target
from grammar.errors import OriginError
from grammar.image_formats import MIME
from grammar.path import escape_public_id, versioned_source
from grammar.signature import sign

log = logging.getLogger("cutout.api")

#: How soon a client should poll a task again.
POLL_AFTER_MS = 500
#: The same in whole seconds, as ``Retry-After`` on every 202 (clients that know no ``poll_after_ms``).
RETRY_AFTER = str(math.ceil(POLL_AFTER_MS / 1000))


@dataclass
class Api:
    settings: Settings
    gate: auth.Gate
    remover: Remover
    tasks: Tasks
    runner: Runner


Handler = Callable[[Request, Api], Awaitable[Response]]


def endpoint(handler: Handler, route: str = "other") -> Callable[[Request], Awaitable[Response]]:
    """404 while the API is off; the caller's key checked; any error in the API's JSON shape; each
    answer counted in ``cutout_api_requests_total`` under ``route`` (the route's template)."""

    async def run(request: Request) -> Response:
        api: Api | None = getattr(request.app.state, "api", None)
        if api is None:
            raise HTTPException(404)
        response = await _answered(handler, request, api)
        _counter(route, response.status_code).inc()
        store = api.remover.service.store
        if store.uses_pending and response.background is None:
            # Memory hits note their use for the disk cache's LRU (as the delivery URLs' hot path does):
            # told after the answer, so the client does not wait for it.
            response.background = BackgroundTask(anyio.to_thread.run_sync, store.record_uses)
        return response

    return run


_COUNTERS: dict[tuple[str, int], Any] = {}


def _counter(route: str, status: int) -> Any:
    """The labelled request counter, looked up once per route and status (a label lookup per request
    is measurable on the hot path, as ``metrics.answered_200`` notes)."""
    counter = _COUNTERS.get((route, status))
    if counter is None:
        counter = _COUNTERS[(route, status)] = metrics.api_requests_total.labels(route, str(status))
    return counter


async def _answered(handler: Handler, request: Request, api: Api) -> Response:
    try:
        auth.admit(request, api.gate.check(request))
        return await handler(request, api)
    except ApiError as exc:
        return exc.response()
    except OriginError as exc:
        return from_origin(exc).response()
    except ClientDisconnect:
        return client_gone(request)
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return ApiError("internal_error", "Internal error").response()


async def remove_background(request: Request, api: Api) -> Response:
    received = await intake.read(request, api.settings.max_upload_bytes)
    fields = received.fields
    run_async = _run_async(fields.get("async"), _prefers_async(request))
    webhook_url = fields.get("webhook_url")
    if webhook_url is not None:
        _check_webhook(api, webhook_url)
    if fields.get("encoding") == "url" and api.settings.strict and not api.settings.api_secret:
        raise invalid(
            "encoding", "encoding=url needs CUTOUT_API_SECRET on a server in strict mode (to sign the URL)"
        )
    job = api.remover.known_job(received)
    if job is None:
        public_id = await api.remover.original(received, owner=auth.caller(request))
        job = await api.remover.job(public_id, fields, received.files)
        api.remover.remember_job(received, job)
    del received  # the image is stored: not held while the result is waited for (25 MB a request)
    if not run_async:
        result = await api.remover.make(job, wait=api.settings.api_wait_seconds)
        if result is not None:
            if webhook_url is not None:  # told too, as promised, although the answer carries the result
                await _queued(api, job, webhook_url, auth.caller(request))
            return result_response(result, job, request, api.settings)
    return await _queued(api, job, webhook_url, auth.caller(request))


def _run_async(asked: str | None, prefers: bool) -> bool:
    """Whether to answer 202 at once: ``async=true`` or ``Prefer: respond-async``. Both given and at odds
    (``async=false`` with the header) is a 400 naming both: the header used to win silently, though a
    client that writes async=false has said what it wants (RFC 7240 lets a server ignore a preference,
    not a parameter)."""
    if asked is None:
        return prefers
    wanted = flag("async", asked)
    if prefers and not wanted:
        raise invalid("async", f"async={asked} and Prefer: respond-async disagree: send one of them")
    return wanted or prefers


def _prefers_async(request: Request) -> bool:
    return prefers_async(request.headers.get("prefer", ""))


def prefers_async(prefer: str) -> bool:
    """Whether a ``Prefer`` header asks for ``respond-async``."""
    return any(part.strip().lower() == "respond-async" for part in prefer.replace(";", ",").split(","))


def _check_webhook(api: Api, url: str) -> None:
    if api.runner.signer is None:
        raise invalid("webhook_url", "webhook_url needs CUTOUT_API_WEBHOOK_SECRET set on the server")
    try:
        check_target(url, api.runner.hook_policy)
    except OriginError as exc:
        raise invalid("webhook_url", f"webhook_url: {exc.public}") from None


async def _queued(api: Api, job: Job, webhook_url: str | None, owner: str) -> Response:
    task = await anyio.to_thread.run_sync(api.tasks.create, job.as_json(), webhook_url, owner)
    metrics.api_tasks_total.labels("created").inc()
    api.runner.start(task)
    location = f"/v1/tasks/{task['task_id']}"
    body = {"task_id": task["task_id"], "status": task["status"], "poll_after_ms": POLL_AFTER_MS}
    headers = {"Location": location, "Retry-After": RETRY_AFTER, "Cache-Control": "no-store"}
    return JSONResponse(body, 202, headers=headers)


def result_headers(meta: dict[str, Any]) -> dict[str, str]:
    box = meta["foreground"]
    headers = {
        "X-Width": str(meta["width"]), "X-Height": str(meta["height"]),
        "X-Foreground-Left": str(box["left"]), "X-Foreground-Top": str(box["top"]),
        "X-Foreground-Width": str(box["width"]), "X-Foreground-Height": str(box["height"]),
        "Cache-Control": "no-store",
    }  # fmt: skip
    if meta["confidence"] is not None:
        headers["X-Confidence"] = str(meta["confidence"])
    return headers


def encoded(data: bytes, meta: dict[str, Any], encoding: str) -> str:
    text = base64.b64encode(data).decode("ascii")
    return f"data:{MIME[meta['format']]};base64,{text}" if encoding == "data_uri" else text


def delivery_path(public_id: str, transformation: str, settings: Settings | None = None) -> str:
    """The delivery URL path of a job's result: the API compiles every request onto the engine's
    operations, so its result *is* this derivative (same key, same bytes, same cache). Signed (SHA-256,
    32 characters) when the server has CUTOUT_API_SECRET, so it renders in strict mode too."""
    secret = settings.api_secret if settings is not None else None
    tail = f"{transformation}/{versioned_source(public_id)}"
    if not secret:
        return f"/image/upload/{tail}"
    # The SDKs' signature, which leaves the version out.
    signature = sign(f"{transformation}/{escape_public_id(public_id)}", secret, algorithm="sha256", length=32)
    return f"/image/upload/s--{signature}--/{tail}"


def result_response(
    result: Result, job: Job, request: Request | None = None, settings: Settings | None = None
) -> Response:
    url = None
    if job.options.encoding == "url":  # without the request: the path alone
        path = delivery_path(job.public_id, job.transformation, settings)
        if request is not None:
            url = public_base(request, settings.public_url if settings is not None else None) + path
        else:
            url = path
    return _answer(result.entry.data, result.meta, job.options.output, job.options.encoding, url)


def _answer(
    data: bytes, meta: dict[str, Any], output: str, encoding: str, url: str | None = None
) -> Response:
    """``encoding=url``: ``image`` is ``url``, the delivery URL of the same derivative rather than a
    ``/v1/tasks/<id>/result`` URL: it needs no key (an <img> or a CDN can GET it), costs no copy of the
    bytes, outlives CUTOUT_TASK_TTL (an evicted derivative is made again, with a 423
    meanwhile) and exists for a sync answer too, which has no task."""
    if output == "json":
        image = url if encoding == "url" and url is not None else encoded(data, meta, encoding)
        body = {**meta, "encoding": encoding, "image": image}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})
    return Response(data, media_type=MIME[meta["format"]], headers=result_headers(meta))


async def _task(request: Request, api: Api) -> dict[str, Any]:
    """The task the path names, if it is the caller's: another key's is answered as an unknown one."""
    for name in request.query_params:  # e.g. /result?format=jpg would answer the task's PNG as if asked
        detail = (f"{name[:60]!r} is not taken here: the task's options are fixed when it is made "
                  "(send them to POST /v1/remove-background)")  # fmt: skip
        raise ApiError("invalid_parameter", detail, parameter=name[:60])
    found = await anyio.to_thread.run_sync(api.tasks.get, request.path_params["task_id"])
    task = visible(found, auth.caller(request))
    if task is None:
        raise ApiError("not_found", "No such task (unknown, deleted or expired)", parameter="task_id")
    return task


async def get_task(request: Request, api: Api) -> Response:
    task = await _task(request, api)
    view = public_view(task)
    if task["status"] not in FINAL:
        view["poll_after_ms"] = POLL_AFTER_MS
    return JSONResponse(view, headers={"Cache-Control": "no-store"})


async def get_result(request: Request, api: Api) -> Response:
    task = await _task(request, api)
    if task["status"] not in FINAL:
        view = {**public_view(task), "poll_after_ms": POLL_AFTER_MS}
        return JSONResponse(view, 202, headers={"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"})
    if task["status"] != SUCCESS:
        error = task["error"]
        raise ApiError(error["code"], error["message"])
    data = await anyio.to_thread.run_sync(api.tasks.data, task["task_id"])
    if data is None:  # expired between the two reads
        raise ApiError("not_found", "No such task (unknown, deleted or expired)", parameter="task_id")
    job = task["job"]
    url = None
    if job["encoding"] == "url":
        path = delivery_path(job["public_id"], job["transformation"], api.settings)
        url = public_base(request, api.settings.public_url) + path
    return _answer(data, task["result"], job["output"], job["encoding"], url)


async def delete_task(request: Request, api: Api) -> Response:
    await _task(request, api)  # the caller's own (else 404)
    if not await anyio.to_thread.run_sync(api.tasks.delete, request.path_params["task_id"]):
        raise ApiError("not_found", "No such task (unknown, deleted or expired)", parameter="task_id")
    return Response(status_code=204)


async def no_route(request: Request, api: Api) -> Response:
    """Anything else under /v1/ answers in the API's shape, instead of falling to the delivery URLs."""
    path = request.url.path
    # /v1/tasks/ and /v1/tasks//result match no route ({task_id} takes one character at least): an empty
    # task id is the client's 400 naming it, where the route takes the method, not "No API route" (404).
    empty_id = _EMPTY_TASK_ID.fullmatch(path) is not None
    matched = path.replace("/v1/tasks/", "/v1/tasks/-", 1) if empty_id else path
    allowed = [
        m for route in ROUTES[:-1] if route.path_regex.match(matched) for m in sorted(route.methods or ())
    ]
    if empty_id and request.method in allowed:
        raise invalid("task_id", f"task_id is empty: {request.method} {path} names no task")
    if allowed:
        return JSONResponse(
            ApiError("method_not_allowed", f"{request.method} is not allowed on {path}").body(),
            405,
            headers={"Allow": ", ".join(dict.fromkeys(allowed))},
        )
    raise ApiError("not_found", f"No API route {path}")


_EMPTY_TASK_ID = re.compile(r"/v1/tasks/(/result)?")
#: OPTIONS too: else a plain OPTIONS (no Access-Control-Request-Method: a CORS preflight is answered by
#: ``cors`` before routing) fell to the delivery URLs' and was told ``Allow: GET, HEAD, OPTIONS`` of
#: routes that take POST (or GET and DELETE); here it is a 405 that names what the route takes, as the
#: vendors' faces answer it.
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ROUTES: tuple[Route, ...] = (
    Route(
        "/v1/remove-background", endpoint(remove_background, "POST /v1/remove-background"), methods=["POST"]
    ),
    Route("/v1/tasks/{task_id}", endpoint(get_task, "GET /v1/tasks/{task_id}"), methods=["GET"]),
    Route(
        "/v1/tasks/{task_id}/result",
        endpoint(get_result, "GET /v1/tasks/{task_id}/result"),
        methods=["GET"],
    ),
    Route("/v1/tasks/{task_id}", endpoint(delete_task, "DELETE /v1/tasks/{task_id}"), methods=["DELETE"]),
    Route("/v1/{rest:path}", endpoint(no_route), methods=_ANY),
)
#: Public while the API is on: the document says how to authenticate.
DOC_ROUTES = (
    Route("/openapi.json", openapi.openapi_json, methods=["GET", "HEAD"]),
    Route("/docs", openapi.docs_page, methods=["GET", "HEAD"]),
)
