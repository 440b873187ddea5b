"""The starlette app: delivery routes, health, metrics, and the one error handler."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from cache import DerivativeCache
from cutout import metrics
from cutout.fasthits import FastHits
from cutout.responses import CORS, answer
from cutout.service import Delivered, Origin
from cutout.settings import Settings, load_settings
from grammar.errors import OriginError
from transform.seam import Segmenter

log = logging.getLogger("cutout.app")

def header_safe(text: str) -> str:
    """Header values must be latin-1 without control characters; public ids may be anything."""
    return "".join(c if " " <= c <= "~" else f"%{ord(c):02X}" if ord(c) < 256 else "?" for c in text)


def image_response(request: Request, delivered: Delivered, max_age: int) -> Response:
    status, headers, body = answer(delivered, max_age, request.headers.get("if-none-match", ""))
    return Response(body, status_code=status, headers=headers)


async def deliver(request: Request) -> Response:
    origin: Origin = request.app.state.origin
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    try:
        delivered = await origin.deliver(raw_path.decode("latin-1"), request.headers.get("accept"))
    except OriginError:
        raise
    except Exception as exc:
        # A bug, not the client's doing: logged with its traceback, answered with a generic 500.
        log.exception("unexpected error serving %s", request.url.path)
        raise OriginError() from exc
    return image_response(request, delivered, origin.settings.max_age)


async def on_origin_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OriginError)
    if exc.status >= 500:
        log.warning("%s -> %d %s (%s)", request.url.path, exc.status, exc.public, exc.detail)
    no_store = exc.status == 423 or exc.status >= 500
    headers = {
        **CORS,
        **exc.headers,
        "X-Cld-Error": header_safe(exc.public),
        "Cache-Control": "no-store" if no_store else "public, max-age=60",
    }
    metrics.requests_total.labels(str(exc.status)).inc()
    return PlainTextResponse(exc.public + "\n", exc.status, headers=headers)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    origin: Origin = request.app.state.origin
    problems = []
    if origin.segmenter is None:
        problems.append("segmentation model not loaded (background removal answers 501)")
    if not await anyio.to_thread.run_sync(origin.cache.writable):
        problems.append(f"cache {origin.cache.directory} is not writable")
    no_store = {"Cache-Control": "no-store"}
    if problems:
        return PlainTextResponse("not ready: " + "; ".join(problems) + "\n", 503, headers=no_store)
    return PlainTextResponse("ready\n", headers=no_store)


async def metrics_endpoint(request: Request) -> Response:
    return Response(metrics.render_latest(), media_type=metrics.CONTENT_TYPE)


def _load_segmenter() -> Segmenter | None:
    from transform.segment import ModelMissing, load_segmenter

    try:
        return load_segmenter()
    except ModelMissing as exc:
        log.warning("background removal disabled: %s", exc)
        return None


def create_app(
    settings: Settings | None = None, *, segmenter: Segmenter | None = None, load_model: bool = True
) -> FastHits:
    """The app. ``segmenter`` injects one (tests); otherwise the model is loaded once at start-up."""
    settings = settings or load_settings(os.environ)
    _, cache_dir = settings.require_paths()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        model = segmenter
        if model is None and load_model:
            model = await anyio.to_thread.run_sync(_load_segmenter)
        cache = DerivativeCache(cache_dir, size_limit=settings.cache_size)
        app.state.origin = Origin(settings, cache, segmenter=model)
        try:
            yield
        finally:
            app.state.origin.close()
            cache.close()
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/{path:path}", deliver, methods=["GET", "HEAD"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={OriginError: on_origin_error})
    return FastHits(app)
