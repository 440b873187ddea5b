"""Reading an Upload or Admin API request: its parameters (multipart, form-urlencoded, JSON or the query,
lists sent as ``key[]``) and the values the server understands: public ids, folders, tags, context,
eager transformations, booleans. Every parameter is either understood or refused with a 400 naming it."""

from __future__ import annotations

import base64
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

import transform
from cutout import jsonbody
from cutout.api.errors import ApiError
from cutout.api.intake import limit_body
from cutout.upload.errors import UploadError, bad
from cutout.upload.form import read_multipart
from grammar import parse_transformation
from grammar.errors import OriginError
from grammar.image_formats import EXTENSIONS

#: The parameters every signed call carries besides its own.
SIGNING = ("timestamp", "signature", "api_key")
#: Cloudinary's limit on a public id.
MAX_PUBLIC_ID = 255
#: One folder or name of a public id (the file system's limit, less room for an extension).
MAX_PART_BYTES = 200
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\?#]")
_NOT_IN_NEW_IDS = re.compile(r"[&%<>+,]")
_VERSION_LIKE = re.compile(r"v[0-9]+")
_RANDOM = string.ascii_lowercase + string.digits
#: Eager transformations one upload or explicit may ask for. Cloudinary publishes no such limit; each one
#: is a render (and its result is kept on the record), so one call must not queue thousands.
MAX_EAGER = 50


@dataclass(frozen=True)
class Received:
    params: dict[str, str]
    file: bytes | None  # the ``file`` part's bytes when it came as a file
    filename: str | None


async def read(request: Request, limit: int) -> Received:
    """The request's parameters (query and body) and its ``file`` part; 400 for a malformed body and
    for a body over ``limit`` bytes (counted while it streams)."""
    try:
        limit_body(request, limit)
        return await _read(request, limit)
    except ApiError as exc:  # the body limit, in the HTTP API's shape
        if exc.code == "file_too_large":
            raise bad(
                f"File size too large: the request body is over CUTOUT_MAX_UPLOAD_BYTES ({limit} bytes)"
            ) from None
        raise UploadError(exc.status, exc.detail) from None


async def _read(request: Request, limit: int) -> Received:
    items: list[tuple[str, str]] = list(request.query_params.multi_items())
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    file: bytes | None = None
    filename: str | None = None
    if media == "multipart/form-data":
        fields, part = await read_multipart(request.headers["content-type"], request.stream(), limit)
        items += fields
        if part is not None:
            file, filename = b"".join(part.chunks), part.filename
    elif media == "application/x-www-form-urlencoded":
        try:
            form = await request.form(max_files=1, max_fields=256, max_part_size=limit)
        except MultiPartException as exc:
            raise bad(f"Malformed form body: {exc.message}") from None
        except HTTPException as exc:
            raise bad(f"Malformed form body: {exc.detail}") from None
        try:
            items += [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
        finally:
            await form.close()
    elif media == "application/json":
        items += _json(await request.body())
    elif media and request.method != "GET":
        raise bad(f"Content-Type {media} is not multipart/form-data, form-urlencoded or JSON")
    return Received(_merge(items), file, filename)


def _json(raw: bytes) -> list[tuple[str, str]]:
    try:
        data = jsonbody.loads(raw) if raw else {}
    except jsonbody.JsonBodyError as exc:
        raise bad(f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad("The JSON body must be an object")
    items = []
    for name, value in data.items():
        values = value if isinstance(value, list) else [value]
        for one in values:
            if isinstance(one, bool):
                one = "true" if one else "false"
            elif isinstance(one, int | float):
                one = str(one)
            elif one is None:
                continue
            elif not isinstance(one, str):
                raise bad(f"{name} must be a string, number, boolean or a list of them")
            items.append((f"{name}[]" if isinstance(value, list) else name, one))
    return items


def _merge(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """One value per name; ``key[]`` lists (as the SDK sends them) joined by ',' as it signs them."""
    fields: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for name, value in items:
        if name.endswith("[]"):
            lists.setdefault(name[:-2], []).append(value)
            continue
        if name in fields:
            raise bad(f"{name} is given more than once")
        fields[name] = value
    for name, values in lists.items():
        if name in fields:
            raise bad(f"{name} is given more than once")
        fields[name] = ",".join(values)
    return fields


def refuse_unknown(params: Mapping[str, str], known: Iterable[str], what: str) -> None:
    """400 naming the first parameter this server does not implement (never silently ignored)."""
    allowed = set(known)
    for name in sorted(params):
        if name not in allowed:
            raise bad(f"Parameter {name} is not supported by this server's {what}")


def flag(params: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = params.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise bad(f"{name} must be true or false (1 or 0), not {value[:40]!r}")


def check_public_id(public_id: str, what: str = "public_id") -> str:
    """The id itself, or a 400 saying what is wrong with it (it becomes a path in the originals store)."""
    if not public_id:
        raise bad(f"{what} is empty")
    if len(public_id) > MAX_PUBLIC_ID:
        raise bad(f"{what} is too long: {len(public_id)} characters, at most {MAX_PUBLIC_ID}")
    if _FORBIDDEN.search(public_id):
        raise bad(f"{what} may not contain control characters, backslashes, '?' or '#'")
    if public_id.startswith("/"):
        raise bad(f"{what} may not be an absolute path")
    for part in public_id.split("/"):
        if part in ("", ".", ".."):
            raise bad(f"{what} may not contain empty, '.' or '..' folders: {public_id[:80]!r}")
        if part.startswith("."):
            raise bad(f"{what} may not have a part starting with '.': {part[:80]!r}")
        if part != part.strip():
            raise bad(f"{what} may not have a part starting or ending with a space: {part[:80]!r}")
        if len(part.encode()) > MAX_PART_BYTES:
            raise bad(f"{what} has a part longer than {MAX_PART_BYTES} bytes")
    return public_id


def check_new_public_id(public_id: str, what: str = "public_id") -> str:
    """An id an asset is about to get (an upload's, a rename's target): as ``check_public_id``, and
    within Cloudinary's naming rules, so that the asset can be reached by every call and URL after."""
    return _named_as_cloudinary_names(check_public_id(public_id, what), what, public_id.split("/")[:-1])


def _named_as_cloudinary_names(public_id: str, what: str, folders: list[str]) -> str:
    odd = sorted(set(_NOT_IN_NEW_IDS.findall(public_id)))
    if odd:
        raise bad(
            f"{what} may not contain {' '.join(odd)}: Cloudinary forbids ?&#\\%<>+ in public ids, and a "
            f"comma would split the id in calls that take a list of them ({public_id[:80]!r})"
        )
    for part in folders:
        if _VERSION_LIKE.fullmatch(part):
            raise bad(
                f"{what}: a folder may not be named {part[:40]!r}: 'v' and digits is read as a version in "
                "delivery URLs"
            )
    return public_id


def check_prefix(prefix: str) -> str:
    """A listing's ``prefix``: its folders must be valid (its last part may be any start of a name)."""
    folder = prefix.rpartition("/")[0]
    if folder:
        check_public_id(folder, "prefix")
    return prefix


def check_folder(folder: str) -> str:
    """``folder``, its trailing slashes dropped (``shop/`` is the folder ``shop``); an absolute one
    (``/shop``) is a 400, as the id it would make is."""
    if folder.startswith("/"):
        raise bad(f"folder may not be an absolute path: {folder[:80]!r}")
    return _checked_folder(folder.rstrip("/"), "folder")


def asset_folder(params: dict[str, str]) -> str | None:
    """``asset_folder`` (dynamic folders: where the asset is filed, apart from its public id), checked as
    a folder is; None when not given ("" is the root)."""
    given = params.get("asset_folder")
    return None if given is None else _checked_folder(given.strip("/"), "asset_folder")


def _checked_folder(folder: str, name: str) -> str:
    """``folder`` (no leading or trailing slash) checked as a public id is, and its names as Cloudinary's
    are; "" is the root."""
    if not folder:
        return ""
    return _named_as_cloudinary_names(check_public_id(folder, name), name, folder.split("/"))


def random_id(length: int = 20) -> str:
    return "".join(secrets.choice(_RANDOM) for _ in range(length))


def choose_public_id(params: Mapping[str, str], filename: str | None) -> str:
    """``public_id``, else the file's name (``use_filename``, with a random suffix unless
    ``unique_filename=false``), else a random id; under ``folder``."""
    folder = check_folder(params.get("folder", ""))
    public_id = params.get("public_id", "")
    if not public_id and flag(params, "use_filename") and filename:
        stem = re.sub(r"[^\w.-]+", "_", PurePosixPath(filename.replace("\\", "/")).stem).strip("._")
        if stem:
            public_id = stem + (f"_{random_id(6)}" if flag(params, "unique_filename", True) else "")
    if not public_id:
        public_id = random_id()
    return check_new_public_id(f"{folder}/{public_id}" if folder else public_id)


def tags(params: Mapping[str, str]) -> list[str] | None:
    if "tags" not in params:
        return None
    found = [t.strip() for t in params["tags"].split(",") if t.strip()]
    for tag in found:
        if len(tag) > 255 or _FORBIDDEN.search(tag):
            raise bad(
                f"tags: {tag[:40]!r} is not a valid tag (at most 255 characters; no control characters, "
                "backslashes, '?' or '#')"
            )
    return list(dict.fromkeys(found))


def context(params: Mapping[str, str]) -> dict[str, str] | None:
    """``k=v|k2=v2`` with ``\\=`` and ``\\|`` escaped (as the SDKs encode it) -> {k: v}."""
    if "context" not in params:
        return None
    text = params["context"]
    pairs: dict[str, str] = {}
    for raw in re.split(r"(?<!\\)\|", text) if text else []:
        key, eq, value = (part.replace("\\=", "=").replace("\\|", "|") for part in _split_eq(raw))
        if not eq or not key:
            raise bad(f"context: {raw[:60]!r} is not key=value (pairs separated by '|')")
        pairs[key] = value
    return pairs


def _split_eq(raw: str) -> tuple[str, str, str]:
    match = re.search(r"(?<!\\)=", raw)
    if match is None:
        return raw, "", ""
    return raw[: match.start()], "=", raw[match.end() :]


def background_removal(params: Mapping[str, str]) -> bool | None:
    """None when not asked for; else whether fine edges were."""
    value = params.get("background_removal", "")
    if value == "":
        return None
    if value == "cloudinary_ai":
        return False
    if value == "cloudinary_ai:fine_edges":
        return True
    raise bad(
        f"background_removal {value[:40]!r} is not supported: cloudinary_ai or cloudinary_ai:fine_edges"
    )


@dataclass(frozen=True)
class Eager:
    transformation: str
    extension: str  # '' for the asset's own format


def eager(params: Mapping[str, str], named: Mapping[str, str]) -> list[Eager]:
    """``eager``: transformations separated by '|', each optionally ending in ``/<extension>``; each
    compiled now, so a bad one is a 400 before anything is stored. At most MAX_EAGER of them."""
    found = []
    items = [p for p in params.get("eager", "").split("|") if p.strip()]
    if len(items) > MAX_EAGER:  # counted before any is compiled: a body of thousands costs nothing
        raise bad(f"eager: at most {MAX_EAGER} transformations per call, got {len(items)}")
    for item in items:
        head, slash, tail = item.rpartition("/")
        extension = ""
        if slash and ("_" not in tail and "," not in tail):
            if tail and tail.lower() not in EXTENSIONS:
                raise bad(f"eager: {tail!r} is not an image format ({', '.join(EXTENSIONS)})")
            item, extension = head, tail.lower()
        try:
            transform.compile_plan(parse_transformation(item), named=named)
        except OriginError as exc:
            raise bad(f"eager: {exc.public}") from None
        found.append(Eager(item, extension))
    return found


def max_results(query: dict[str, str], default: int) -> int:
    try:
        limit = int(query.get("max_results", str(default)))
    except ValueError:
        raise bad("max_results must be an integer from 1 to 500") from None
    if not 1 <= limit <= 500:
        raise bad("max_results must be an integer from 1 to 500")
    return limit


def cursor(public_id: str) -> str:
    return base64.urlsafe_b64encode(public_id.encode()).decode().rstrip("=")


def uncursor(cursor: str) -> str:
    try:  # validated: b64decode would skip characters outside the alphabet, "!!!" reading as no cursor
        found = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        found = ""
    if not found:
        raise bad("next_cursor is not a cursor this server returned")
    return found
