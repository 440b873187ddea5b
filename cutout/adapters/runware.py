"""Runware (seed 002): ``POST /v1`` with a JSON array of tasks, and the same tasks over the WebSocket at
``/v1`` that Runware's own SDKs speak (``Runware(api_key, url="ws://<cutout>/v1")``).

Task types: ``imageBackgroundRemoval`` (the seed's fields), ``imageUpload`` (what the Python SDK sends
first for a local file: it answers the ``imageUUID`` the removal then names), ``getResponse`` (polling
an ``deliveryMethod: async`` task), and on the WebSocket ``authentication`` and ``ping``.

Sources: the seed for the task's fields and the response's; Runware's public docs where it is silent:
the ``{"errors": [{code, message, parameter, taskType, taskUUID}]}`` envelope (platform/errors), the key
as ``Authorization: Bearer`` or an ``authentication`` task first in the array (platform/authentication),
``getResponse`` with statuses ``processing|success|error`` (platform/task-polling), and a webhook POST of
the complete task response to ``webhookURL`` (platform/webhooks); the defaults (``outputType`` URL,
``outputFormat`` PNG, ``rgba`` [255, 255, 255, 0], alpha matting thresholds 240 / 10 / 10 in 1-255) are
the imageBackgroundRemoval reference page's. Error codes are Runware-style camelCase; Runware says its
own codes are still being standardised.

Every image the adapter names with an ``imageUUID`` (an upload, a result) is a note beside the native
tasks (``Tasks.note``, kept CUTOUT_TASK_TTL): a result's note is its job, so naming it later makes it
again from the cache, never a second store of results. The UUID is derived from the image and the caller
(a UUID v4 in form: its version bits set on a sha256), so the same image keeps one UUID for one key.
An image UUID belongs to the key that made it, as a task does: its note keeps the caller (``owner_of``
its key), and another key naming it is answered as for an unknown UUID (``invalidImageUUID``); another
key sending the same image gets a UUID of its own, so nobody learns that an image was sent before."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from cutout import jsonbody
from cutout.adapters import base
from cutout.api import Api, auth, front
from cutout.api.errors import ApiError, request_base, unknown_parameter
from cutout.api.intake import Intake, decode_b64
from cutout.api.remover import HOT_BYTES, Job, Result
from cutout.api.runner import PAYLOADS
from cutout.api.tasks import ERROR, FINAL, SUCCESS, owner_of, visible
from cutout.memory import BoundedDict, ByContent
from grammar.image_formats import MIME
from grammar.path import versioned_source

REMOVAL = "imageBackgroundRemoval"
FORMATS = {"PNG": "png", "JPG": "jpg", "JPEG": "jpg", "WEBP": "webp"}
OUTPUT_TYPES = {"URL": "imageURL", "dataURI": "imageDataURI", "base64Data": "imageBase64Data"}
THRESHOLDS = {"alphaMattingForegroundThreshold": 240, "alphaMattingBackgroundThreshold": 10,
              "alphaMattingErodeSize": 10}  # fmt: skip
#: Fields of an imageBackgroundRemoval task: what it is, how it is answered, and the options.
FIELDS = frozenset({"taskType", "taskUUID", "inputImage", "outputType", "outputFormat", "outputQuality",
                    "includeCost", "rgba", "postProcessMask", "returnOnlyMask", "alphaMatting", "model",
                    "deliveryMethod", "webhookURL", "settings", *THRESHOLDS})  # fmt: skip
#: The other task types' fields (the SDK's imageUpload; Runware's task polling): nothing else is read.
TASK_FIELDS = {"imageUpload": frozenset({"taskType", "taskUUID", "image"}),
               "getResponse": frozenset({"taskType", "taskUUID"})}  # fmt: skip
#: What the settings object holds (the SDK's IBackgroundRemovalSettings): the removal's own options, not
#: the task's identity or delivery (a taskUUID there answered the task under another UUID).
SETTINGS = frozenset({"returnOnlyMask", "alphaMatting", "postProcessMask", "rgba", *THRESHOLDS})
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
#: A URL's scheme is case-insensitive (RFC 3986): HTTPS://... was read as base64 and refused.
_URL = re.compile(r"https?://", re.I)
MAX_BODY = 64 * 1024 * 1024


class TaskError(Exception):
    """One task's failure, in Runware's error object."""

    def __init__(
        self, code: str, message: str, parameter: str | None = None, status: int = 400,
        headers: dict[str, str] | None = None, task_type: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.code, self.message, self.parameter, self.status = code, message, parameter, status
        self.headers = headers or {}  # Retry-After, when the answer is to try again
        self.task_type = task_type  # the task's type where the task itself is not at hand

    def body(self, task: dict[str, Any]) -> dict[str, Any]:
        error = {"code": self.code, "message": self.message, "taskType": task.get("taskType", self.task_type),
                 "taskUUID": task.get("taskUUID")}  # fmt: skip
        if self.parameter is not None:
            error["parameter"] = self.parameter
        return error


def _camel(code: str) -> str:
    head, *rest = code.split("_")
    return head + "".join(word.capitalize() for word in rest)


#: Native option names -> Runware's, for the parameter an error names.
_NAMES = {"image_url": "inputImage", "image_file_b64": "inputImage", "url": "inputImage", None: None,
          "channels": "returnOnlyMask", "bg_color": "rgba", "format": "outputFormat",
          "fine_edges": "alphaMatting"}  # fmt: skip


def from_api(exc: ApiError) -> TaskError:
    parameter = _NAMES.get(exc.parameter, exc.parameter)
    if exc.code == "auth_failed":
        return TaskError("invalidApiKey", "Invalid API key", "apiKey", 401)
    return TaskError(_camel(exc.code), exc.detail, parameter, exc.status, exc.headers)


def _carried_fault(exc: ApiError, field: str) -> TaskError:
    """The native error of an image carried in ``field`` (base64, a data URI), named as that field: the
    native API calls a carried image "the body", which here is the JSON of the tasks, and names no
    parameter ("the body is not a JPEG, PNG..." for an inputImage that is base64 of no image)."""
    failed = from_api(exc)
    if exc.parameter is None:
        detail = exc.detail
        failed.message = field + detail.removeprefix("the body") if detail.startswith("the body") else (
            f"{field}: {detail}")  # fmt: skip
        failed.parameter = field
    return failed


def _check(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise TaskError(f"invalid{field[0].upper()}{field[1:]}", message, field)


class Session:
    """One request's (or one socket's) tasks: the server, its base URL for result URLs, and the caller
    (``owner_of`` its key), whose async tasks alone ``getResponse`` reads."""

    def __init__(self, api: Api, base_url: str, owner: str = "") -> None:
        self.api = api
        self.base_url = base_url
        self.owner = owner
        self.ignored: list[str] = []

    async def run(self, task: Any) -> dict[str, Any]:
        if not isinstance(task, dict):
            raise TaskError("invalidTask", "Each task must be a JSON object")
        kind = task.get("taskType")
        task_uuid = _task_uuid(task)
        if isinstance(kind, str) and kind in TASK_FIELDS:  # a field these do not read was ignored unseen
            unknown = sorted(set(task) - TASK_FIELDS[kind])  # null or not: a misspelt name is refused
            if unknown:
                raise TaskError("unsupportedParameter", unknown_parameter(unknown[0], TASK_FIELDS[kind]),
                                unknown[0])
        raw, task = task, given(task)
        try:
            if kind == REMOVAL:
                return await self.removal(raw)  # its unknown names checked with its nulls (removal_asked)
            if kind == "imageUpload":
                return await self.upload(task)
            if kind == "getResponse":
                return await self.response(task_uuid)
        except ApiError as exc:
            raise from_api(exc) from None
        said = "taskType is required" if kind is None else f"taskType {kind!r} is not served here"
        raise TaskError("unsupportedTaskType", f"{said}: {REMOVAL}, imageUpload, getResponse", "taskType")

    # -- imageUpload -------------------------------------------------------------------------------
    async def upload(self, task: dict[str, Any]) -> dict[str, Any]:
        image = task.get("image")
        if not isinstance(image, str) or not image:
            raise TaskError("invalidImage", "image must be a data URI, base64 or URL", "image")
        public_id = await self._stored(image, "image")
        image_uuid = await self._named({"public_id": public_id})
        url = f"{base.delivery_root(self.base_url, self.api)}/image/upload/{versioned_source(public_id)}"
        return {"taskType": "imageUpload", "taskUUID": task["taskUUID"], "imageUUID": image_uuid,
                "imageURL": url}  # fmt: skip

    async def _named(self, what: dict[str, Any]) -> str:
        """The caller's imageUUID of an image: derived from what it is (an original, or a job's result)
        and the caller, so the same image keeps its UUID for one key, and the note (with its owner, as a
        task keeps its own) is written only the first time (a read after that)."""
        image_uuid = _image_uuid(what, self.owner)
        # Written (again: the same value, its lifetime renewed) unless this process wrote it within the
        # last half of the notes' lifetime, so a repeated request costs no thread hop for it.
        renew = _renew(image_uuid)
        if base.written(self.api, renew) is None:
            await base.note(self.api, f"runware-image:{image_uuid}", {**what, "owner": self.owner})
            base.remember_note(self.api, renew, True, share=0.5)
        return image_uuid

    async def _stored(self, image: str, field: str) -> str:
        """The public id of an image given as the UUID of an earlier one, a URL, a data URI or base64."""
        if _UUID.fullmatch(image):
            # Another key's image is answered as an unknown one (``visible``, as its tasks are): the same
            # error, before anything of it is used. A note from before notes kept their owner is the
            # open API's only ('' : no keys).
            noted = await base.noted(self.api, f"runware-image:{image.lower()}")
            known = None if noted is None else visible({"owner": "", **noted}, self.owner)
            if known is None:
                raise TaskError("invalidImageUUID", f"No image {image} (unknown, or older than the "
                                "server's CUTOUT_TASK_TTL)", field)  # fmt: skip
            if "public_id" in known:
                return str(known["public_id"])
            made = await base.make(self.api, Job.from_json(known["job"]))  # a result: again, from the cache
            return await base.store(self.api, data=made.data)
        if _URL.match(image):
            return await base.store(self.api, url=image)
        try:
            return await base.store(self.api, data=_decoded(image, field))
        except ApiError as exc:
            raise _carried_fault(exc, field) from None

    async def _job(self, image: str, field: str, native: dict[str, str]) -> Job:
        """The job for ``native`` on an image given as ``_stored`` takes it; one carried as base64 or a
        data URI through the native POST's hot path (seen before, by any face: found in memory)."""
        if _UUID.fullmatch(image) or _URL.match(image):
            return await base.job(self.api, await self._stored(image, field), native)
        try:
            return await base.carried_job(self.api, _decoded(image, field), native)
        except ApiError as exc:
            raise _carried_fault(exc, field) from None

    # -- imageBackgroundRemoval ------------------------------------------------------------------------
    async def removal(self, task: dict[str, Any]) -> dict[str, Any]:
        task, native, output_type, image = self.removal_asked(task)
        job = await self._job(image, "inputImage", native)
        image_uuid = await self._named({"job": job.as_json()})
        context = _context(self.base_url, self.api, task, job, image_uuid, output_type)
        delivery = task.get("deliveryMethod", "sync")
        _check(delivery in ("sync", "async"), "deliveryMethod", "deliveryMethod must be sync or async")
        webhook = task.get("webhookURL")
        if webhook is not None:
            _check(isinstance(webhook, str), "webhookURL", "webhookURL must be a URL")
            self._check_webhook(webhook)
        if delivery == "async" or webhook is not None:
            if await base.noted(self.api, f"runware-task:{task['taskUUID']}") is not None:
                raise TaskError("duplicateTaskUUID", "taskUUID was already used", "taskUUID")
            queued = await base.queue(self.api, job, webhook, {"payload": "runware", "runware": context},
                                      self.owner)
            await base.note(self.api, f"runware-task:{task['taskUUID']}", queued["task_id"])
            if delivery == "async":
                return {"taskType": REMOVAL, "taskUUID": task["taskUUID"], "status": "processing"}
        made = await base.make(self.api, job)
        return item(context, made.data, made.meta["format"])

    def removal_asked(self, task: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str, str]:
        """An imageBackgroundRemoval task read: (the task with its settings merged, native fields,
        outputType, inputImage); its errors raised."""
        settings = task.get("settings") or {}
        _check(isinstance(settings, dict), "settings", "settings must be an object of the task's options")
        # Unknown names first, nulls included (a misspelt name is refused, whatever its value); then the
        # nulls are left out, as not given (``given``).
        for name in sorted(settings):
            if name not in SETTINGS:
                raise TaskError("unsupportedParameter", f"unknown parameter {name!r} in settings "
                                f"({', '.join(sorted(SETTINGS))})", f"settings.{name}")  # fmt: skip
        unknown = sorted(set(task) - FIELDS)  # settings' names are all FIELDS
        if unknown:
            raise TaskError("unsupportedParameter", unknown_parameter(unknown[0], FIELDS), unknown[0])
        task, settings = given(task), given(settings)
        for name in sorted(settings):
            _check(name not in task or task[name] == settings[name], name,
                   f"{name} is given twice, in the task and in settings, with two values")  # fmt: skip
        task = {**task, **settings}  # the newer API nests the options in settings
        native, output_type, fmt = self._options(task)
        image = task.get("inputImage")
        if not isinstance(image, str) or not image:
            # A number or a list was told "is required", as if it had not been sent.
            said = "is required" if image in (None, "") else f"must be a string, not {_kind(image)}"
            message = f"inputImage {said}: a UUID, URL, data URI or base64 image"
            raise TaskError("invalidInputImage", message, "inputImage")
        return task, native, output_type, image

    def _options(self, task: dict[str, Any]) -> tuple[dict[str, str], str, str]:
        """The task's options -> (native fields, outputType, outputFormat)."""
        output_type = task.get("outputType", "URL")
        # isinstance first: a list or an object is not hashable, and ``in`` a dict raised (a 500)
        _check(isinstance(output_type, str) and output_type in OUTPUT_TYPES, "outputType",
               "outputType must be URL, dataURI or base64Data")  # fmt: skip
        fmt = task.get("outputFormat", "PNG")
        _check(isinstance(fmt, str) and fmt.upper() in FORMATS, "outputFormat",
               "outputFormat must be PNG, JPG or WEBP")  # fmt: skip
        native = {"format": FORMATS[fmt.upper()]}
        for name in ("includeCost", "postProcessMask", "returnOnlyMask", "alphaMatting"):
            _check(isinstance(task.get(name, False), bool), name, f"{name} must be true or false")
        if task.get("returnOnlyMask"):
            native["channels"] = "alpha"
        if task.get("alphaMatting"):
            native["fine_edges"] = "true"
        for name, default in THRESHOLDS.items():
            value = task.get(name, default)
            _check(isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 255, name,
                   f"{name} must be an integer from 1 to 255")  # fmt: skip
            if value != default:
                self.ignored.append(f"{name}={value}")  # tunes rembg-style matting, not cutout's model
        if task.get("postProcessMask"):
            self.ignored.append("postProcessMask")
        # Hints, but of the types Runware's SDK sends (IImageBackgroundRemoval): model an AIR id (text) or a
        # number, outputQuality an integer; anything else is a client's mistake, not a hint.
        model, quality = task.get("model", ""), task.get("outputQuality", 95)
        _check(isinstance(model, (str, int)) and not isinstance(model, bool), "model",
               "model must be a model's AIR identifier")  # fmt: skip
        _check(isinstance(quality, int) and not isinstance(quality, bool) and 1 <= quality <= 100,
               "outputQuality", "outputQuality must be an integer from 1 to 100")  # fmt: skip
        for name in ("model", "outputQuality"):
            if name in task:
                self.ignored.append(f"{name}={task[name]}")
        rgba = task.get("rgba", [255, 255, 255, 0])
        _check(
            isinstance(rgba, list)
            and len(rgba) == 4
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in rgba),
            "rgba",
            "rgba must be [red, green, blue, alpha], each 0-255",
        )
        if rgba[3] > 0:  # a transparent background is the cut-out itself
            native["bg_color"] = ",".join(str(v) for v in rgba)
        return native, output_type, fmt

    def _check_webhook(self, url: str) -> None:
        from cutout.api.routes import _check_webhook  # the native check: the same secret and policy

        try:
            _check_webhook(self.api, url)
        except ApiError as exc:
            raise TaskError("invalidWebhookURL", exc.detail, "webhookURL") from None

    # -- getResponse -----------------------------------------------------------------------------------
    async def response(self, task_uuid: str) -> dict[str, Any]:
        task_id = await base.noted(self.api, f"runware-task:{task_uuid}")
        found = None if task_id is None else await base.task(self.api, task_id, self.owner)
        if found is None:
            raise TaskError("invalidTaskUUID", f"No async task {task_uuid} (unknown or expired)", "taskUUID")
        context = found["job"]["runware"]
        if found["status"] not in FINAL:
            return {"taskType": REMOVAL, "taskUUID": task_uuid, "status": "processing"}
        if found["status"] == ERROR:
            error = found["error"]
            raise TaskError(_camel(error["code"]), error["message"])
        data = await base.task_data(self.api, found["task_id"])
        if data is None:
            raise TaskError("invalidTaskUUID", f"No async task {task_uuid} (expired)", "taskUUID")
        return {**item(context, data, found["result"]["format"]), "status": "success"}


def _task_uuid(task: dict[str, Any]) -> str:
    task_uuid = task.get("taskUUID")
    if not isinstance(task_uuid, str) or not _UUID.fullmatch(task_uuid):
        said = "is required" if task_uuid is None else "must be"
        raise TaskError("invalidTaskUUID", f"taskUUID {said} a UUID v4 string", "taskUUID")
    return task_uuid


def given(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` without those sent as ``null``: a null is "not given" (the field's default), as SDKs
    and JavaScript clients write an optional field they do not set (Runware's reference lists defaults,
    never a null). A required one left out this way is then refused as missing, by name."""
    if all(value is not None for value in fields.values()):
        return fields
    return {name: value for name, value in fields.items() if value is not None}


def _image_uuid(what: dict[str, Any], owner: str) -> str:
    # The owner in the digest: a UUID is not the same for two keys, so one key cannot tell from its own
    # UUID of an image that another key's UUID it came across names the same image.
    digest = hashlib.sha256(json.dumps({"image": what, "owner": owner}, sort_keys=True).encode()).hexdigest()
    return str(uuid.UUID(digest[:32], version=4))


def _renew(image_uuid: str) -> str:
    return f"runware-renew:{image_uuid}"


def _context(
    base_url: str, api: Api, task: dict[str, Any], job: Job, image_uuid: str, output_type: str
) -> dict[str, Any]:
    """What a removal's answer says besides the image (``item``)."""
    return {
        "taskUUID": task["taskUUID"],
        "imageUUID": image_uuid,
        "outputType": output_type,
        "includeCost": task.get("includeCost") is True,
        "imageURL": base.result_url(base_url, api, job.public_id, job.transformation),
    }


#: Carried images decoded, by their text (``ByContent``): a client sending a photo again sends it under a
#: new taskUUID (each task has its own), so the body is new but the image's text the same, and decoding it
#: (200 us for 47 KB, validated) costs more than the rest of a repeat's answer. A pure function of the
#: text, shared by every server in the process. Bounded by the text and bytes kept.
_DECODED: ByContent[str, bytes] = ByContent(
    16 << 20, HOT_BYTES, cost=lambda text, data: len(text) + len(data)
)


def _kind(value: Any) -> str:
    """A JSON value's type as JSON names it (``a number``, ``an array``...), for a message."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _decoded(image: str, field: str) -> bytes:
    return _DECODED.get(image, partial(_decode, field=field))


def _decode(image: str, field: str) -> bytes:
    try:
        return decode_b64(image, field)
    except ApiError:
        raise TaskError(
            "invalidInputImage" if field == "inputImage" else "invalidImage",
            f"{field} is not a UUID, URL, data URI or base64 image",
            field,
        ) from None


def item(context: dict[str, Any], data: bytes, fmt: str) -> dict[str, Any]:
    """The response object of a finished imageBackgroundRemoval."""
    answer: dict[str, Any] = {"taskType": REMOVAL, "taskUUID": context["taskUUID"],
                              "imageUUID": context["imageUUID"]}  # fmt: skip
    field = OUTPUT_TYPES[context["outputType"]]
    if field == "imageURL":  # the URL alone: the bytes are not encoded for nothing
        answer[field] = context["imageURL"]
    else:
        text = base64.b64encode(data).decode("ascii")
        answer[field] = text if field == "imageBase64Data" else f"data:{MIME[fmt]};base64,{text}"
    if context["includeCost"]:
        answer["cost"] = 0  # USD: a self-hosted server charges nothing
    return answer


def webhook_payload(task: dict[str, Any], data: bytes | None) -> dict[str, Any]:
    """The webhook's body: the complete task response, as the HTTP answer would have been."""
    context = task["job"]["runware"]
    if task["status"] == SUCCESS and data is not None:
        return {"data": [{**item(context, data, task["result"]["format"]), "status": "success"}]}
    error = task["error"] or {"code": "internal_error", "message": "No result"}
    return {"errors": [{"code": _camel(error["code"]), "message": error["message"], "taskType": REMOVAL,
                        "taskUUID": context["taskUUID"], "status": "error"}]}  # fmt: skip


PAYLOADS["runware"] = webhook_payload


def _api_key(task: dict[str, Any]) -> str | None:
    """An authentication task's apiKey: a string, or None when absent (a number or a list was a 500)."""
    key = task.get("apiKey")
    if key is not None and not isinstance(key, str):
        raise TaskError("invalidApiKey", "apiKey must be a string", "apiKey", 401, task_type="authentication")
    return key


def refusal(exc: ApiError, key: str | None) -> dict[str, Any]:
    """The gate's answer (no key, a wrong one, too many requests) as Runware's authentication error."""
    if exc.code == "rate_limited":
        code = "rateLimitExceeded"
    else:
        code = "missingApiKey" if not key else "invalidApiKey"
    return {"code": code, "message": exc.detail, "parameter": "apiKey", "taskType": "authentication"}


# -- HTTP --------------------------------------------------------------------------------------------------
def error(exc: ApiError) -> Response:
    failed = from_api(exc)
    return JSONResponse({"errors": [failed.body({})]}, failed.status, headers=exc.headers)


def _tasks(raw: bytes, key: str | None) -> tuple[list[Any], str | None]:
    """A body's tasks, and the key: the header's, else an ``authentication`` task's (taken off)."""
    try:
        tasks = jsonbody.loads(raw)
    except jsonbody.JsonBodyError as exc:
        raise TaskError("invalidJSON", f"The body must be a JSON array of tasks: {exc}") from None
    tasks = tasks if isinstance(tasks, list) else [tasks]
    if not tasks:
        raise no_tasks()
    if isinstance(tasks[0], dict) and tasks[0].get("taskType") == "authentication":
        given = _api_key(tasks[0])
        if key and given and given != key:  # the header used to win silently
            raise TaskError("conflictingApiKey", "Authorization: Bearer and the authentication task's "
                            "apiKey carry different keys: send one of them (or the same key in each)",
                            "apiKey", task_type="authentication")  # fmt: skip
        key = key or given
        tasks = tasks[1:]
    return tasks, key


def no_tasks(authenticated: bool = False) -> TaskError:
    """An array with nothing to run: answered as Runware answers a malformed request (400, its error
    object) rather than ``{}`` or silence, which a client waiting on its taskUUIDs could not tell from
    a lost answer. ``authenticated``: the array held only an authentication task (over HTTP, where the
    key is all it gave; the WebSocket answers the authentication itself)."""
    what = "only an authentication task" if authenticated else "an empty array"
    return TaskError("invalidTasks", f"Send a JSON array of at least one task; got {what}")


def _answer(
    data: list[dict[str, Any]], errors: list[dict[str, Any]], status: int, ignored: list[str],
    headers: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status, headers={**base.hints(ignored), **(headers or {})})


async def post(request: Request, api: Api) -> Response:
    base.limited(request, api, MAX_BODY)
    tasks, key = _tasks(await request.body(), _KEY(request))
    try:
        known = api.gate.check_key(key, _SENT_AS)
    except ApiError as exc:
        return JSONResponse({"errors": [refusal(exc, key)]}, exc.status, headers=exc.headers)
    if not tasks:  # after the key: an unknown caller is told 401 first, as for any request
        raise no_tasks(authenticated=True)
    session = Session(api, request_base(request), owner_of(known))
    data: list[dict[str, Any]] = []
    errors: list[tuple[TaskError, dict[str, Any]]] = []
    seen: set[str] = set()
    for task in tasks:
        try:
            named = task.get("taskUUID") if isinstance(task, dict) else None
            if isinstance(named, str) and named in seen:  # its answers could not be told apart
                raise TaskError("invalidTaskUUID", f"taskUUID {named} is given to two tasks of this request; "
                                "each task needs its own", "taskUUID")  # fmt: skip
            if isinstance(named, str):
                seen.add(named)
            data.append(await session.run(task))
        except TaskError as exc:
            # Without its traceback: it holds this frame, whose ``errors`` would hold it, a cycle keeping
            # the request's tasks (their base64 images) until the garbage collector's next full pass.
            errors.append((exc.with_traceback(None), task if isinstance(task, dict) else {}))
    status = 200 if data or not errors else max(exc.status for exc, _ in errors)
    retry = {k: v for exc, _ in errors for k, v in exc.headers.items()} if status != 200 else {}
    return _answer(data, [exc.body(task) for exc, task in errors], status, session.ignored, retry)


async def posted(request: Request, api: Api) -> Response:
    try:
        return await post(request, api)
    except TaskError as exc:
        return JSONResponse({"errors": [exc.body({})]}, exc.status)


# -- WebSocket (the SDKs) -----------------------------------------------------------------------------------
async def socket(websocket: WebSocket) -> None:
    """Runware's WebSocket protocol for these task types: each message a JSON array of tasks, each
    answer ``{"data": [...]}`` or ``{"errors": [...]}`` matched by taskUUID; ``authentication`` first."""
    api: Api | None = getattr(websocket.app.state, "api", None)
    await websocket.accept()
    if api is None:
        await websocket.close(1008, "the API is off")
        return
    try:
        base_url = request_base(websocket)
    except ApiError as exc:
        await websocket.close(1008, exc.detail[:120])  # a close reason is at most 123 bytes
        return
    key: str | None = None  # the authenticated key ("" where the API is open without keys)
    lock = anyio.Lock()

    async def send(message: dict[str, Any]) -> None:
        async with lock:
            await websocket.send_text(json.dumps(message))

    async def one(task: Any) -> None:
        # A task that is not an object (``[5]``) is answered with no type or UUID: reading them off it
        # raised in the task group, which closed the whole socket (1011).
        named = task if isinstance(task, dict) else {}
        try:
            await send({"data": [await Session(api, base_url, owner_of(key or "")).run(task)]})
        except TaskError as exc:
            await send({"errors": [exc.body(named)]})
        except Exception:  # a bug: logged, answered, and the socket's other tasks go on
            base.log.exception("runware task over the WebSocket")
            await send({"errors": [TaskError("internalError", "Internal error", status=500).body(named)]})

    async def received(tasks: list[Any]) -> None:
        """Answer a message's tasks (the slow ones in the background). Each message after the
        authentication takes one request from the key's rate, as one HTTP request does."""
        nonlocal key
        for task in tasks:
            kind = task.get("taskType") if isinstance(task, dict) else None
            if kind == "authentication":
                try:
                    given = _api_key(task)
                    resumed = task.get("connectionSessionUUID")
                    if resumed is not None and not isinstance(resumed, str):  # it was echoed, whatever it was
                        raise TaskError("invalidConnectionSessionUUID", "connectionSessionUUID must be the "
                                        "string an earlier authentication answered", "connectionSessionUUID")
                    key = api.gate.check_key(given, "the apiKey of an authentication task")
                except TaskError as exc:
                    await send({"errors": [exc.body(task)]})
                    continue
                except ApiError as exc:
                    await send({"errors": [refusal(exc, task.get("apiKey"))]})
                    continue
                session_uuid = resumed or str(uuid.uuid4())
                await send({"data": [{"taskType": "authentication", "connectionSessionUUID": session_uuid}]})
            elif kind == "ping":
                await send({"data": [{"taskType": "ping", "pong": True}]})
            elif key is None:
                error = {"code": "missingApiKey", "message": "Authenticate first", "taskType": kind,
                         "taskUUID": task.get("taskUUID") if isinstance(task, dict) else None}  # fmt: skip
                await send({"errors": [error]})
            else:
                group.start_soon(one, task)

    async def allowed(tasks: list[Any]) -> bool:
        """The key's rate, taken once for a message that carries tasks (not for pings or logins)."""
        if key is None or all(isinstance(t, dict) and t.get("taskType") in ("authentication", "ping")
                              for t in tasks):  # fmt: skip
            return True
        try:
            api.gate.check_key(key or None)
        except ApiError as exc:
            await send({"errors": [refusal(exc, key)]})
            return False
        return True

    try:
        async with anyio.create_task_group() as group:
            while True:
                try:
                    text = await _receive(websocket)
                except WebSocketDisconnect:
                    group.cancel_scope.cancel()  # nobody to answer: the tasks' native jobs go on regardless
                    return
                try:
                    tasks = jsonbody.loads(text)
                except jsonbody.JsonBodyError as exc:
                    refused = {"code": "invalidJSON", "message": f"Send a JSON array of tasks: {exc}"}
                    await send({"errors": [refused]})
                    continue
                tasks = tasks if isinstance(tasks, list) else [tasks]
                if not tasks:
                    await send({"errors": [no_tasks().body({})]})
                    continue
                if await allowed(tasks):
                    await received(tasks)
    except Exception:  # a bug: logged, answered in Runware's shape, and the socket closed with a frame
        base.log.exception("runware WebSocket")
        await _close_broken(websocket, send)


async def _receive(websocket: WebSocket) -> str:
    """The next message's text; a binary frame's bytes as UTF-8 (starlette's receive_text() raised
    KeyError on one, and a bytes frame that is not UTF-8 is as invalid JSON as any other)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if text is not None else (message.get("bytes") or b"").decode("utf-8", "replace")


async def _close_broken(websocket: WebSocket, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Tell the client, then close with 1011 (internal error), unless it is gone already."""
    with contextlib.suppress(Exception):
        await send({"errors": [TaskError("internalError", "Internal error", status=500).body({})]})
        await websocket.close(1011, "Internal error")


_KEY = base.header_key(bearer=True)
#: Runware takes the key in a header or in the body's authentication task.
_SENT_AS = f"{_KEY.sent_as} or the apiKey of an authentication task"
ROUTES = (
    Route("/v1", base.endpoint(posted, None, error), methods=["POST"]),
    WebSocketRoute("/v1", socket),
)


# -- a repeated removal answered by the ASGI front (cutout.api.front), with the route's own functions ------
async def _front_intake(api: Api, request: Request, headers: front.Headers, body: bytes) -> base.Read | None:
    """One synchronous imageBackgroundRemoval whose image is carried (base64 or a data URI); anything
    else (several tasks, a UUID or URL, async, a webhook, an error) is the route's."""
    try:
        tasks, _ = _tasks(body, FACE.key(headers))  # as the route reads them: a second key is its 400
        if len(tasks) != 1 or not isinstance(tasks[0], dict) or tasks[0].get("taskType") != REMOVAL:
            return None
        _task_uuid(tasks[0])
        session = Session(api, "")
        task, native, output_type, image = session.removal_asked(tasks[0])
        if task.get("deliveryMethod", "sync") != "sync" or "webhookURL" in task:
            return None
        if _UUID.fullmatch(image) or _URL.match(image):
            return None
        data = _decoded(image, "inputImage")
    except TaskError:
        return None
    return base.Read(native, "image_file_b64", data, context=(task, output_type, session.ignored))


#: A job's result imageUUID for a caller (a JSON dump and a sha256, twice per repeat before), by both.
_RESULT_UUIDS: BoundedDict[tuple[Job, str], str] = BoundedDict(4096)


def _result_uuid(job: Job, owner: str) -> str:
    known = _RESULT_UUIDS.get((job, owner))
    if known is None:
        known = _RESULT_UUIDS[job, owner] = _image_uuid({"job": job.as_json()}, owner)
    return known


def _front_fits(api: Api, job: Job, received: Intake, owner: str) -> bool:
    # The caller's imageUUID note of the result: written by the route within half its lifetime, else the
    # route writes it (another key's repeat of the same request has a UUID of its own to note).
    return base.written(api, _renew(_result_uuid(job, owner))) is not None


def _front_respond(api: Api, job: Job, result: Result, request: Request, received: Intake) -> Response:
    assert isinstance(received, base.Read)
    task, output_type, ignored = received.context
    image_uuid = _result_uuid(job, auth.caller(request))
    context = _context(request_base(request), api, task, job, image_uuid, output_type)
    return _answer([item(context, result.entry.data, result.meta["format"])], [], 200, ignored)


FACE = front.Face(
    path="/v1",
    reads=base.key_headers(bearer=True),
    key=base.raw_key(bearer=True),
    intake=_front_intake,
    respond=_front_respond,
    fits=_front_fits,
)
