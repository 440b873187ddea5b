"""The starlette app: delivery routes, health, metrics, and the one error handler."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import anyio.to_thread
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Route

from cache import DerivativeCache
from cache.s3 import S3Blobs, S3Endpoint, S3Originals, TieredBlobs
from cutout import adapters, api, console, metrics, upload
from cutout.api import front as api_front
from cutout.client import Client
from cutout.cors import header_names
from cutout.fasthits import FastHits
from cutout.fetch import FetchPolicy
from cutout.headers import header_safe
from cutout.hinting import client_hints, error_headers
from cutout.queued import QueuedModel
from cutout.readiness import Check, Finding, Readiness
from cutout.remote import RemoteOriginals, upload_request
from cutout.responses import CORS, NOSNIFF, Delivered, answer
from cutout.service import Service
from cutout.settings import Settings, load_settings
from grammar.errors import NotFound, OriginError, Overloaded
from transform.seam import Segmenter

log = logging.getLogger("cutout.app")


class AnythingConvertor(Convertor[str]):
    """Like ``path`` but also across newlines: a public id may hold any character once decoded."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("cutout_anything", AnythingConvertor())


def image_response(request: Request, delivered: Delivered, max_age: int) -> Response:
    ranged = request.method == "GET"  # Range is defined for GET only (RFC 9110 14.2)
    status, headers, body = answer(delivered, max_age, request.headers.get("if-none-match", ""),
                                   request.headers.get("range", "") if ranged else "",
                                   request.headers.get("if-range", ""))  # fmt: skip
    return Response(body, status_code=status, headers=headers)


#: A browser asks before a cross-site ``fetch`` of an image that sends a header of its own (or a method
#: other than GET and HEAD): delivery answers are readable by any page (``CORS``), so any header may come.
_PREFLIGHT = {**CORS, **NOSNIFF, "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
              "Access-Control-Max-Age": "86400", "Allow": "GET, HEAD, OPTIONS"}  # fmt: skip


async def preflight(request: Request) -> Response:
    """OPTIONS on a delivery URL: 204 with what it allows (a CORS preflight, or a plain OPTIONS)."""
    headers = dict(_PREFLIGHT)
    asked = request.headers.get("access-control-request-headers", "").strip()
    if asked and header_names(asked):  # else no header is allowed
        headers["Access-Control-Allow-Headers"] = asked
    return Response(status_code=204, headers=headers)


async def deliver(request: Request) -> Response:
    service: Service = request.app.state.service
    raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    try:
        vouched, parsed = False, None
        # /image/fetch/: the fetched image becomes an original, then the request is an upload URL's.
        upload = await upload_request(raw_path, service.resolver, request.app.state.remote,
                                      service.settings.api_secret)  # fmt: skip
        if upload is not None:
            raw_path, vouched, parsed = upload
        delivered = await service.deliver(raw_path, request.headers.get("accept"), vouched=vouched,
                                          parsed=parsed, client=Client(request.receive),
                                          hints=client_hints(raw_path, request.headers.get))  # fmt: skip
    except OriginError:
        raise
    except Exception as exc:
        # A bug, not the client's doing: logged with its traceback, answered with a generic 500.
        log.exception("unexpected error serving %s", request.url.path)
        raise OriginError() from exc
    return image_response(request, delivered, service.settings.max_age)


async def on_origin_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OriginError)
    if exc.status >= 500:
        log.warning("%s -> %d %s (%s)", request.url.path, exc.status, exc.public, exc.detail)
    no_store = exc.status == 423 or exc.status >= 500
    raw_path = (request.scope.get("raw_path") or request.scope["path"].encode()).decode("latin-1")
    headers = {
        **CORS,
        **NOSNIFF,
        **error_headers(raw_path),
        **exc.headers,
        "X-Cld-Error": header_safe(exc.public),
        "Cache-Control": "no-store" if no_store else "public, max-age=60",
    }
    metrics.requests_total.labels(str(exc.status)).inc()
    return PlainTextResponse(exc.public + "\n", exc.status, headers=headers)


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no route, wrong method) in the one error model."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        public = f"No route for {request.scope['path']!r}: {ROUTES_HELP}"
    elif exc.status_code == 405:
        public = f"Method {request.method} not allowed on {request.scope['path']}: {ROUTES_HELP}"
    else:
        public = exc.detail
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed(request)
    error = OriginError(public, headers=headers)
    error.status = exc.status_code
    return await on_origin_error(request, error)


def _allowed(request: Request) -> str:
    """Every method some route takes at this path: Starlette's 405 names only the first route's (a
    delivery URL's GET, HEAD; its OPTIONS is another route)."""
    methods: dict[str, None] = {}
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and isinstance(route, Route):
            methods.update(dict.fromkeys(sorted(route.methods or ())))
    order = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    return ", ".join(sorted(methods, key=lambda m: order.index(m) if m in order else len(order)))


async def not_an_image(request: Request) -> Response:
    """``/``, ``/favicon.ico``, ``/robots.txt``: what browsers and crawlers ask every host for. None is a
    delivery URL, so a 400 (a mistake in the URL language) would fill the logs with client errors that are
    nobody's; a plain 404 says there is nothing there. No robots.txt on purpose: RFC 9309 (2.3.1.3) reads
    a 4xx as "no rules", so crawlers may index the images (image search), which is what an image origin
    wants; an operator who wants rules sets them at the CDN or proxy in front, where the host is known."""
    raise NotFound(f"Not found: {request.url.path} (this server is an image origin; see /healthz)")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


def on_s3(service: Service) -> dict[tuple[int, str], tuple[str, S3Endpoint]]:
    """The S3 buckets the service's stores use, each once: (endpoint, bucket) -> (setting, endpoint)."""
    shared = service.store.blobs.shared if isinstance(service.store.blobs, TieredBlobs) else None
    found: dict[tuple[int, str], tuple[str, S3Endpoint]] = {}
    for setting, store in (("CUTOUT_ORIGINALS", service.originals), ("CUTOUT_SHARED_CACHE", shared)):
        if isinstance(store, S3Originals | S3Blobs):
            found.setdefault((id(store.at), store.location.bucket), (setting, store.at))
    return found


def readiness_checks(service: Service) -> Readiness:
    """/readyz's checks for ``service`` (``cutout.readiness``). 503 only for what stops this process
    serving: no model where it should run one, a cache folder it cannot write, checks that do not complete.
    A queue-mode replica with no live worker, with Redis away or with S3 not answering still serves cached
    answers (what a load balancer sends it): ready, and says what is degraded."""
    checks: list[Check] = []
    problems: tuple[str, ...] = ()
    segmenter = service.models.segmenter
    if service.settings.queued and segmenter is not None:
        model = "background removal queued for `cutout worker` (CUTOUT_BACKGROUND_REMOVAL=queue)"
        queue = cast(QueuedModel, segmenter)

        def workers() -> Finding:
            try:  # the id the workers announced (Redis, read at most every few seconds)
                found = Finding(model=f", model {queue.model_id}")
                # The id stays once announced: whether a worker runs now is its own heartbeat's question.
                if not queue.workers_alive():
                    return Finding(degraded=("no background-removal worker is alive (new cut-outs queue and "
                                             "wait)",), model=found.model)
                return found
            except OriginError as exc:  # no worker has announced its model, or Redis cannot be reached
                return Finding(degraded=(f"new cut-outs wait: {exc.public}",))

        checks.append(Check(f"the queue's Redis ({service.settings.state})", workers))
    elif segmenter is not None:
        model = f"background removal with model {segmenter.model_id}"
    elif service.settings.background_removal:
        model = "segmentation model not loaded (background removal answers 501)"
        problems = (model,)
    else:
        model = "background removal off (CUTOUT_BACKGROUND_REMOVAL=0)"
    state, cache_dir = service.settings.state, service.settings.cache_dir

    def writable() -> Finding:
        if service.coordinator.writable():
            return Finding()
        if state:  # shared state: cached answers and renders go on without it
            return Finding(degraded=(f"{state} cannot be written (new generations answer 503)",))
        return Finding(problems=(f"cache {cache_dir} is not writable",))

    # Its own cache folder not answering stops this process; a shared Redis only degrades it.
    checks.append(Check(state or f"cache {cache_dir}", writable, critical=not state))
    for (_, bucket), (setting, endpoint) in on_s3(service).items():
        def storage(bucket: str = bucket, setting: str = setting, endpoint: S3Endpoint = endpoint) -> Finding:
            # At most one HEAD of the bucket every few seconds per endpoint, however often this runs.
            trouble = endpoint.problem(bucket)
            if trouble is None:
                return Finding()
            where = f"the storage of {setting} (bucket {bucket})"
            return Finding(degraded=(f"{where} {trouble}: what needs it is 503",))

        checks.append(Check(f"the storage of {setting} (bucket {bucket})", storage))
    return Readiness(model, checks, problems=problems)


async def readyz(request: Request) -> Response:
    """Answered from the last round of background checks (``cutout.readiness``): never waits on a
    backend, which a stalled S3 or a paused Redis made it do for seconds."""
    readiness: Readiness = request.app.state.readiness
    state = readiness.last()
    if state is None:  # the first probe: starts the checks and waits for their first round (bounded)
        state = await anyio.to_thread.run_sync(readiness.state)
    status, text = readiness.answer(state)
    return PlainTextResponse(text, status, headers={"Cache-Control": "no-store"})


async def metrics_endpoint(request: Request) -> Response:
    service: Service = request.app.state.service
    # Both read files (the coordinator's state, every worker's metric files): not on the event loop.
    try:
        depth = await anyio.to_thread.run_sync(service.coordinator.depth)
    except Overloaded:  # Redis away (StateUnavailable): the scrape is how that is seen, so it answers
        metrics.state_reachable.set(0)
    else:
        metrics.claims_active.set(depth)
        metrics.state_reachable.set(1)
    latest = await anyio.to_thread.run_sync(metrics.render_latest)
    return Response(latest, media_type=metrics.CONTENT_TYPE)


#: The server's own routes; every other GET or HEAD path is a delivery URL (the fast path skips these).
OWN_ROUTES = (
    Route("/healthz", healthz, methods=["GET", "HEAD"]),
    Route("/readyz", readyz, methods=["GET", "HEAD"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
    *api.DOC_ROUTES,
)
#: Paths a browser or crawler asks for on its own: a 404, never parsed as delivery URLs (``not_an_image``).
NOT_IMAGES = tuple(Route(path, not_an_image, methods=["GET", "HEAD"])
                   for path in ("/", "/favicon.ico", "/robots.txt"))  # fmt: skip
ROUTES_HELP = (
    "delivery URLs are GET or HEAD /[<cloud_name>/]image/upload/[<transformations>/][v<version>/]"
    "<public_id>[.<ext>] or /[<cloud_name>/]image/fetch/[<transformations>/]<url>; also GET "
    + ", ".join(route.path for route in OWN_ROUTES)
)


def start_segmenter() -> Segmenter:
    """The model, loaded once per process; ``SegmenterError`` says what is wrong and how to fix it."""
    from transform.segment import load_segmenter

    return load_segmenter()


def _load_segmenter() -> Segmenter | None:
    """For `cutout eager`, which only needs the model for some lines: None (with a warning) if absent."""
    from transform.segment import SegmenterError

    try:
        return start_segmenter()
    except SegmenterError as exc:
        log.warning("background removal disabled: %s", exc)
        return None


def create_app(
    settings: Settings | None = None, *, segmenter: Segmenter | None = None, load_model: bool = True
) -> FastHits:
    """The app. ``segmenter`` injects one (tests, or `cutout serve` with one process); otherwise the
    model is loaded once at start-up unless ``load_model`` is false or settings turn it off."""
    settings = settings or load_settings()
    _, cache_dir = settings.require_paths()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        model = segmenter
        if model is None and load_model and settings.loads_model:
            # A missing or broken model stops the start-up (`cutout serve` checks it before any worker).
            model = await anyio.to_thread.run_sync(start_segmenter)
        cache = DerivativeCache(cache_dir, size_limit=settings.cache_size)
        app.state.service = Service.open(settings, cache, segmenter=model)
        app.state.readiness = readiness_checks(app.state.service)
        app.state.remote = RemoteOriginals(app.state.service.originals, cache_dir / "fetched",
                                           FetchPolicy.from_environ(), settings.fetch_ttl,
                                           settings.max_pixels)  # fmt: skip
        try:
            async with (
                api.running(settings, app.state.service) as app.state.api,
                upload.running(settings, app.state.service) as app.state.uploads,
            ):
                yield
        finally:
            app.state.readiness.close()
            app.state.service.close()
            app.state.remote.close()
            cache.close()
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    catch_all = Route("/{path:cutout_anything}", deliver, methods=["GET", "HEAD"])
    options = Route("/{path:cutout_anything}", preflight, methods=["OPTIONS"])
    # The adapters first: the API's catch-all /v1/{rest} would otherwise answer API4AI's /v1/... paths.
    routes = [*OWN_ROUTES, *NOT_IMAGES, *adapters.ROUTES, *api.ROUTES, *upload.ROUTES, *console.ROUTES,
              catch_all, options]
    handlers = {OriginError: on_origin_error, HTTPException: on_http_error}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    repeats = (api_front.NATIVE, *adapters.FACES)  # repeated POSTs answered before Starlette's routing
    skip = frozenset(route.path for route in (*OWN_ROUTES, *NOT_IMAGES))
    return FastHits(app, skip=skip, repeats=repeats)
