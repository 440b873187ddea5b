"""The Upload and Admin API's routes, in Cloudinary's shapes (``/v1_1/<cloud>/...``). Each handler is
authenticate -> parse -> ``Uploads`` -> JSON; every failure leaves as ``{"error": {"message": ...}}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cutout.cors import header_names
from cutout.gone import client_gone
from cutout.public_url import BadHost, foreign_page, public_base
from cutout.responses import CORS, NOSNIFF
from cutout.upload import auth
from cutout.upload.assets import Base
from cutout.upload.errors import UploadError, bad, from_origin
from cutout.upload.params import Received
from cutout.upload.parts import content_range
from cutout.upload.uploads import Uploads
from grammar.errors import BadRequest, NotFound, OriginError

log = logging.getLogger("cutout.upload")

Handler = Callable[[Request, Uploads], Awaitable[Any]]


#: Browsers upload straight to the Upload API (a signed form, the upload widget, chunked uploads from a
#: page): any page may read its answers, errors included. The Admin API takes the secret itself, never
#: from a browser: its answers carry none of this.
UPLOAD_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Content-Length"}

#: Statuses of the Upload API's refusals that Cloudinary's Node SDK turns into an error with our message;
#: it answers any other one (403, 409) with a bare "unexpected status code" (its Admin API client takes
#: them, and the Python SDK takes all). Those are sent as 400, the Upload API's refusal, message kept.
_UPLOAD_AS_400 = frozenset({403, 409})


def _from_page(request: Request, response: Response) -> bool:
    """A 403 refusing another site's page stays a 403 (the page reads it; Node's SDK, for which 403 turns
    into 400, sends no Origin)."""
    return response.status_code == 403 and foreign_page(request) is not None


def endpoint(handler: Handler, *, cors: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """404 while the Upload API is off or for another cloud name; any error in Cloudinary's shape; with
    ``cors``, every answer readable by any page."""

    async def run(request: Request) -> Response:
        response = await answer(request)
        if cors:  # the Upload API's calls
            response.headers.update(UPLOAD_CORS)
            if response.status_code in _UPLOAD_AS_400 and not _from_page(request, response):
                response.status_code = 400
        return response

    async def answer(request: Request) -> Response:
        uploads: Uploads | None = getattr(request.app.state, "uploads", None)
        try:
            if uploads is None:
                raise UploadError(404, "The Upload API is off on this server (CUTOUT_UPLOAD=1 turns it on)")
            wanted = uploads.settings.cloud_name
            cloud = request.path_params["cloud"]
            if wanted and cloud != wanted:
                raise UploadError(404, f"Unknown cloud name {cloud[:64]}")
            body = await handler(request, uploads)
            if isinstance(body, Response):
                return body
            return JSONResponse(body, headers={"Cache-Control": "no-store"})
        except UploadError as exc:
            return exc.response()
        except OriginError as exc:
            return from_origin(exc).response()
        except ClientDisconnect:
            return client_gone(request)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return UploadError(500, "Internal error").response()

    return run


def base_of(request: Request, uploads: Uploads) -> Base:
    """Where this request's answer points delivery URLs: ``CUTOUT_PUBLIC_URL``, else where it came to."""
    try:
        return Base(public_base(request, uploads.settings.public_url), request.path_params["cloud"])
    except BadHost as exc:
        raise bad(str(exc)) from None


async def _signed(request: Request, uploads: Uploads, unsigned: frozenset[str] = frozenset()) -> Received:
    """The request's parameters once its caller is known: HTTP Basic, or the SDK's signature."""

    def check(params: dict[str, str]) -> None:
        signed = "signature" in params
        if not auth.check_basic_upload(request, uploads.api_key, uploads.api_secret, signed):
            auth.check_signed(params, uploads.api_key, uploads.api_secret, unsigned=unsigned)

    return await uploads.reader.read(request, check)


#: The SDKs send these with the ``tags`` and ``context`` calls but leave them out of the signature.
_NOT_SIGNED_FOR_TAGS = frozenset({"notification_url", "batch_id"})


async def _admin(request: Request, uploads: Uploads) -> dict[str, str]:
    auth.check_admin(request, uploads.api_key, uploads.api_secret)
    return (await uploads.reader.read(request)).params


async def upload(request: Request, uploads: Uploads) -> Any:
    """An upload, or one part of a chunked one (``parts``: the SDKs' ``upload_large``)."""
    part = content_range(request.headers)  # before the body: a bad header is refused unread
    received = await _signed(request, uploads)
    if part is None or part.whole:
        if part is not None and received.file is not None:
            part.check_size(received.file)
        return await uploads.upload(received, base_of(request, uploads))
    upload_id = request.headers.get("x-unique-upload-id")
    return await uploads.upload_part(received, part, upload_id, base_of(request, uploads))


async def explicit(request: Request, uploads: Uploads) -> Any:
    return await uploads.explicit((await _signed(request, uploads)).params, base_of(request, uploads))


async def destroy(request: Request, uploads: Uploads) -> Any:
    return await uploads.destroy((await _signed(request, uploads)).params)


async def rename(request: Request, uploads: Uploads) -> Any:
    return await uploads.manage.rename((await _signed(request, uploads)).params, base_of(request, uploads))


async def tags(request: Request, uploads: Uploads) -> Any:
    return await uploads.manage.tags((await _signed(request, uploads, _NOT_SIGNED_FOR_TAGS)).params)


async def context(request: Request, uploads: Uploads) -> Any:
    return await uploads.manage.context((await _signed(request, uploads, _NOT_SIGNED_FOR_TAGS)).params)


async def delete_resources(request: Request, uploads: Uploads) -> Any:
    return await uploads.manage.delete_resources(await _admin(request, uploads))


async def by_tag(request: Request, uploads: Uploads) -> Any:
    params = await _admin(request, uploads)
    return await uploads.manage.by_tag(request.path_params["tag"], params, base_of(request, uploads))


async def delete_by_tag(request: Request, uploads: Uploads) -> Any:
    return await uploads.manage.delete_resources(
        await _admin(request, uploads), tag=request.path_params["tag"]
    )


async def ping(request: Request, uploads: Uploads) -> Any:
    """``api.ping``: the Admin API answers (and these credentials are good)."""
    await _admin(request, uploads)
    return {"status": "ok"}


async def listing(request: Request, uploads: Uploads) -> Any:
    params = await _admin(request, uploads)
    if request.path_params.get("type") in ("context", "moderations"):
        call = {"context": "resources_by_context", "moderations": "resources_by_moderation"}
        raise bad(f"The Admin API call {call[request.path_params['type']]} is not supported by this server")
    if "type" in request.path_params:
        params = {**params, "type": request.path_params["type"]}
    return await uploads.listing(params, base_of(request, uploads))


async def resource(request: Request, uploads: Uploads) -> Any:
    params = await _admin(request, uploads)
    return await uploads.resource(request.path_params["public_id"], params, base_of(request, uploads))


async def update(request: Request, uploads: Uploads) -> Any:
    params = await _admin(request, uploads)
    return await uploads.update(request.path_params["public_id"], params, base_of(request, uploads))


async def restore(request: Request, uploads: Uploads) -> Any:
    return await uploads.restore(await _admin(request, uploads), base_of(request, uploads))


async def preflight(request: Request, uploads: Uploads) -> Any:
    """A browser's CORS preflight of an Upload API call: POST, with whatever headers it asks for (no
    credentials are involved: the call is signed in its body)."""
    asked = request.headers.get("access-control-request-headers", "").strip()
    if asked and not header_names(asked):
        raise bad("Access-Control-Request-Headers is not a list of header names")
    headers = {"Access-Control-Allow-Methods": "POST, OPTIONS", "Access-Control-Max-Age": "86400"}
    if asked:
        headers["Access-Control-Allow-Headers"] = asked
    return Response(status_code=204, headers=headers)


async def unsupported(request: Request, uploads: Uploads) -> Any:
    """Every other ``/v1_1/`` path: other resource or delivery types are named; the rest is a 404."""
    parts = request.path_params["rest"].split("/")
    if parts[0] == "resources" and len(parts) > 1:
        if parts[1] != "image":
            raise bad(f"resource_type {parts[1][:40]} is not supported: only image")
        if len(parts) > 2 and parts[2] not in ("upload", "tags", "context", "moderations"):
            raise bad(f"type {parts[2][:40]} is not supported: only upload")
        call = "/".join(parts[:3])
        raise bad(f"The Admin API call {request.method} /{call} is not supported by this server")
    elif parts[0] in _ADMIN_CALLS:
        raise bad(f"The Admin API call {request.method} /{parts[0]} is not supported by this server")
    elif parts[0] == "raw" and parts[1:] == ["upload"]:
        raise bad(
            "resource_type raw is not supported: only image (the SDKs' upload_large sends raw unless given "
            "resource_type='image' or 'auto')"
        )
    elif parts[0] in ("video", "raw"):
        raise bad(f"resource_type {parts[0]} is not supported: only image")
    elif parts[0] == "auto":
        raise bad(f"resource_type auto is only for upload: {'/'.join(parts[1:])[:40]} needs image")
    elif parts[0] == "image" and len(parts) == 2 and parts[1] in _UPLOAD_ACTIONS:
        raise bad(f"The Upload API action {parts[1]} takes POST, not {request.method}")
    elif parts[0] == "image" and len(parts) == 2:
        raise bad(
            f"The Upload API action {parts[1][:40]} is not supported: upload, explicit, destroy, rename, "
            "tags and context are"
        )
    raise UploadError(404, f"No Upload or Admin API route {request.url.path[:200]}")


async def resource_list(request: Request) -> Response:
    """``/image/list/<tag>.json``, when ``CUTOUT_RESOURCE_LIST=1``: public (a gallery on another site reads
    it), cached a minute as Cloudinary's CDN caches it; errors are the delivery side's (``OriginError``)."""
    uploads: Uploads | None = getattr(request.app.state, "uploads", None)
    if uploads is None or not uploads.settings.resource_list:
        raise NotFound("The resource list is off on this server (CUTOUT_RESOURCE_LIST=1)")
    wanted = uploads.settings.cloud_name
    if wanted and request.path_params.get("cloud", wanted) != wanted:
        raise NotFound(f"Unknown cloud name {request.path_params['cloud'][:64]}")
    try:
        body = await uploads.manage.resource_list(request.path_params["tag"])
    except UploadError as exc:  # a tag that is not one: the only refusal
        raise BadRequest(exc.message) from None
    return JSONResponse(body, headers={**CORS, **NOSNIFF, "Cache-Control": "public, max-age=60"})


#: Admin API calls outside ``resources`` (named in their refusal; any other path is a 404).
_ADMIN_CALLS = frozenset({"tags", "upload_presets", "upload_mappings", "folders", "metadata_fields",
                          "transformations", "streaming_profiles", "usage", "triggers", "derived_resources",
                          "resources_by_asset_ids", "resources_by_asset_folder"})  # fmt: skip
_UPLOAD_ACTIONS = frozenset({"upload", "explicit", "destroy", "rename", "tags", "context"})
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_UPLOAD = "/v1_1/{cloud}/image"
_RESOURCES = "/v1_1/{cloud}/resources/image"
ROUTES: tuple[Route, ...] = (
    Route(f"{_UPLOAD}/upload", endpoint(upload, cors=True), methods=["POST"]),
    # resource_type auto (the upload widget's, and many a browser form's): this server stores images,
    # so an auto upload is an image upload, and anything else is refused as not an image.
    Route("/v1_1/{cloud}/auto/upload", endpoint(upload, cors=True), methods=["POST"]),
    Route(f"{_UPLOAD}/explicit", endpoint(explicit, cors=True), methods=["POST"]),
    Route(f"{_UPLOAD}/destroy", endpoint(destroy, cors=True), methods=["POST"]),
    Route(f"{_UPLOAD}/rename", endpoint(rename, cors=True), methods=["POST"]),
    Route(f"{_UPLOAD}/tags", endpoint(tags, cors=True), methods=["POST"]),
    Route(f"{_UPLOAD}/context", endpoint(context, cors=True), methods=["POST"]),
    Route(f"{_UPLOAD}/{{action}}", endpoint(preflight, cors=True), methods=["OPTIONS"]),
    Route("/v1_1/{cloud}/auto/upload", endpoint(preflight, cors=True), methods=["OPTIONS"]),
    Route(f"{_RESOURCES}/upload", endpoint(delete_resources), methods=["DELETE"]),
    Route(f"{_RESOURCES}/tags/{{tag:path}}", endpoint(by_tag), methods=["GET"]),
    Route(f"{_RESOURCES}/tags/{{tag:path}}", endpoint(delete_by_tag), methods=["DELETE"]),
    Route(_RESOURCES, endpoint(listing), methods=["GET"]),
    Route(f"{_RESOURCES}/{{type}}", endpoint(listing), methods=["GET"]),
    Route(f"{_RESOURCES}/upload/restore", endpoint(restore), methods=["POST"]),
    Route(f"{_RESOURCES}/upload/{{public_id:path}}", endpoint(resource), methods=["GET"]),
    Route(f"{_RESOURCES}/upload/{{public_id:path}}", endpoint(update), methods=["POST"]),
    Route("/v1_1/{cloud}/ping", endpoint(ping), methods=["GET"]),
    Route("/{cloud}/image/list/{tag}.json", resource_list, methods=["GET", "HEAD"]),
    Route("/image/list/{tag}.json", resource_list, methods=["GET", "HEAD"]),
    Route("/v1_1/{cloud}/{rest:path}", endpoint(unsupported), methods=_ANY),
)
