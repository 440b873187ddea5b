"""Reading an Upload or Admin API request: its parameters (multipart, form-urlencoded, JSON or the query,
lists sent as ``key[]``) and the values the server understands: public ids, folders, tags, context,
eager transformations, booleans. Every parameter is either understood or refused with a 400 naming it."""

from __future__ import annotations

import base64
import re
import secrets
import string
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

import anyio
import anyio.to_thread
from starlette.formparsers import FormParser, MultiPartException
from starlette.requests import Request

from cutout import jsonbody
from cutout.api.errors import ApiError
from cutout.api.intake import limit_body
from cutout.upload.errors import UploadError, bad
from cutout.upload.form import MAX_FIELDS, read_multipart, text
from cutout.upload.spool import Spool
from grammar import parse_transformation
from grammar.errors import OriginError
from grammar.image_formats import EXTENSIONS
from transform.hints import compile_unhinted

#: The parameters every signed call carries besides its own.
SIGNING = ("timestamp", "signature", "api_key")
#: Cloudinary's limit on a public id.
MAX_PUBLIC_ID = 255
#: One folder or name of a public id (the file system's limit, less room for an extension).
MAX_PART_BYTES = 200
#: Control characters (C0, DEL and C1, as grammar.path.is_control: ids are quoted in messages and
#: file names), backslashes, and what would end a URL's path.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\\?#]")
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


#: Raises an ``UploadError`` (401, 403) unless these parameters come from a caller allowed to make the call.
Check = Callable[[dict[str, str]], None]

#: Bodies of callers not known yet that went to disk (over ``spool.SPILL_BYTES``), parsed at once: each
#: is read back into memory only to find its signature, so this bounds what unknown callers hold.
_UNKNOWN_PARSED_AT_ONCE = 2


class Reader:
    """Reads one server's Upload and Admin API requests: their parameters (query and body) and ``file``,
    once their caller is known (``Check``). A body's bytes come before the signature they carry can be
    checked: what a caller not known yet sends waits on disk, not in memory (``cutout.upload.spool``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._unknown: anyio.Semaphore | None = None  # made in the event loop, at its first use

    async def read(self, request: Request, check: Check | None = None) -> Received:
        """The request's parameters and file once ``check`` passes on all of them (None: the caller is
        known already, by HTTP Basic); 400 for a malformed body and for a body over the limit (counted
        while it streams); what ``check`` raises for a caller it refuses, before any file is read back."""
        try:
            limit_body(request, self.limit)
            return await self._read(request, check)
        except ApiError as exc:  # the body limit, in the HTTP API's shape
            if exc.code == "file_too_large":
                raise bad("File size too large: the request body is over CUTOUT_MAX_UPLOAD_BYTES "
                          f"({self.limit} bytes)") from None  # fmt: skip
            raise UploadError(exc.status, exc.detail) from None

    async def _read(self, request: Request, check: Check | None) -> Received:
        items: list[tuple[str, str]] = list(request.query_params.multi_items())
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media == "multipart/form-data":
            return await self._multipart(request, items, check)
        if media in ("application/x-www-form-urlencoded", "application/json"):
            if check is None or _passes(check, items):  # HTTP Basic, or a signature in the query
                raw = await request.body()
            else:
                return await self._unknown_body(request, media, items, check)
            items += await _parse(request, media, raw, self.limit)
        elif media and request.method != "GET":
            raise bad(f"Content-Type {media} is not multipart/form-data, form-urlencoded or JSON")
        elif _has_body(request):  # read as nothing, its parameters would be silently ignored
            raise bad("The request has a body but no Content-Type: send multipart/form-data, "
                      "application/x-www-form-urlencoded or application/json")  # fmt: skip
        return self._checked(items, check)

    async def _multipart(
        self, request: Request, items: list[tuple[str, str]], check: Check | None
    ) -> Received:
        def known(fields: list[tuple[str, str]]) -> bool:
            return check is None or _passes(check, items + fields)

        content_type = request.headers["content-type"]
        fields, part = await read_multipart(content_type, request.stream(), self.limit, known)
        try:
            params = _merge(items + fields)
            if check is not None:
                check(params)
            if part is None:
                return Received(params, None, None)
            if "file" in params:
                raise bad("file is given more than once")
            data = part.read() if part.spool is None else await anyio.to_thread.run_sync(part.read)
        finally:
            if part is not None:
                part.close()
        if part.filename is None:  # a ``file`` text field (data URI, base64, URL) that waited on disk
            return Received({**params, "file": text(data, part.charset)}, None, None)
        return Received(params, data, part.filename)

    async def _unknown_body(
        self, request: Request, media: str, items: list[tuple[str, str]], check: Check
    ) -> Received:
        """A form-urlencoded or JSON body whose caller is not known before it is read (its signature is in
        it): written to disk as it comes, then parsed and checked; at most ``_UNKNOWN_PARSED_AT_ONCE`` of
        those over ``SPILL_BYTES`` at once."""
        spool = Spool()
        try:
            async for chunk in request.stream():
                spool.add(chunk)
                if spool.due:
                    await anyio.to_thread.run_sync(spool.flush)
            if not spool.spilled:
                return self._checked(items + await _parse(request, media, spool.read(), self.limit), check)
            if self._unknown is None:
                self._unknown = anyio.Semaphore(_UNKNOWN_PARSED_AT_ONCE)
            async with self._unknown:
                raw = await anyio.to_thread.run_sync(spool.read)
                return self._checked(items + await _parse(request, media, raw, self.limit), check)
        finally:
            spool.close()

    @staticmethod
    def _checked(items: list[tuple[str, str]], check: Check | None) -> Received:
        """The parameters of a request without a file part, once ``check`` passes on them."""
        params = _merge(items)
        if check is not None:
            check(params)
        return Received(params, None, None)


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length", "").strip()
    return "transfer-encoding" in request.headers or (length != "" and length != "0")


def _passes(check: Check, items: list[tuple[str, str]]) -> bool:
    try:
        check(_merge(items))
    except UploadError:
        return False
    return True


async def _parse(request: Request, media: str, raw: bytes, limit: int) -> list[tuple[str, str]]:
    """The fields of a whole form-urlencoded or JSON body."""
    if media == "application/json":
        return _json(raw)

    async def whole() -> AsyncGenerator[bytes, None]:
        yield raw

    try:
        form = await FormParser(request.headers, whole(), max_fields=MAX_FIELDS, max_part_size=limit).parse()
    except MultiPartException as exc:
        raise bad(f"Malformed form body: {exc.message}") from None
    return [(name, value) for name, value in form.multi_items() if isinstance(value, str)]


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
    (``/shop``) is a 400, as the id it would make is (issue 11 names absolute paths among the hostile
    folders; ``asset_folder`` is a label, not where the original is written, and drops its slashes)."""
    if folder.startswith("/"):
        raise bad(f"folder may not be an absolute path: {folder[:80]!r}")
    return _checked_folder(folder.rstrip("/"), "folder")


def asset_folder(params: Mapping[str, str]) -> str | None:
    """``asset_folder`` (dynamic folders: where the asset is filed, apart from its public id), checked as
    a folder is (at most MAX_PUBLIC_ID characters); None when not given ("" is the root)."""
    given = params.get("asset_folder")
    return None if given is None else _checked_folder(given.strip("/"), "asset_folder")


#: A display name's length. Cloudinary publishes no limit; one kept on every record and shown in every
#: answer and listing is held to a public id's.
MAX_DISPLAY_NAME = MAX_PUBLIC_ID


def display_name(params: Mapping[str, str]) -> str | None:
    """``display_name`` (dynamic folders: the name shown for the asset), at most MAX_DISPLAY_NAME
    characters; None when not given."""
    given = params.get("display_name")
    if given is not None and len(given) > MAX_DISPLAY_NAME:
        raise bad(f"display_name is too long: {len(given)} characters, at most {MAX_DISPLAY_NAME}")
    return given


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
    # Both read whether they matter or not, so that a malformed value is a 400, never passed over.
    use_filename, unique = flag(params, "use_filename"), flag(params, "unique_filename", True)
    if not public_id and use_filename and filename:
        stem = re.sub(r"[^\w.-]+", "_", PurePosixPath(filename.replace("\\", "/")).stem).strip("._")
        if stem:
            public_id = stem + (f"_{random_id(6)}" if unique else "")
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


#: Custom regions one asset may keep (Cloudinary publishes no limit; each one is kept on the record).
MAX_CUSTOM_COORDINATES = 100
_COORDINATE = re.compile(r"[0-9]{1,9}")
Region = tuple[int, int, int, int]


def custom_coordinates(params: Mapping[str, str]) -> list[Region] | None:
    """``custom_coordinates``: ``x,y,w,h`` regions (pixels of the original: left, top, width, height)
    separated by '|', as the SDKs send their list of lists; a ``key[]`` list of four numbers is one region.
    None when not given; [] when empty (which clears them). Checked against the image by ``inside``."""
    if "custom_coordinates" not in params:
        return None
    text = params["custom_coordinates"].strip()
    parts = text.split("|") if text else []
    if len(parts) > MAX_CUSTOM_COORDINATES:
        raise bad(f"custom_coordinates: at most {MAX_CUSTOM_COORDINATES} regions, got {len(parts)}")
    regions = []
    for part in parts:
        numbers = [n.strip() for n in part.split(",")]
        if len(numbers) != 4 or not all(_COORDINATE.fullmatch(n) for n in numbers):
            raise bad(
                f"custom_coordinates: {part[:60]!r} is not a region: four non-negative integers x,y,w,h "
                "(regions separated by '|')"
            )
        x, y, w, h = (int(n) for n in numbers)
        if w < 1 or h < 1:
            raise bad(f"custom_coordinates: {part[:60]!r} is an empty region (its width and height must be "
                      "at least 1)")  # fmt: skip
        regions.append((x, y, w, h))
    return regions


def inside(regions: list[Region], width: int, height: int) -> list[list[int]]:
    """The regions as the record keeps them, or a 400 for one that is not inside the ``width`` x
    ``height`` image they describe."""
    for x, y, w, h in regions:
        if x + w > width or y + h > height:
            raise bad(
                f"custom_coordinates: the region {x},{y},{w},{h} is not inside the image ({width}x{height})"
            )
    return [list(region) for region in regions]


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
    compiled now, so a bad one is a 400 before anything is stored. At most MAX_EAGER of them. The same
    one twice (transformation and extension: the same derived URL) is kept once, in its first place."""
    found = []
    items = [p for p in params.get("eager", "").split("|") if p.strip()]
    if len(items) > MAX_EAGER:  # counted before any is compiled: a body of thousands costs nothing
        raise bad(f"eager: at most {MAX_EAGER} transformations per call, got {len(items)}")
    for written in items:
        item = eager_item(written)
        try:
            compile_unhinted(parse_transformation(item.transformation), named=named)  # w_auto: its fallback
        except OriginError as exc:
            raise bad(f"eager: {exc.public}") from None
        if item not in found:  # one derived per URL, listed once, as Cloudinary's
            found.append(item)
    return found


def eager_item(text: str) -> Eager:
    """One eager transformation, split from the ``/<extension>`` it may end in (a last part with no '_'
    or ',': no transformation's parameter is written so), or a 400 for one that is not an image format."""
    head, slash, tail = text.rpartition("/")
    if slash and ("_" not in tail and "," not in tail):
        if tail and tail.lower() not in EXTENSIONS:
            raise bad(f"eager: {tail!r} is not an image format ({', '.join(EXTENSIONS)})")
        return Eager(head, tail.lower())
    return Eager(text, "")


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
