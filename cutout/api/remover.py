"""The API's face over the core: an image becomes an original (stored once, by content), its options a
delivery path, and the result is claimed, queued, generated and cached exactly as a delivery URL's is.

Masks are cached per content (the original's version is its sha256), so the same image sent twice, by
URL and then by bytes, or named by ``public_id`` and requested by a delivery URL, runs the model once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import numpy as np
import pyvips

from cache import Entry
from cache.transient import API_UPLOADS
from cutout.api.errors import ApiError, from_origin
from cutout.api.intake import Intake, decode_b64
from cutout.api.options import CONTROL, SOURCES, Options, companion, parse_options, transformation
from cutout.api.tasks import visible
from cutout.fetch import FetchPolicy, fetch
from cutout.image_check import check_image
from cutout.memory import BoundedDict, ByContent
from cutout.resolve import MEMO_SECONDS
from cutout.schedule import POLL_SECONDS
from cutout.service import Prepared, Service
from grammar import parse_path
from grammar.errors import NotFound, OriginError, StillGenerating
from grammar.path import versioned_source
from transform import compile_plan
from transform.decode import oriented_size, page_count, sniff
from transform.ops.matte import margin_too_large

if TYPE_CHECKING:
    from cutout.api.tasks import Tasks
    from cutout.remote import RemoteOriginals

#: The originals folder where the API keeps what it is sent, named by sha256 (so stored once).
UPLOADS = API_UPLOADS
#: Sources whose content the request itself carries: the image is known by its hash before anything
#: is stored, so a repeated request can find its job in memory (``known_job``).
_CARRIED = ("body", "image_file", "image_file_b64")
#: The largest image whose request is looked up in memory: it is hashed on the event loop (2 MB: about
#: 1 ms), a larger one in the thread pool by ``original``.
HOT_BYTES = 2 << 20
#: How many jobs, preparations and descriptions each process remembers.
MEMO_ENTRIES = 4096
#: The images whose sha256 is remembered by their bytes (``ByContent``), in bytes.
DIGEST_BYTES = 16 << 20


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class Job:
    """What to make: the result and, for the foreground box, the mask of the same geometry."""

    public_id: str
    options: Options
    transformation: str
    companion: str

    def as_json(self) -> dict[str, Any]:
        return {
            "public_id": self.public_id,
            "transformation": self.transformation,
            "companion": self.companion,
            "output": self.options.output,
            "encoding": self.options.encoding,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        options = Options(output=data["output"], encoding=data["encoding"])
        return cls(data["public_id"], options, data["transformation"], data["companion"])


@dataclass(frozen=True)
class Result:
    entry: Entry
    meta: dict[str, Any]  # width, height, format, bytes, confidence, foreground, box
    #: The etag of the mask the description was made from (the entry's own when it is its companion):
    #: with the entry's, what the description, and so a binary answer's headers, depend on.
    mask_etag: str = ""


class Remover:
    def __init__(
        self,
        service: Service,
        policy: FetchPolicy,
        tasks: Tasks | None = None,
        remote: RemoteOriginals | None = None,
    ) -> None:
        self.service = service
        self.policy = policy
        #: Where ``task_id`` inputs are found (None: chaining is not available).
        self.tasks = tasks
        #: The fetched originals of ``/image/fetch/`` (None: every image_url is downloaded again). With
        #: them an image_url (or bg_image_url) is downloaded once and revalidated after CUTOUT_FETCH_TTL,
        #: as a fetch URL's image is: one fetcher, one copy per URL.
        self.remote = remote
        # The hot path of a repeated request (the same image and options, its result in memory): the
        # job by the request's content, the preparation by the job's path (checked against the files,
        # as the resolver's own memo is), the description by the entries' etags. Without them, a
        # cached answer cost five thread-pool hops, a header read, a plan compilation and a PNG decode.
        self._jobs: BoundedDict[tuple[Any, ...], Job] = BoundedDict(MEMO_ENTRIES)
        # A vendor's repeat carries the same image in a new body: its sha256 is not computed again.
        self._digests: ByContent[bytes, bytes] = ByContent(DIGEST_BYTES, HOT_BYTES)
        self._prepared: BoundedDict[tuple[str, str], tuple[Prepared, float]] = BoundedDict(MEMO_ENTRIES)
        self._described: BoundedDict[tuple[str, str], dict[str, Any]] = BoundedDict(MEMO_ENTRIES)

    # -- the hot path: a request seen before, its result in this process's memory -----------------------
    def _request_key(self, intake: Intake) -> tuple[Any, ...] | None:
        """What decides a job, for a request that carries its image (and any background image) itself;
        None for the others (a URL's or a public id's content may change, a task's result is rare)."""
        if intake.source not in _CARRIED or intake.data is None or len(intake.data) > HOT_BYTES:
            return None
        if any(name in intake.fields for name in ("bg_image_url", "bg_public_id", "bg_image_file")):
            return None  # fetched, mutable, or carried as text that is costlier to key than to store
        options = tuple(
            sorted((k, v) for k, v in intake.fields.items() if k not in SOURCES and k not in CONTROL)
        )
        extra = tuple(sorted((k, hashlib.sha256(v).digest()) for k, v in intake.files.items()))
        return self._digests.get(intake.data, _sha256), options, extra

    def known_job(self, intake: Intake) -> Job | None:
        """The job of a request made before whose original is still there, else None (never blocks for
        long: a hash of the image and a ``stat``)."""
        key = self._request_key(intake)
        job = self._jobs.get(key) if key is not None else None
        return job if job is not None and self._unchanged(job) else None

    def repeat(self, intake: Intake) -> tuple[Job, Result] | None:
        """The job and its result when ``intake`` repeats a request made before (the same image bytes by
        sha256, the same options) and the result and its description are in this process's memory;
        else None. Never blocks for long (a hash of the image and a ``stat``), so it may run on the event
        loop before any routing: ``cutout.api.front`` answers the native POST with it. A vendor adapter
        that reads its request into a native ``Intake`` (image bytes as source ``body``, ``image_file``
        or ``image_file_b64``; native option fields) can answer its own repeats with it too; its key and
        rate must be checked as its route checks them, and anything else (None) left to the route."""
        job = self.known_job(intake)
        if job is None:
            return None
        result = self.ready(job)
        return (job, result) if result is not None else None

    def remember_job(self, intake: Intake, job: Job) -> None:
        key = self._request_key(intake)
        if key is not None:
            self._jobs[key] = job

    def ready(self, job: Job) -> Result | None:
        """The result if it and its description are in this process's memory, else None (never blocks)."""
        entries = []
        for made in dict.fromkeys((job.transformation, job.companion)):
            prepared = self._memoised(job.public_id, made)
            entry = self.service.store.cached(prepared.key) if prepared is not None else None
            if entry is None:
                return None
            entries.append(entry)
        entry, mask = entries[0], entries[-1]
        meta = self._described.get((entry.etag, mask.etag))
        return Result(entry, meta, mask.etag) if meta is not None else None

    def _unchanged(self, job: Job) -> bool:
        """Whether the files a job was made for (the original, a background) are as they were then: a
        job depends on nothing else, so unlike a preparation it does not expire."""
        known = self._prepared.get((job.public_id, job.transformation))
        return known is not None and self.service.originals.current(known[0].files)

    def _memoised(self, public_id: str, transformation: str) -> Prepared | None:
        known = self._prepared.get((public_id, transformation))
        if (
            known is None
            or known[1] <= time.monotonic()
            or not self.service.originals.current(known[0].files)
        ):
            return None
        return known[0]

    # -- the image, stored once ----------------------------------------------------------------------
    async def original(self, intake: Intake, owner: str = "") -> str:
        """The public id of the request's image, stored first when it came with the request. ``owner``:
        the caller (``owner_of`` its key), whose tasks alone it may chain onto."""
        if self.service.models.masks is None:  # before storing what could never be used
            raise ApiError("model_unavailable", "Background removal is not available: no segmentation model")
        if intake.source == "public_id":
            public_id = intake.fields["public_id"]
            await self._located(public_id)
            return public_id
        data = intake.data
        if intake.source == "image_url":
            return await self._fetched_original(intake.fields["image_url"], "image_url")
        if intake.source == "task_id":
            data = await self._task_result(intake.fields["task_id"], owner)
        assert data is not None
        return await anyio.to_thread.run_sync(self._store, data, intake.source)

    async def _fetched_original(self, url: str, parameter: str) -> str:
        """The original holding ``url``'s image (``fetched/<sha256>``, shared with /image/fetch/)."""
        if self.remote is None or not self.policy.allow:  # no store of fetched images, or fetching is off
            data = await self._fetched(url, parameter)  # (off: the fetcher's 403 says so)
            return await anyio.to_thread.run_sync(self._store, data, parameter)
        try:
            return await self.remote.public_id(url)
        except OriginError as exc:
            raise from_origin(exc, parameter=parameter) from None

    async def _fetched(self, url: str, parameter: str) -> bytes:
        try:
            return (await fetch(url, self.policy)).content
        except OriginError as exc:
            raise from_origin(exc, parameter=parameter) from None

    async def _task_result(self, task_id: str, owner: str) -> bytes:
        """The result of an earlier task of the same caller, to chain: a new image (stored by content like
        any other)."""
        if self.tasks is None:
            raise ApiError("invalid_parameter", "task_id is not available here", parameter="task_id")
        tasks = self.tasks
        task = visible(await anyio.to_thread.run_sync(tasks.get, task_id), owner)
        if task is None:
            raise ApiError("not_found", "No such task (unknown, deleted or expired)", parameter="task_id")
        if task["status"] == "error":
            raise ApiError(
                "invalid_parameter",
                f"task {task_id} ended with an error ({task['error']['code']}): it has no result to chain",
                parameter="task_id",
            )
        if task["status"] != "success":
            raise ApiError(
                "task_not_finished",
                f"task {task_id} is {task['status']}: chain onto it once it has finished",
                parameter="task_id",
                headers={"Retry-After": "1"},
            )
        data = await anyio.to_thread.run_sync(tasks.data, task_id)
        if data is None:  # expired between the two reads
            raise ApiError("not_found", "No such task (unknown, deleted or expired)", parameter="task_id")
        return data

    async def _located(self, public_id: str, parameter: str = "public_id") -> None:
        try:
            await anyio.to_thread.run_sync(self.service.originals.locate, public_id)
        except NotFound:
            raise ApiError("not_found", f"No original {public_id!r}", parameter=parameter) from None
        except OriginError as exc:  # a malformed id (bg_public_id is not checked by the intake)
            detail = f"No original {public_id!r}: {exc.public}"
            raise ApiError("not_found", detail, parameter=parameter) from None

    async def background(
        self, options: Options, fields: Mapping[str, str], files: Mapping[str, bytes] | None = None
    ) -> Options:
        """``options`` with its background image (bg_image_file, bg_image_url or bg_public_id) stored and
        named by its public id, and ``bg_opaque`` set from it (an opaque background makes format=auto
        JPEG). Without one, ``options`` unchanged."""
        source = options.bg_source
        if source is None:
            return options
        if source == "bg_public_id":
            public_id = fields[source]
            await self._located(public_id, source)
            _check_layer_id(public_id, source)
        elif source == "bg_image_url":
            public_id = await self._fetched_original(fields[source], source)
        else:
            given = (files or {}).get(source)
            data = given if given is not None else decode_b64(fields[source], source)
            public_id = await anyio.to_thread.run_sync(self._store, data, source)
        opaque = await anyio.to_thread.run_sync(self._opaque, public_id, source)
        return replace(options, bg_image=public_id, bg_opaque=opaque)

    def _opaque(self, public_id: str, parameter: str) -> bool:
        """Whether the background image has no alpha; its header is checked like an input's."""
        path = self.service.originals.locate(public_id).path
        try:
            header = pyvips.Image.new_from_file(str(path))
        except pyvips.Error:
            raise ApiError(
                "failed_to_read_image", f"{parameter}: the image cannot be decoded", parameter=parameter
            ) from None
        if header.width * header.height > self.service.settings.max_pixels:
            raise ApiError(
                "resolution_too_high",
                f"{parameter} has {header.width}x{header.height} pixels; the limit is "
                f"{self.service.settings.max_pixels} pixels",
                parameter=parameter,
            )
        return not bool(header.hasalpha())

    def _store(self, data: bytes, source: str) -> str:
        fmt = sniff(data[:16])
        if fmt is None:
            where = "the body" if source == "body" else source
            raise ApiError(
                "invalid_file_type",
                f"{where} is not a JPEG, PNG, GIF, WebP, AVIF, HEIC or TIFF image",
                parameter=None if source == "body" else source,
            )
        digest = hashlib.sha256(data).hexdigest()
        public_id = f"{UPLOADS}/{digest}"
        originals = self.service.originals
        try:
            originals.locate(public_id)
            return public_id  # already here: rewriting it would make renders in flight discard their results
        except NotFound:
            pass
        try:  # before the write: a refused file is never kept
            check_image(data, self.service.settings.max_pixels)
        except OriginError as exc:
            error = from_origin(exc)
            if source != "body":  # which image (a background's too): as the parameter, and in the detail
                # that every face's envelope carries
                detail = f"{source}: {error.detail}"
                error = ApiError(error.code, detail, parameter=source, headers=error.headers)
            raise error from None
        originals.write(public_id, fmt, data, version=digest)  # cache.transient: bounded, by content
        return public_id

    # -- the job ----------------------------------------------------------------------------------------
    async def job(
        self, public_id: str, fields: dict[str, str], files: Mapping[str, bytes] | None = None
    ) -> Job:
        """The job for the options in ``fields`` (``files``: multipart parts such as bg_image_file).
        Remembered by the original and the options: the same request again (by public_id, or by an
        image_url already stored) skips the header read, while its files are unchanged."""
        key = self._job_key(public_id, fields, files)
        known = self._jobs.get(key) if key is not None else None
        if known is not None and self._unchanged(known):
            return known
        made = await self._new_job(public_id, fields, files)
        if key is not None:
            self._jobs[key] = made
        return made

    @staticmethod
    def _job_key(
        public_id: str, fields: Mapping[str, str], files: Mapping[str, bytes] | None
    ) -> tuple[Any, ...] | None:
        """None when the job may change although the original and the options do not: a background by
        URL (its content may), or one carried as text or in large parts (costlier to key than to make)."""
        if "bg_image_url" in fields or "bg_image_file" in fields:
            return None
        if sum(len(v) for v in (files or {}).values()) > HOT_BYTES:
            return None
        options = tuple(sorted((k, v) for k, v in fields.items() if k not in SOURCES and k not in CONTROL))
        extra = tuple(sorted((k, hashlib.sha256(v).digest()) for k, v in (files or {}).items()))
        return "original", public_id, options, extra

    async def _new_job(
        self, public_id: str, fields: Mapping[str, str], files: Mapping[str, bytes] | None
    ) -> Job:
        options = parse_options(fields, tuple(files or ()))
        if options.bg_source == "bg_image_file" and "bg_image_file" not in fields:
            if not (files or {}).get("bg_image_file"):
                raise ApiError("invalid_parameter", "bg_image_file is empty", parameter="bg_image_file")
        width, height, pages = await anyio.to_thread.run_sync(self._shape, public_id)
        options = await self.background(options, fields, files)
        # An animated original is cut out on its first frame, as the hosted APIs do (the engine refuses a
        # background removed on every frame of an animation, which a WebP result would otherwise be).
        first = "pg_1/" if pages > 1 else ""
        made, mask = transformation(options, width, height), companion(options, width, height)
        return Job(public_id, options, first + made, first + mask)

    async def dimensions(self, public_id: str) -> tuple[int, int]:
        """The original's width and height (400/413 as ``job``): for the adapters' vendor limits."""
        return await anyio.to_thread.run_sync(self._size, public_id)

    def _size(self, public_id: str) -> tuple[int, int]:
        width, height, _ = self._shape(public_id)
        return width, height

    def _shape(self, public_id: str) -> tuple[int, int, int]:
        """The original's width and height (as ``dimensions``) and its pages (frames of an animation)."""
        originals = self.service.originals
        path = originals.local(originals.locate(public_id))
        try:
            header = pyvips.Image.new_from_file(str(path))
        except pyvips.Error:
            raise ApiError("failed_to_read_image", "The image cannot be decoded") from None
        # As the engine will see it: upright (EXIF orientations 5-8 swap the sides), or a portrait photo's
        # roi in pixels and max_megapixels box would be laid on its sideways shape.
        width, height = oriented_size(header)
        if width * height > self.service.settings.max_pixels:
            raise ApiError(
                "resolution_too_high",
                f"The image has {width}x{height} pixels; the limit is "
                f"{self.service.settings.max_pixels} pixels",
            )
        return width, height, page_count(header)

    def _prepare(self, public_id: str, transformation: str) -> Prepared:
        known = self._memoised(public_id, transformation)
        if known is not None:
            return known
        path = parse_path(f"/image/upload/{transformation}/{versioned_source(public_id)}")
        # The API checked its caller's key: strict mode's URL checks are for unauthenticated URLs.
        prepared = self.service.resolver.prepare(path, accept=None, signed_ok=True)
        self._prepared[(public_id, transformation)] = (prepared, time.monotonic() + MEMO_SECONDS)
        return prepared

    # -- making it -----------------------------------------------------------------------------------------
    async def make(self, job: Job, wait: float) -> Result | None:
        """The result, or None when it is not ready within ``wait`` seconds (it goes on being made)."""
        hot = self.ready(job)
        if hot is not None:
            return hot
        deadline = time.monotonic() + wait
        try:
            entry = await self._made(job.public_id, job.transformation, deadline)
            if entry is None:
                return None
            mask_entry = entry
            if job.companion != job.transformation:
                found = await self._made(job.public_id, job.companion, deadline)
                if found is None:
                    return None
                mask_entry = found
        except OriginError as exc:
            raise _named(from_origin(exc)) from None
        meta = self._described.get((entry.etag, mask_entry.etag))
        if meta is None:
            meta = await anyio.to_thread.run_sync(describe, entry, mask_entry)
            self._described[(entry.etag, mask_entry.etag)] = meta
        return Result(entry, meta, mask_entry.etag)

    async def _made(self, public_id: str, transformation: str, deadline: float) -> Entry | None:
        while True:
            prepared = await anyio.to_thread.run_sync(self._prepare, public_id, transformation)
            try:
                return await self._wait(prepared, deadline)
            except StillGenerating:
                # The original was rewritten meanwhile (two uploads of one image at once: same content,
                # new file): prepare again, against the file as it is now.
                if time.monotonic() >= deadline:
                    return None
                await anyio.sleep(POLL_SECONDS)

    async def _wait(self, prepared: Prepared, deadline: float) -> Entry | None:
        if self.service.models.masks is None:
            raise ApiError("model_unavailable", "Background removal is not available: no segmentation model")
        return await self.service.scheduler.wait_until(prepared, deadline)


def _named(error: ApiError) -> ApiError:
    """A render's error in the API's words: the 413 of the margin ``crop_margin`` added names it (the
    caller never wrote ``e_margin``), with the size it would make and the limit."""
    stated = margin_too_large(error.detail) if error.code == "resolution_too_high" else None
    if stated is None:
        return error
    detail = f"crop_margin makes the result too large: {stated}"
    return ApiError(error.code, detail, parameter="crop_margin", headers=error.headers)


def _check_layer_id(public_id: str, parameter: str) -> None:
    """A background is placed with ``u_<id>``: an id that a layer cannot name (a comma, a colon, a
    percent sign...) is a 400 naming the field, not a failed render later."""
    layer = public_id.replace("/", ":")
    try:
        path = parse_path(f"/image/upload/u_{layer}/fl_layer_apply/x")
        named = compile_plan(path.components).layer_ids
    except OriginError:
        named = frozenset()
    if set(named) != {public_id}:
        raise ApiError(
            "invalid_parameter", f"{parameter} {public_id!r} cannot be used as a layer", parameter=parameter
        )


def describe(entry: Entry, mask: Entry) -> dict[str, Any]:
    """The result's description. The box is where the mask is at least half opaque, in the result's
    pixels (the mask went through the same trim, margin and scaling); zeros when nothing is."""
    width, height = int(entry.meta["width"]), int(entry.meta["height"])
    alpha = pyvips.Image.new_from_buffer(mask.data, "")
    # The mask alone (one band), or a cut-out that is its own companion: its alpha is the mask.
    left, top, box_w, box_h = foreground_box(alpha.extract_band(alpha.bands - 1))
    confidence = entry.meta.get("confidence", mask.meta.get("confidence"))
    return {
        "width": width,
        "height": height,
        "format": entry.meta["format"],
        "bytes": len(entry.data),
        "confidence": None if confidence is None else round(float(confidence), 4),
        "foreground": {"left": left, "top": top, "width": box_w, "height": box_h},
        "box": {
            "left": round(left / width, 4),
            "top": round(top / height, 4),
            "width": round(box_w / width, 4),
            "height": round(box_h / height, 4),
        },
    }


def foreground_box(alpha: pyvips.Image) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the pixels at least half opaque; zeros when there are none.
    Counted exactly (libvips' find_trim median-filters, and fails on images under 3 pixels a side)."""
    opaque = np.asarray(alpha.numpy()).reshape(alpha.height, alpha.width) > 127  # 1x1 comes back 0-d
    rows, columns = np.flatnonzero(opaque.any(axis=1)), np.flatnonzero(opaque.any(axis=0))
    if rows.size == 0:
        return 0, 0, 0, 0
    top, left = int(rows[0]), int(columns[0])
    return left, top, int(columns[-1]) - left + 1, int(rows[-1]) - top + 1
