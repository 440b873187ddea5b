"""``GET /openapi.json`` (OpenAPI 3.1) and ``GET /docs``, built from the code's own tables: the options
from ``options.OPTION_DOCS``, the error codes from ``errors.CODES``, the routes from ``routes.ROUTES``
(``tests/api/test_api_openapi.py`` fails when a route or a code is missing)."""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from cutout.api.errors import CODES
from cutout.api.options import FLAG, MAX_MEGAPIXELS, OPTION_DOCS, SOURCE_DOCS

_REF = "#/components/schemas/"


def _error_responses(*codes: str) -> dict[str, Any]:
    by_status: dict[str, list[str]] = {}
    for code in codes:
        by_status.setdefault(str(CODES[code][0]), []).append(code)
    return {
        status: {
            "description": "; ".join(f"{code}: {CODES[code][1]}" for code in listed),
            "content": {"application/json": {"schema": {"$ref": _REF + "Errors"}}},
        }
        for status, listed in sorted(by_status.items())
    }


#: invalid_parameter: every route's 400 for two different keys (``auth.one_key``), an empty task id, or a
#: query parameter on a task route.
_COMMON = ("invalid_parameter", "auth_failed", "rate_limited", "internal_error", "not_found",
           "method_not_allowed")  # fmt: skip
_REMOVE = tuple(code for code in CODES if code != "method_not_allowed")
_IMAGE = {"schema": {"type": "string", "contentMediaType": "image/*"}}
_ACCEPTED = {
    "description": "Not ready yet (async, or the sync wait ran out): poll the task at Location",
    "headers": {"Location": {"schema": {"type": "string"}},
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds, as poll_after_ms"}},
    "content": {"application/json": {"schema": {"$ref": _REF + "TaskAccepted"}}},
}
_RESULT = {
    "description": "The result: the image (output=binary, with X-* headers) or JSON (output=json)",
    "headers": {
        name: {"schema": {"type": "number" if name == "X-Confidence" else "integer"}}
        for name in (
            "X-Width",
            "X-Height",
            "X-Confidence",
            "X-Foreground-Left",
            "X-Foreground-Top",
            "X-Foreground-Width",
            "X-Foreground-Height",
        )
    },  # fmt: skip
    "content": {
        "image/png": _IMAGE,
        "image/jpeg": _IMAGE,
        "image/webp": _IMAGE,
        "application/json": {"schema": {"$ref": _REF + "Result"}},
    },  # fmt: skip
}
_TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _fields(body: str = "multipart") -> dict[str, Any]:
    """The fields of a ``body`` of that kind: ``multipart`` (file parts too), ``form`` (url-encoded: text
    only, so no image_file, and bg_image_file as base64) or ``json`` (text only, and true/false and
    numbers as JSON writes them: ``{"crop": true}``, as the README's examples send it, was outside the
    document, whose flags were strings only)."""
    properties: dict[str, Any] = {}
    for name, (schema, text) in {**SOURCE_DOCS, **OPTION_DOCS}.items():
        if body != "multipart" and name == "image_file":
            continue  # a text image_file is refused: image_file_b64 carries base64
        if body != "multipart" and schema.get("format") == "binary":
            schema = {"type": "string"}
        if body == "json" and schema is FLAG:
            schema = {"anyOf": [{"type": "boolean"}, FLAG]}
        elif body == "json" and name == "max_megapixels":
            schema = {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": MAX_MEGAPIXELS}, schema]}
        if body == "json":  # null is "not given" (``intake._json``), as SDKs write an unset optional field
            either = schema.get("anyOf")
            kinds: list[Any] = list(either) if isinstance(either, list) else [schema]
            schema = {"anyOf": [*kinds, {"type": "null"}]}
            text += " (null: not given)"
        properties[name] = {**schema, "description": text}
    return properties


def _schemas() -> dict[str, Any]:
    box = {
        "type": "object",
        "properties": {k: {"type": "number"} for k in ("left", "top", "width", "height")},
        "required": ["left", "top", "width", "height"],
    }
    result_props = {
        "width": {"type": "integer"}, "height": {"type": "integer"},
        "format": {"type": "string", "enum": ["png", "jpg", "webp"]},
        "bytes": {"type": "integer"}, "confidence": {"type": ["number", "null"]},
        "foreground": {**box, "description": "the foreground's bounding box in the result's pixels"},
        "box": {**box, "description": "the same box as fractions of the result's width and height"},
    }  # fmt: skip
    return {
        "Errors": {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["code", "title", "detail", "parameter"],
                        "properties": {
                            "code": {"type": "string", "enum": list(CODES)},
                            "title": {"type": "string"},
                            "detail": {"type": "string"},
                            "parameter": {"type": ["string", "null"]},
                        },
                    },
                }
            },
        },  # fmt: skip
        "Description": {"type": "object", "properties": result_props, "required": list(result_props)},
        "Result": {
            "allOf": [{"$ref": _REF + "Description"}],
            "type": "object",
            "properties": {
                "encoding": {"type": "string", "enum": ["base64", "data_uri", "url"]},
                "image": {
                    "type": "string",
                    "description": "the image: base64, a data URI, or (encoding=url) the delivery URL that "
                    "GETs the same bytes without a key (signed when the server has CUTOUT_API_SECRET)",
                },
            },
            "required": ["encoding", "image"],
        },
        "TaskAccepted": {
            "type": "object",
            "required": ["task_id", "status", "poll_after_ms"],
            "properties": {
                "task_id": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "running"]},
                "poll_after_ms": {"type": "integer"},
            },
        },
        "Task": {
            "type": "object",
            "required": ["task_id", "status", "created_at", "finished_at"],
            "properties": {
                "task_id": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "running", "success", "error"]},
                "created_at": {"type": "number"},
                "finished_at": {"type": ["number", "null"]},
                "poll_after_ms": {"type": "integer"},
                "result": {"$ref": _REF + "Description"},
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": list(CODES)},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }


@cache
def document() -> dict[str, Any]:
    fields = {
        body: {"type": "object", "properties": _fields(body), "additionalProperties": False}
        for body in ("multipart", "form", "json")
    }
    # A file part cannot be a query parameter; bg_image_file may be, as base64 text.
    query = [
        {"name": name, "in": "query", "required": False, "description": text,
         "schema": {"type": "string"} if schema.get("format") == "binary" else schema}
        for name, (schema, text) in {**SOURCE_DOCS, **OPTION_DOCS}.items()
        if name != "image_file"
    ]  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cutout background removal API",
            "version": "1",
            "description": "Send an image, get its cut-out, mask or composite; at once or as a task.",
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/v1/remove-background": {
                "post": {
                    "operationId": "removeBackground",
                    "summary": "Remove the background of one image",
                    "parameters": [
                        *query,
                        {
                            "name": "Prefer",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "respond-async: answer 202 at once",
                        },
                    ],  # fmt: skip
                    "requestBody": {
                        "required": False,
                        "content": {
                            "image/*": _IMAGE,
                            "application/octet-stream": _IMAGE,
                            "multipart/form-data": {"schema": fields["multipart"]},
                            "application/x-www-form-urlencoded": {"schema": fields["form"]},
                            "application/json": {"schema": fields["json"]},
                        },
                    },
                    "responses": {"200": _RESULT, "202": _ACCEPTED, **_error_responses(*_REMOVE)},
                }
            },
            "/v1/tasks/{task_id}": {
                "get": {
                    "operationId": "getTask",
                    "parameters": [_TASK_ID],
                    "responses": {
                        "200": {
                            "description": "The task",
                            "content": {"application/json": {"schema": {"$ref": _REF + "Task"}}},
                        },
                        **_error_responses(*_COMMON),
                    },  # fmt: skip
                },
                "delete": {
                    "operationId": "deleteTask",
                    "parameters": [_TASK_ID],
                    "responses": {"204": {"description": "Deleted"}, **_error_responses(*_COMMON)},
                },
            },
            "/v1/tasks/{task_id}/result": {
                "get": {
                    "operationId": "getTaskResult",
                    "parameters": [_TASK_ID],
                    "responses": {
                        "200": _RESULT,
                        "202": {
                            "description": "Not finished yet",
                            "content": {"application/json": {"schema": {"$ref": _REF + "Task"}}},
                        },
                        **_error_responses(*_REMOVE),
                    },  # fmt: skip
                }
            },
        },
    }


def _require_api(request: Request) -> None:
    if getattr(request.app.state, "api", None) is None:
        raise HTTPException(404)  # the API is off: so is its description


async def openapi_json(request: Request) -> Response:
    _require_api(request)
    return JSONResponse(document())


async def docs_page(request: Request) -> Response:
    """The document as a page: routes, fields and errors (no script, nothing fetched from elsewhere)."""
    _require_api(request)
    spec = document()
    rows = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            statuses = ", ".join(operation["responses"])
            rows.append(f"<tr><td>{method.upper()}</td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{statuses}</td></tr>")  # fmt: skip
    fields = "".join(
        f"<tr><td><code>{name}</code></td><td>{html.escape(text)}</td></tr>"
        for name, (_, text) in {**SOURCE_DOCS, **OPTION_DOCS}.items()
    )
    codes = "".join(
        f"<tr><td><code>{code}</code></td><td>{status}</td><td>{html.escape(title)}</td></tr>"
        for code, (status, title) in CODES.items()
    )
    page = (
        "<!doctype html><meta charset=utf-8><title>cutout API</title>"
        "<h1>cutout background removal API</h1><p>The machine-readable document: "
        "<a href=/openapi.json>/openapi.json</a> (OpenAPI 3.1).</p>"
        f"<h2>Routes</h2><table><tr><th>method<th>path<th>statuses</tr>{''.join(rows)}</table>"
        f"<h2>Fields</h2><table><tr><th>name<th>meaning</tr>{fields}</table>"
        f"<h2>Errors</h2><table><tr><th>code<th>status<th>title</tr>{codes}</table>"
    )
    return HTMLResponse(page)
