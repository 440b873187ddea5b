"""Perfect Corp YouCam AI Photo Background Removal (seed 003): the file step, the task, the polling.

    POST /s2s/v2.0/file/sod            {"files": [{content_type, file_name, file_size}]}
                                       -> data.files[].file_id and requests[] {method PUT, url, headers}
    PUT  <the upload URL>              the bytes (served by cutout: a capability URL, as a presigned one)
    POST /s2s/v2.0/task/sod            {"src_file_id": ...} or {"src_file_url": ...} -> data.task_id
    GET  /s2s/v2.0/task/sod/<task_id>  data.task_status running|success|error, results.url, dst_id

From the seed: the steps, Bearer auth, JPG and PNG under 10 MB with the longest side at most 4096, the
statuses, the error codes (exceed_max_filesize, invalid_parameter, error_download_image,
error_decode_image, error_inference, unknown_internal_error, InvalidTaskId), a result ``dst_id`` to chain
without uploading again, a task that was not polled within its ``polling_interval`` timing out
(InvalidTaskId), and a file never uploaded answering 404. Where the seed is silent, the JSON shapes are
Perfect Corp's v2.0 reference as its clients read it: ``{"status": 200, "data": {...}}`` and errors as
``{"status", "error_code", "error"}``.

Deliberate leniency: polling_interval says 2 s, but a task times out only after ``POLL_TIMEOUT`` without
a poll (a slow client is not punished for a missed beat); the result URL is the delivery URL of the
result, valid as long as the cache keeps it rather than for a limited time.

A file id belongs to the key whose file step handed it out, as a task belongs to the key that made it:
another key naming it in a task is answered as for a file never uploaded (the seed's 404), whether or not
it was. The id carries a tag of its key, signed with it, so any worker checks it without a read.

What each step costs a repeated photo (the flow has five requests where the native async one has three,
so each is kept to bookkeeping): the file step writes nothing (the file id is signed: it carries its
size, expiry and key's tag); the PUT finds the photo by its hash in memory, as the native POST does, and
records the upload in one thread hop; a task on a result already made is created successful (one
record, no driver), so the first poll answers it; a poll is one thread hop; the result URL is a
delivery URL, served by the delivery hot path."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cutout import jsonbody
from cutout.adapters import base
from cutout.api import Api, auth
from cutout.api.errors import ApiError, request_base, unknown_parameter
from cutout.api.remover import Job
from cutout.api.tasks import ERROR, FINAL, Tasks, visible
from transform.decode import sniff

MAX_BYTES = 10 * 1024 * 1024  # the seed: "<10MB"
MAX_SIDE = 4096
TYPES = ("image/jpg", "image/jpeg", "image/png")
POLLING_INTERVAL_MS = 2000
POLL_TIMEOUT = 30.0
UPLOADS = "/s2s/v2.0/file/sod/upload/"
# ``:path``: an id with a %2F in it (decoded before routing) is this vendor's refusal, not a delivery URL.
UPLOAD = UPLOADS + "{file_id:path}"
#: The native options of the seed's one output (a PNG cut-out), and what its tasks carry to be known.
OPTIONS = {"format": "png"}
CONTEXT: dict[str, Any] = {"perfectcorp": {}}
#: Native error codes -> the seed's.
_CODES = {"invalid_file_type": "error_decode_image", "failed_to_read_image": "error_decode_image",
          "failed_image_download": "error_download_image", "download_timeout": "error_download_image",
          "forbidden_url": "error_download_image", "file_too_large": "exceed_max_filesize",
          "model_unavailable": "error_inference", "internal_error": "unknown_internal_error",
          "queue_full": "unknown_internal_error", "still_processing": "unknown_internal_error",
          "rate_limited": "rate_limited"}  # fmt: skip


#: What the seed's engine reports as a task's error, not as the creating request's refusal.
_ENGINE_SIDE = frozenset({"error_download_image", "error_decode_image", "exceed_max_filesize"})


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        body = {"status": self.status, "error_code": self.code, "error": self.message}
        return JSONResponse(body, self.status, headers={"Cache-Control": "no-store"})


def error(exc: ApiError) -> Response:
    if exc.code == "auth_failed":
        return Refused(401, "InvalidApiKey", "Send your API key as Authorization: Bearer <key>").response()
    code = _CODES.get(exc.code, "invalid_parameter" if exc.status < 500 else "unknown_internal_error")
    status = exc.status if exc.status >= 500 or exc.code in ("not_found", "rate_limited") else 400
    answer = Refused(status, code, exc.detail).response()
    answer.headers.update(exc.headers)
    return answer


def guarded(handler: base.Handler) -> base.Handler:
    async def run(request: Request, api: Api) -> Response:
        try:
            return await handler(request, api)
        except Refused as refused:
            return refused.response()

    return run


async def _json(request: Request, api: Api) -> dict[str, Any]:
    base.limited(request, api, 64 * 1024)
    try:
        body = jsonbody.loads(await request.body())
    except jsonbody.JsonBodyError as exc:
        raise Refused(400, "invalid_parameter", f"The body must be a JSON object: {exc}") from None
    if not isinstance(body, dict):
        raise Refused(400, "invalid_parameter", "The body must be a JSON object")
    return body


def ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"status": 200, "data": data}, headers={"Cache-Control": "no-store"})


# -- files ---------------------------------------------------------------------------------------------------
#: A file step's fields: anything else was ignored unseen (the task step refuses what it does not read).
_FILE_FIELDS = frozenset({"content_type", "file_name", "file_size"})


async def create_files(request: Request, api: Api) -> Response:
    body = await _json(request, api)
    unknown = sorted(set(body) - {"files"})
    if unknown:
        raise Refused(400, "invalid_parameter", unknown_parameter(unknown[0], ("files",)))
    files = body.get("files")
    if not isinstance(files, list) or not files:
        raise Refused(
            400, "invalid_parameter", "files must be a list of {content_type, file_name, file_size}"
        )
    answered = []
    for entry in files:
        if not isinstance(entry, dict):
            raise Refused(400, "invalid_parameter", "each file must be an object")
        extra = sorted(set(entry) - _FILE_FIELDS)
        if extra:
            raise Refused(400, "invalid_parameter", f"unknown parameter {extra[0]!r} of a file")
        kind, name, size = entry.get("content_type"), entry.get("file_name"), entry.get("file_size")
        if kind not in TYPES:
            raise Refused(400, "invalid_parameter", f"content_type must be one of {', '.join(TYPES)}")
        if not isinstance(name, str) or not name:
            raise Refused(400, "invalid_parameter", "file_name is required")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise Refused(400, "invalid_parameter", "file_size must be the file's size in bytes")
        if size >= MAX_BYTES:
            raise Refused(400, "exceed_max_filesize", f"The file must be under {MAX_BYTES} bytes")
        file_id = _file_id(api, size, auth.caller(request))
        # An API route, not a delivery URL: where this request came to (CUTOUT_PUBLIC_URL names delivery's
        # host, which may be a CDN that does not take PUTs).
        url = request_base(request) + UPLOADS + file_id
        headers = {"Content-Type": kind, "Content-Length": str(size)}
        answered.append({"content_type": kind, "file_name": name, "file_id": file_id,
                         "requests": [{"method": "PUT", "url": url, "headers": headers}]})  # fmt: skip
    return ok({"files": answered})


def _file_id(api: Api, size: int, owner: str) -> str:
    """A file id that carries what its upload URL allows, signed: 128 random bits, the declared size and
    the expiry (CUTOUT_TASK_TTL from now, as a presigned URL's), so handing it out writes nothing and
    any worker can check it; only its first use is recorded (by the PUT). And whose it is: the tag of
    ``owner`` (``_owner_tag``), which only that key's tasks match (``_owned``)."""
    nonce = uuid.uuid4().hex
    expires = int(time.time() + api.settings.task_ttl)
    body = f"{nonce}-{size:x}-{expires:x}-{_owner_tag(api, nonce, owner)}"
    return f"{body}-{_signature(api, body)}"


def _signed(api: Api, file_id: str) -> list[str] | None:
    """A file id's parts (random bits, size, expiry, owner tag) when this server signed it, else None.
    An id from before ids carried their key's tag has three parts and no tag."""
    body, _, signature = file_id.rpartition("-")
    parts = body.split("-")
    if len(parts) not in (3, 4):
        return None
    return parts if hmac.compare_digest(signature.encode(), _signature(api, body).encode()) else None


def _declared(api: Api, file_id: str) -> int | None:
    """The size a file id was handed out for; None for one this server did not sign, or expired."""
    parts = _signed(api, file_id)
    if parts is None:
        return None
    size, expires = int(parts[1], 16), int(parts[2], 16)  # hex: what this server signed
    return size if time.time() <= expires else None


def _owned(api: Api, file_id: str, owner: str) -> bool:
    """Whether the caller ``owner`` may name ``file_id`` in a task: an id this server handed out to the
    same key. An id without a tag (from before they had one) is the open API's only ('' : no keys), so
    with keys it is as unknown as any other key's."""
    parts = _signed(api, file_id)
    if parts is None:
        return False
    if len(parts) == 3:
        return owner == ""
    return hmac.compare_digest(parts[3].encode(), _owner_tag(api, parts[0], owner).encode())


def _owner_tag(api: Api, nonce: str, owner: str) -> str:
    """The caller's tag in a file id: keyed by the server's secret and mixed with the id's random bits,
    so an id names no key and two ids of one key have unrelated tags; the id's signature covers it."""
    return _signature(api, f"owner\0{nonce}\0{owner}")[:16]


def _signature(api: Api, body: str) -> str:
    """HMAC-SHA256 under a key derived from the server's secrets (CUTOUT_API_SECRET and the API keys),
    which every worker and replica shares. A server with neither (CUTOUT_API_OPEN) has no secret to
    sign with: there anyone may store an image through the API already, and an upload URL made up
    without the file step grants nothing more."""
    settings = api.settings
    secret = "\0".join(["cutout perfectcorp upload", settings.api_secret or "", *sorted(settings.api_keys)])
    key = hashlib.sha256(secret.encode()).digest()
    return hmac.new(key, body.encode(), "sha256").hexdigest()[:32]


async def upload(request: Request, api: Api) -> Response:
    """The upload URL: only a file id handed out by the file step and not expired (its signature says
    so), once, with its declared size (what a presigned URL allows); the id is the credential, as a
    presigned URL's signature is."""
    file_id = request.path_params["file_id"]
    if not file_id:  # an upload URL cut short: the client's 400 naming it, not "unknown" (403)
        raise Refused(400, "invalid_parameter", f"file_id is empty: PUT {UPLOADS}<file_id>")
    size = _declared(api, file_id)
    if size is None:
        raise Refused(403, "invalid_parameter", "This upload URL is unknown, expired or already used")
    base.limited(request, api, MAX_BYTES)
    data = await request.body()
    if len(data) != size:
        raise Refused(400, "invalid_parameter", f"Expected {size} bytes, got {len(data)}")
    undecodable = sniff(data[:16]) not in ("jpg", "png")
    record = {"undecodable": True} if undecodable else await _stored(api, data)
    if not await anyio.to_thread.run_sync(_first_use, api.tasks, file_id, record):
        raise Refused(403, "invalid_parameter", "This upload URL is unknown, expired or already used")
    base.remember_note(api, f"perfectcorp-file:{file_id}", record)  # the task that follows reads it here
    return Response(status_code=200)


def _first_use(tasks: Tasks, file_id: str, record: dict[str, Any]) -> bool:
    """Record the upload of ``file_id`` unless it was uploaded before (one thread hop for both)."""
    if tasks.noted(f"perfectcorp-file:{file_id}") is not None:
        return False
    tasks.note(f"perfectcorp-file:{file_id}", record)
    return True


async def _stored(api: Api, data: bytes) -> dict[str, Any]:
    """The upload's record: its public id, through the native POST's hot path (a photo sent before, by
    any face, is found by its hash in memory: no thread hop; the job it will get is made now for the same
    reason), or the refusal of an image the API will not take (undecodable past its magic bytes, too
    many pixels), which is not stored: the task that names it answers the refusal, as the seed has it."""
    try:
        return {"public_id": (await base.carried_job(api, data, OPTIONS)).public_id}
    except ApiError:
        pass
    try:
        return {"public_id": await base.store(api, data=data)}
    except ApiError as exc:
        if exc.code not in _IMAGE_REFUSALS:
            raise
        return {"refused": {"code": exc.code, "message": exc.detail}}


#: What the API says of the image itself; anything else (no model, a full queue) answers the PUT.
_IMAGE_REFUSALS = frozenset({"invalid_file_type", "failed_to_read_image", "resolution_too_high"})


# -- tasks ---------------------------------------------------------------------------------------------------
async def create_task(request: Request, api: Api) -> Response:
    body = await _json(request, api)
    file_id, url = body.get("src_file_id"), body.get("src_file_url")
    known = ("src_file_id", "src_file_url")
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise Refused(400, "invalid_parameter", unknown_parameter(unknown[0], known))
    if (file_id is None) == (url is None) or not isinstance(file_id or url, str):
        raise Refused(400, "invalid_parameter", "Give one of src_file_id or src_file_url")
    try:
        source = _by_id(api, str(file_id), auth.caller(request)) if file_id else _by_url(api, str(url))
        public_id = await source
    except (Refused, ApiError) as exc:  # the engine's failures (seed: the task's status becomes 'error')
        code, message = (exc.code, exc.message) if isinstance(exc, Refused) else (exc.code, exc.detail)
        if code not in _ENGINE_SIDE and _CODES.get(code) not in _ENGINE_SIDE:
            raise
        failed = await base.failed_task(api, code, message, CONTEXT, auth.caller(request))
        return ok({"task_id": failed["task_id"]})
    width, height = await base.dimensions(api, public_id)
    if max(width, height) > MAX_SIDE:
        raise Refused(400, "invalid_parameter", f"The image is {width}x{height}; the longest side must "
                      f"not exceed {MAX_SIDE}")  # fmt: skip
    job = await base.job(api, public_id, OPTIONS)
    # A result already made (the same photo before, by any face) makes the task successful at once: one
    # record written, no driver, and the first poll answers it.
    made = api.remover.ready(job)
    if made is not None:
        task = await base.finished_task(api, job, made, CONTEXT, auth.caller(request))
    else:
        task = await base.queue(api, job, None, CONTEXT, auth.caller(request))
    return ok({"task_id": task["task_id"]})


async def _by_id(api: Api, file_id: str, owner: str) -> str:
    """An uploaded file's original, or a result's (its dst_id is its task's id: made again from the
    cache, stored as an original). The caller's own only: another key's file or task is answered as one
    never uploaded, before anything about it is read (uploaded or not, decodable or not)."""
    known: dict[str, Any] | None = None
    if file_id.startswith("tsk_"):
        task = await base.task(api, file_id, owner)
        known = {"job": task["job"]} if task is not None and "perfectcorp" in task["job"] else None
    elif _owned(api, file_id, owner):
        name = f"perfectcorp-file:{file_id}"
        known = base.written(api, name) or await base.noted(api, name)
    if known is None:  # the seed: a file not uploaded to its URL is a 404
        raise Refused(404, "unknown_internal_error", f"File {file_id} was not uploaded (or has expired)")
    if known.get("undecodable"):
        raise Refused(400, "error_decode_image", "The file is not a JPG or PNG image")
    if "refused" in known:
        raise ApiError(known["refused"]["code"], known["refused"]["message"])
    if "public_id" in known:
        return str(known["public_id"])
    made = await base.make(api, Job.from_json(known["job"]))
    return await base.store(api, data=made.data)


async def _by_url(api: Api, url: str) -> str:
    data = await base.download(api, url)
    if len(data) >= MAX_BYTES:
        raise Refused(400, "exceed_max_filesize", f"The file must be under {MAX_BYTES} bytes")
    if sniff(data[:16]) not in ("jpg", "png"):
        raise Refused(400, "error_decode_image", "The file is not a JPG or PNG image")
    return await base.store(api, data=data)


async def get_task(request: Request, api: Api) -> Response:
    task_id = request.path_params["task_id"]
    if not task_id:  # "No task  (unknown, or timed out...)" blamed the server's memory for an empty id
        raise Refused(400, "invalid_parameter", "task_id is empty: GET /s2s/v2.0/task/sod/<task_id>")
    task = await anyio.to_thread.run_sync(_polled, api.tasks, task_id, auth.caller(request))
    if task is None:
        raise Refused(400, "InvalidTaskId", f"No task {task_id} (unknown, or timed out: poll within the "
                      "polling_interval)")  # fmt: skip
    if task["status"] not in FINAL:
        return ok({"task_status": "running", "polling_interval": POLLING_INTERVAL_MS})
    if task["status"] == ERROR:
        native = task["error"]["code"]
        code = native if native in _ENGINE_SIDE else _CODES.get(native, "unknown_internal_error")
        return ok({"task_status": "error", "error": code, "error_message": task["error"]["message"]})
    job = task["job"]
    url = base.result_url(request_base(request), api, job["public_id"], job["transformation"])
    dst_id = task["task_id"]
    return ok({"task_status": "success", "results": {"url": url, "dst_id": dst_id}, "dst_id": dst_id})


def _polled(tasks: Tasks, task_id: str, owner: str) -> dict[str, Any] | None:
    """The task as this poll finds it (None: unknown, another key's, not this vendor's, or timed out),
    the poll noted while it runs: one thread hop for the task, its last poll and the note."""
    task = visible(tasks.get(task_id), owner)
    if task is None or "perfectcorp" not in task["job"]:
        return None
    # Polled last at creation, or at the last poll that found it running.
    if time.time() - (tasks.noted(f"perfectcorp-poll:{task_id}") or task["created_at"]) > POLL_TIMEOUT:
        return None
    if task["status"] not in FINAL:
        tasks.note(f"perfectcorp-poll:{task_id}", time.time())
    return task


_KEY = base.header_key(bearer=True)
ROUTES = (
    Route("/s2s/v2.0/file/sod", base.endpoint(guarded(create_files), _KEY, error), methods=["POST"]),
    Route(UPLOAD, base.endpoint(guarded(upload), None, error), methods=["PUT"]),
    Route("/s2s/v2.0/task/sod", base.endpoint(guarded(create_task), _KEY, error), methods=["POST"]),
    Route("/s2s/v2.0/task/sod/{task_id:path}", base.endpoint(guarded(get_task), _KEY, error),
          methods=["GET"]),  # fmt: skip
)
