"""The console's routes, all under ``/console`` and all 404 unless ``CUTOUT_CONSOLE=1``:

- ``GET /console``: the page; ``GET /console/static/...``: its CSS and JavaScript modules, from the package
  (no build step, nothing fetched from elsewhere: the page's Content-Security-Policy allows only this
  server);
- ``GET /console/config``: what the page needs to know (cloud name, API key, whether uploads are on);
- ``GET /console/check``: live validation of a transformation string (``check.py``);
- ``POST /console/sign``: the Upload API's signature (``cutout.upload.auth.sign``) for the page's upload
  parameters, made here so the secret never reaches the browser.

Everything else the page does goes through the Upload/Admin API and the delivery URLs, like any client.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cutout import jsonbody
from cutout.console import access
from cutout.console.check import Target, check
from cutout.public_url import BadHost, foreign_page, request_base
from cutout.service import Service
from cutout.settings import Settings
from cutout.upload.auth import sign as api_sign_request

#: The page may talk to this server only: no CDN, no fonts, no analytics (and the browser test checks it).
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_TRANSFORMATION = 4096
#: What the page may ask to have signed: the upload options it offers, nothing else.
SIGNABLE = frozenset({
    "public_id", "folder", "use_filename", "unique_filename", "overwrite", "tags", "background_removal",
})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # Cloudinary's error shape, which the page already reads from the Upload/Admin API.
    return JSONResponse({"error": {"message": message}}, status, headers={**PAGE_HEADERS, **(headers or {})})


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def refusal(request: Request, settings: Settings) -> Response | None:
    """None when the console is on and the request may use it; else the answer to send."""
    if not settings.console:
        raise HTTPException(404)
    try:
        access.check(request, settings)
    except access.Refused as exc:
        headers = {"WWW-Authenticate": access.REALM} if exc.status == 401 else {}
        return _error(exc.status, exc.message, headers)
    return None


Handler = Callable[[Request, Service], Awaitable[Response]]


def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        service = _service(request)
        try:
            return refusal(request, service.settings) or await handler(request, service)
        except BadHost as exc:  # a URL the answer would carry (a snippet, the page's own origin)
            return _error(400, str(exc))

    return run


class GuardedStatic:
    """The page's static files behind the same door as the page, marked private (revalidated each use
    by ETag): a shared cache in front (the nginx recipes cache 200s for 30 days) would otherwise hand
    them out without sign-in, and old modules with a new page after an upgrade."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        answer = refusal(request, _service(request).settings)
        if answer is not None:
            await answer(scope, receive, send)
            return

        async def private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                message = {**message, "headers": [*headers, (b"cache-control", b"private, no-cache")]}
            await send(message)

        await self.app(scope, receive, private)


def cloud(settings: Settings) -> str:
    return settings.cloud_name or "demo"


def base_url(request: Request) -> str:
    """The page's own origin as its browser sees it (https behind a TLS proxy that says so)."""
    return request_base(request)


async def page(request: Request, service: Service) -> Response:
    html = resources.files("cutout.console").joinpath("static/index.html").read_bytes()
    return Response(html, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


async def config(request: Request, service: Service) -> Response:
    settings = service.settings
    return JSONResponse({
        "cloud": cloud(settings),
        "api_key": settings.api_key or "",
        "upload": getattr(request.app.state, "uploads", None) is not None,
        "signed": settings.api_secret is not None,
        "background_removal": service.models.segmenter is not None,
        "retry_after": settings.retry_after,
    }, headers=PAGE_HEADERS)


async def check_endpoint(request: Request, service: Service) -> Response:
    query = request.query_params
    unknown = sorted(set(query) - {"transformation", "public_id", "version"})
    if unknown:
        return _error(400, f"Unknown parameter {unknown[0]!r}: expected transformation, public_id, version")
    counts = Counter(name for name, _ in query.multi_items())  # one pass: a query may hold thousands
    repeated = sorted(name for name, n in counts.items() if n > 1)
    if repeated:  # else the last one was checked and the others passed over
        return _error(400, f"{repeated[0]} is given more than once")
    transformation = query.get("transformation", "").strip()
    public_id = query.get("public_id", "")
    version_text = query.get("version", "")
    if not public_id:
        return _error(400, "Missing public_id: the original the transformation is for")
    if len(transformation) > MAX_TRANSFORMATION:
        return _error(400, f"transformation is longer than {MAX_TRANSFORMATION} characters")
    # A URL's v<version> has at most 18 digits too (grammar/path.py); int() fails past 4300.
    if version_text and not (version_text.isascii() and version_text.isdigit() and len(version_text) <= 18):
        return _error(400, f"version must be up to 18 digits, got {version_text[:40]!r}")
    target = Target(base_url(request), cloud(service.settings), public_id, int(version_text or 0) or None)
    answer = await anyio.to_thread.run_sync(check, service, target, transformation,
                                            request.headers.get("accept"))
    return JSONResponse(answer, headers=PAGE_HEADERS)


async def sign(request: Request, service: Service) -> Response:
    settings = service.settings
    # JSON only: a form from another site cannot send it without a CORS preflight, which is refused.
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _error(415, "Send the parameters to sign as application/json")
    foreign = foreign_page(request)
    if foreign is not None:
        return _error(403, f"Signing is for the console's own page, not another site's ({foreign})")
    try:
        body: Any = jsonbody.loads(await request.body())
    except jsonbody.JsonBodyError as exc:
        return _error(400, f"The body is not valid JSON: {exc}")
    if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
        return _error(400, "Send a JSON object of upload parameters with string values")
    unknown = sorted(set(body) - SIGNABLE)
    if unknown:
        return _error(400, f"Parameter {unknown[0]!r} is not signed by the console: "
                           f"expected some of {', '.join(sorted(SIGNABLE))}")
    params = {**body, "timestamp": str(int(time.time()))}
    answer = {"params": params, "api_key": settings.api_key or ""}
    if settings.api_secret is not None:
        answer["signature"] = api_sign_request(params, settings.api_secret)
    return JSONResponse(answer, headers=PAGE_HEADERS)


async def slash(request: Request, service: Service) -> Response:
    return RedirectResponse("/console", 308)


ROUTES = [
    Route("/console", guarded(page), methods=["GET", "HEAD"]),
    Route("/console/", guarded(slash), methods=["GET", "HEAD"]),
    Route("/console/config", guarded(config), methods=["GET"]),
    Route("/console/check", guarded(check_endpoint), methods=["GET"]),
    Route("/console/sign", guarded(sign), methods=["POST"]),
    Mount("/console/static", GuardedStatic(StaticFiles(packages=[("cutout.console", "static")]))),
]
