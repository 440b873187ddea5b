"""The Upload and Admin API's calls over the core: uploads become originals (through the originals store)
with a record beside them (``assets``); what is not done before the answer (background removal, eager
batches, notifications) is left on the record for the asset's driver (``jobs``).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import anyio.to_thread

from cutout.fetch import FetchPolicy, fetch
from cutout.service import Service
from cutout.settings import Settings
from cutout.upload import params as p
from cutout.upload.assets import Assets, Base, Record, delivery_path, iso, new_version, view
from cutout.upload.errors import UploadError, bad, from_origin, not_found
from cutout.upload.images import decode_file_field, inspect
from cutout.upload.jobs import Jobs, derived, list_derived, pending, summary, unfinished, written
from cutout.upload.manage import Manage
from cutout.upload.parts import Parts, Range
from cutout.webhooks import Delivery, check_target, webhook_policy
from grammar.errors import OriginError

log = logging.getLogger("cutout.upload")

#: Parameters each call understands; anything else is refused with a 400 naming it.
SIGNING = p.SIGNING
UPLOAD_PARAMS = (*SIGNING, "file", "public_id", "folder", "use_filename", "unique_filename", "overwrite",
                 "tags", "context", "eager", "eager_async", "eager_notification_url", "notification_url",
                 "background_removal", "backup", "invalidate", "type", "filename_override", "display_name",
                 "resource_type", "asset_folder", "custom_coordinates")  # fmt: skip
#: explicit's documented parameters that this server implements (Cloudinary's Upload API reference,
#: "explicit"); the others it documents (async, metadata, headers, face_coordinates, regions, moderation,
#: the analyses...) are refused by name. ``overwrite`` there is about derived *videos*: "When specifying
#: existing eager transformations for images, corresponding derived images are always regenerated".
EXPLICIT_PARAMS = (*SIGNING, "public_id", "type", "eager", "eager_async", "eager_notification_url",
                   "notification_url", "background_removal", "tags", "context", "invalidate",
                   "resource_type", "custom_coordinates", "overwrite", "display_name",
                   "asset_folder")  # fmt: skip
DESTROY_PARAMS = (*SIGNING, "public_id", "type", "invalidate", "resource_type")
UPDATE_PARAMS = ("background_removal", "notification_url", "tags", "context", "display_name", "asset_folder",
                 "custom_coordinates")  # fmt: skip
RESOURCE_PARAMS = ("versions", "max_results", "coordinates")
LIST_PARAMS = ("prefix", "max_results", "next_cursor", "tags", "context", "type", "public_ids")
RESTORE_PARAMS = ("public_ids", "versions")
_VERSION_FIELDS = ("version_id", "version", "format", "size", "time")


@dataclass(frozen=True)
class _Asked:
    """What an upload asks for, from its parameters."""

    public_id: str
    tags: list[str] | None
    context: dict[str, str] | None
    custom: list[p.Region] | None
    fine: bool | None
    eagers: list[p.Eager]
    notification_url: str | None
    eager_url: str | None
    overwrite: bool
    backup: bool
    eager_async: bool


class Uploads:
    def __init__(self, settings: Settings, service: Service) -> None:
        assert settings.api_key and settings.api_secret, "checked by load_settings"
        self.settings = settings
        self.service = service
        self.api_key, self.api_secret = settings.api_key, settings.api_secret
        self.assets = Assets(service.originals, service.coordinator)
        self.jobs = Jobs(settings, service, self.assets)
        self.hook_policy = webhook_policy()
        self.fetch_policy = FetchPolicy.from_environ()
        self.parts = Parts(service.originals, settings.max_upload_bytes)
        self.reader = p.Reader(settings.max_upload_bytes)
        self.manage = Manage(self)

    def view(self, record: Record, base: Base) -> Record:
        """The asset as answers and notifications show it, signed in CUTOUT_SIGNATURE_ALGORITHM."""
        return view(record, base, self.api_secret, self.settings.signature_algorithm)

    # == the Upload API ================================================================================
    async def upload(self, received: p.Received, base: Base) -> Record:
        asked = self._asked(received)
        data = await self._file(received)
        params = received.params
        details = {
            "tags": asked.tags or [], "context": asked.context or {}, "backup": asked.backup,
            "original_filename": _stem(_filename(received)),
            "display_name": p.display_name(params),
            "asset_folder": p.asset_folder(params),
            "custom_coordinates": asked.custom or None,  # checked against the image by _store
        }  # fmt: skip
        # With eager transformations the upload's notification lists them as the answer does (Cloudinary's
        # upload notification carries the answer's ``eager``), so it is kept once they are made.
        record, outcome = await anyio.to_thread.run_sync(
            partial(self._store, asked.public_id, data, details, overwrite=asked.overwrite, fine=asked.fine,
                    notification_url=asked.notification_url, notify=not asked.eagers, base=base)
        )  # fmt: skip
        shown = self.view(record, base)
        if outcome == "existing":  # Cloudinary's answer names the key whatever the outcome
            return {**shown, "existing": True, "api_key": self.api_key}
        shown.update(_coordinates(record))
        if outcome == "overwritten":
            shown["overwritten"] = True
        if asked.eagers:  # before the driver starts: its eager batch goes first, on this version
            note = None
            if asked.notification_url:
                note = (asked.notification_url, self._upload_note(record, base, record["uploaded_at"]))
            shown["eager"] = await self._eager(
                record, asked.eagers, base, asked.eager_async, asked.eager_url or asked.notification_url,
                note,
            )
        self.jobs.start_if_unfinished(record)
        return {**shown, "api_key": self.api_key}

    def _asked(self, received: p.Received) -> _Asked:
        """An upload's parameters, each understood or refused with a 400 naming it, before its file is
        read (and at every part of a chunked upload, so that a bad one is refused at the first)."""
        params = received.params
        p.refuse_unknown(params, UPLOAD_PARAMS, "Upload API")
        self.check_type(params)
        asked = _Asked(
            public_id=self.check_writable(p.choose_public_id(params, _filename(received)), "public_id"),
            tags=p.tags(params), context=p.context(params), custom=p.custom_coordinates(params),
            fine=self._removal(params),
            eagers=p.eager(params, self.settings.named),
            notification_url=self._hook(params, "notification_url"),
            eager_url=self._hook(params, "eager_notification_url"),
            overwrite=p.flag(params, "overwrite", True), backup=p.flag(params, "backup"),
            eager_async=p.flag(params, "eager_async"),
        )  # fmt: skip
        p.flag(params, "invalidate")  # accepted (a new version is a new URL), but only as a boolean
        p.display_name(params), p.asset_folder(params)  # read again by ``upload``: here for every part
        return asked

    async def upload_part(
        self, received: p.Received, part: Range, upload_id: str | None, base: Base
    ) -> Record:
        """One part of a chunked upload (``parts``): kept and answered ``done: false``; the last part
        joins them and is answered as the whole file's upload."""
        self._asked(received)
        if received.file is None:
            raise bad("A chunked upload's parts must each come as the file part of a multipart body")
        folder = self.parts.check(upload_id, part, received.file)
        if not part.last:
            await anyio.to_thread.run_sync(self.parts.put, folder, part, received.file)
            # The SDKs send the answer's public_id with the next part: the one asked for, as asked.
            named = {"public_id": received.params["public_id"]} if received.params.get("public_id") else {}
            return {"done": False, "upload_id": upload_id, "bytes": part.end + 1, **named}
        whole = await anyio.to_thread.run_sync(self.parts.join, folder, part, received.file)
        try:
            answer = await self.upload(p.Received(received.params, whole, received.filename), base)
        except UploadError as exc:
            if exc.status < 500:  # the whole file was refused: its parts cannot make another answer
                await anyio.to_thread.run_sync(self.parts.drop, folder)
            raise
        await anyio.to_thread.run_sync(self.parts.drop, folder)
        return answer

    def check_writable(self, public_id: str, what: str) -> str:
        """The id, or a 400 when its original cannot be stored there (a folder of it is a symbolic link out
        of the originals folder, or a file): refused before any record of it is written."""
        if not self.service.originals.writable(public_id):
            raise bad(f"{what} {public_id[:80]!r} leads outside the originals folder (through a symbolic "
                      "link) or into a file: nothing was stored")  # fmt: skip
        return public_id

    def check_type(self, params: dict[str, str]) -> None:
        kind = params.get("type", "upload")
        if kind != "upload":
            raise bad(f"type {kind[:40]!r} is not supported: only upload (public) assets")
        if params.get("resource_type", "image") != "image":
            raise bad("resource_type: only image is supported")

    def _removal(self, params: dict[str, str]) -> bool | None:
        fine = p.background_removal(params)
        if fine is not None and self.service.models.masks is None:
            raise bad("background_removal: background removal is not available on this server (no model)")
        return fine

    def _hook(self, params: dict[str, str], name: str) -> str | None:
        url = params.get(name) or None
        if url is not None:
            try:
                check_target(url, self.hook_policy)
            except OriginError as exc:  # a parameter the server cannot use: 400, whatever the reason
                raise bad(f"{name}: {exc.public}") from None
        return url

    async def _file(self, received: p.Received) -> bytes:
        if received.file is not None:
            return received.file
        text = received.params.get("file")
        if text is None:
            raise bad("Missing required parameter - file")
        data = decode_file_field(text)
        if data is not None:
            return data
        if not self.fetch_policy.allow:
            raise bad("file: uploading from a URL is off on this server (CUTOUT_FETCH_ALLOW lists the hosts)")
        try:
            return (await fetch(text.strip(), self.fetch_policy)).content
        except OriginError as exc:
            raise from_origin(exc, "file") from None

    def _store(
        self,
        public_id: str,
        data: bytes,
        details: dict[str, Any],
        *,
        overwrite: bool,
        fine: bool | None,
        notification_url: str | None,
        notify: bool = True,
        base: Base,
    ) -> tuple[Record, str]:
        """Check one upload, then store it under the asset's lock (blocking, one trip to the thread pool
        for both): (the record, new|overwritten|existing)."""
        found = inspect(data, self.settings.max_pixels)
        fmt, width, height = found.format, found.width, found.height
        if fine is not None:
            refuse_animated_removal(found.pages)
        custom = details.get("custom_coordinates")
        if custom:
            details = {**details, "custom_coordinates": p.inside(custom, width, height)}
        public_id = self.assets.spelled(public_id, deleted=True)  # no look-alike twin of an asset
        with self.assets.locked(public_id):
            stored = self.assets.record(public_id)  # a deleted asset's record keeps its backups
            old = self.assets.current_of(public_id, stored)
            if old is not None and not overwrite:
                return old, "existing"
            before = old or stored
            now = time.time()
            record: Record = {
                "public_id": public_id,
                # a deleted asset with backups comes back as the same asset (restore's lineage)
                "asset_id": before["asset_id"] if before and (old or before.get("backups"))
                else uuid.uuid4().hex,
                "version": new_version(before["version"] if before else None),
                **self.assets.content_fields(data, fmt, width, height, found.pages),
                "created_at": old["created_at"] if old else iso(now),
                "uploaded_at": iso(now),
                **{k: v for k, v in details.items() if v is not None},
                "backups": list(before.get("backups", [])) if before else [],
                "derived": [], "info": {}, "job": None,
                "notifications": pending(before),
                "eager_jobs": list(before.get("eager_jobs", [])) if before else [],
            }  # fmt: skip
            record["backup"] = bool(details["backup"] or (before and before.get("backup")))
            if record["backup"]:
                self.assets.back_up(record, data)
            if fine is not None:
                self.jobs.ask_removal(record, fine, notification_url, base)
            # With a background removal too: Cloudinary sends the upload's notification when the upload
            # is done (the answer's fields: info says the removal is pending), its ``info`` one later.
            if notification_url and notify:  # kept with the record: one write, whatever happens next
                self.jobs.notify(record, notification_url, self._upload_note(record, base, iso(now)))
            # The marker first when a crash between the writes would matter: a record that no longer
            # describes the original (a restart reconciles it), or work a restart must find. A new id
            # without work needs none: its original alone is an asset, described from the file.
            marked = stored is not None or unfinished(record)
            if marked:
                self.assets.mark_unfinished(public_id)
            # A new id (no record, no original found just now, under the lock): no other format of it
            # to remove, so none is looked for.
            self.service.originals.write(
                public_id, fmt, data, replacing=before is not None, version=record["fingerprint"]
            )
            self.assets.save(record)
            if marked and not unfinished(record):
                self.assets.mark_finished(public_id)
            return record, "overwritten" if old is not None else "new"

    async def explicit(self, params: dict[str, str], base: Base) -> Record:
        p.refuse_unknown(params, EXPLICIT_PARAMS, "explicit")
        self.check_type(params)
        public_id = p.check_public_id(params.get("public_id", ""))
        fine = self._removal(params)
        eagers = p.eager(params, self.settings.named)
        notification_url = self._hook(params, "notification_url")
        eager_url = self._hook(params, "eager_notification_url")
        changes = {
            "tags": p.tags(params), "context": p.context(params),
            "custom_coordinates": p.custom_coordinates(params),
            "display_name": p.display_name(params), "asset_folder": p.asset_folder(params),
        }  # fmt: skip
        eager_async = p.flag(params, "eager_async")
        p.flag(params, "invalidate")
        # Accepted as a boolean only: an image's eager derivative is made from the same original by the
        # same transformation whether it is made again or taken from the cache (the same bytes), which is
        # what Cloudinary's "derived images are always regenerated" gives.
        p.flag(params, "overwrite")
        record = await anyio.to_thread.run_sync(
            partial(self._change, public_id, changes, fine, notification_url, base)
        )
        shown = self.view(record, base)
        if changes["custom_coordinates"] is not None:  # as the upload's answer shows those it set
            custom = record.get("custom_coordinates")
            shown["coordinates"] = {"custom": custom} if custom else {}
        # Cloudinary's reference: explicit's notification_url is told "when the operation or any
        # additional requested asynchronous action is completed": the operation itself too, so the answer
        # goes there (as an upload's does, notification_type upload), then any eager batch or removal.
        note = None
        if notification_url:
            note = (notification_url, _note(shown, iso(time.time())))
        if eagers or note:
            made = await self._eager(record, eagers, base, eager_async, eager_url or notification_url, note)
            if eagers:
                shown["eager"] = made
        self.jobs.start_if_unfinished(record)
        return {**shown, "api_key": self.api_key}  # as an upload's answer (Cloudinary's explicit has it)

    def _change(
        self,
        public_id: str,
        changes: dict[str, Any],
        fine: bool | None,
        notification_url: str | None,
        base: Base,
    ) -> Record:
        public_id = self.assets.spelled(public_id)
        with self.assets.locked(public_id):
            record = self.assets.current(public_id)
            if record is None:
                raise not_found(public_id)
            custom = changes.get("custom_coordinates")
            if custom is not None:  # checked against the image the record describes; [] clears them
                kept = p.inside(custom, record["width"], record["height"])
                changes = {**changes, "custom_coordinates": kept}
            record.update({k: v for k, v in changes.items() if v is not None})
            if record.get("custom_coordinates") == []:
                del record["custom_coordinates"]
            if fine is not None:
                refuse_animated_removal(record.get("pages", 1))
                if record.get("job"):
                    raise UploadError(420, f"Background removal of {public_id} is already pending")
                self.jobs.ask_removal(record, fine, notification_url, base)
                self.assets.mark_unfinished(public_id)
            self.assets.save(record)
            return record

    async def destroy(self, params: dict[str, str]) -> dict[str, str]:
        p.refuse_unknown(params, DESTROY_PARAMS, "destroy")
        self.check_type(params)
        p.flag(params, "invalidate")  # accepted (nothing to purge), but only as a boolean, as upload takes it
        public_id = p.check_public_id(params.get("public_id", ""))
        return await anyio.to_thread.run_sync(self.destroy_one, public_id)

    def destroy_one(self, public_id: str) -> dict[str, str]:
        public_id = self.assets.spelled(public_id)
        with self.assets.locked(public_id):
            record = self.assets.current(public_id)
            if record is None:
                return {"result": "not found"}
            self.assets.mark_unfinished(public_id)  # a crash before the record says so is reconciled
            self.service.originals.delete(public_id)
            # Kept, deleted: its backups stay for api.restore, and its version for the next upload of the
            # id, whose version must be higher (a cached URL of this one must not show another image).
            self.assets.save({**record, "deleted": True, "job": None})
            if not unfinished(record):  # else its driver delivers what it owes (and runs nothing more)
                self.assets.mark_finished(public_id)
            return {"result": "ok"}

    # == the Admin API ================================================================================
    async def resource(self, public_id: str, query: dict[str, str], base: Base) -> Record:
        p.refuse_unknown(query, RESOURCE_PARAMS, "Admin API resource")
        p.check_public_id(public_id)  # the path's id, checked as destroy checks its parameter's
        record = await anyio.to_thread.run_sync(self._current, public_id)
        if record is None:
            raise not_found(public_id)
        shown = self._detailed(record, base, versions=p.flag(query, "versions"))
        if p.flag(query, "coordinates"):
            # Cloudinary's shape; its ``faces`` (the detector's boxes) are not listed: this server detects
            # faces when a URL crops on them, per derivative, and keeps no record of them per asset.
            custom = record.get("custom_coordinates")
            shown["coordinates"] = {"custom": custom} if custom else {}
        shown["derived"] = shown["derived"][: p.max_results(query, 500)]
        return shown

    def _current(self, public_id: str) -> Record | None:
        """The asset ``public_id`` names in either Unicode spelling (``Assets.spelled``), else None."""
        return self.assets.current(self.assets.spelled(public_id))

    def _detailed(self, record: Record, base: Base, *, versions: bool = False) -> Record:
        shown = self.view(record, base)
        shown["backup"] = bool(record.get("backups"))
        shown["derived"] = record.get("derived", [])
        if versions:
            # Cloudinary's fields only: a backup also keeps what restore brings back (its name, its info).
            shown["versions"] = [{**{k: b[k] for k in _VERSION_FIELDS if k in b}, "restorable": True}
                                 for b in record.get("backups", [])]  # fmt: skip
        if record.get("notifications"):
            shown["notifications"] = [summary(Delivery.from_json(d)) for d in record["notifications"]]
        return shown

    async def update(self, public_id: str, params: dict[str, str], base: Base) -> Record:
        p.refuse_unknown(params, UPDATE_PARAMS, "Admin API update")
        p.check_public_id(public_id)
        fine = self._removal(params)
        notification_url = self._hook(params, "notification_url")
        if notification_url and fine is None:  # an update is answered at once: nothing else to tell
            raise bad("notification_url: an update notifies only of the background_removal it asks for; "
                      "send background_removal with it (explicit notifies of its own answer)")
        changes = {
            "tags": p.tags(params),
            "context": p.context(params),
            "display_name": p.display_name(params),
            "asset_folder": p.asset_folder(params),
            "custom_coordinates": p.custom_coordinates(params),
        }
        record = await anyio.to_thread.run_sync(
            partial(self._change, public_id, changes, fine, notification_url, base)
        )
        self.jobs.start_if_unfinished(record)
        return self._detailed(record, base)

    async def listing(self, query: dict[str, str], base: Base) -> Record:
        p.refuse_unknown(query, LIST_PARAMS, "Admin API resources")
        if query.get("type", "upload") != "upload":
            raise bad("type: only upload is supported")
        if "public_ids" in query:  # ``api.resources_by_ids``: those of them that exist, in the order asked
            if {"prefix", "next_cursor", "max_results"} & set(query):
                raise bad("public_ids lists assets by id: prefix, max_results and next_cursor do not apply")
            ids = [i for i in query["public_ids"].split(",") if i]
            if not 1 <= len(ids) <= 100:
                raise bad(f"public_ids: 1 to 100 ids per call, not {len(ids)}")
            wanted = list(dict.fromkeys(p.check_public_id(i, "public_ids") for i in ids))
            records = [await anyio.to_thread.run_sync(self._current, i) for i in wanted]
            # Each asset once, though asked for by both its spellings.
            found = {r["public_id"]: r for r in records if r is not None}
            return {"resources": [self.view(r, base) for r in found.values()]}
        limit = p.max_results(query, 10)
        prefix = p.check_prefix(query.get("prefix", ""))
        after = p.uncursor(query["next_cursor"]) if query.get("next_cursor") else None
        return await anyio.to_thread.run_sync(self._list, prefix, limit, after, base)

    def _list(self, prefix: str, limit: int, after: str | None, base: Base) -> Record:
        ids = sorted(i for i in self.service.originals.list(prefix) if after is None or i > after)
        found: list[Record] = []
        last = None
        for public_id in ids:
            if len(found) == limit:
                break
            last = public_id
            record = self.assets.current(public_id)
            if record is not None:
                found.append(self.view(record, base))
        more = last is not None and ids[-1] != last
        return {"resources": found, **({"next_cursor": p.cursor(last)} if more and last else {})}

    async def restore(self, params: dict[str, str], base: Base) -> Record:
        p.refuse_unknown(params, RESTORE_PARAMS, "Admin API restore")
        ids = [i for i in params.get("public_ids", "").split(",") if i]
        if not ids:
            raise bad("Missing required parameter - public_ids")
        versions = [v for v in params.get("versions", "").split(",") if v]
        # One version per public id, in the same order: a version number is Unix seconds, so one asset's
        # number can also be another's, and a list applied to every id restored an asset to a version the
        # caller never named for it.
        if versions and len(versions) != len(ids):
            raise bad(f"versions: {len(versions)} given for {len(ids)} public_ids; give one version per "
                      "public id, in the same order (or none: the latest backup of each)")  # fmt: skip
        results = {}
        for index, public_id in enumerate(ids):
            p.check_public_id(public_id, "public_ids")
            wanted = versions[index : index + 1]
            results[public_id] = await anyio.to_thread.run_sync(self._restore, public_id, wanted, base)
        return results

    def _restore(self, public_id: str, versions: list[str], base: Base) -> Record:
        public_id = self.assets.spelled(public_id, deleted=True)
        with self.assets.locked(public_id):
            record = self.assets.record(public_id)
            backups = (record or {}).get("backups", [])
            wanted = [b for b in backups if not versions or b["version_id"] in versions
                      or str(b["version"]) in versions]  # fmt: skip
            if record is None or not wanted:
                return {"error": "no_backup"}
            chosen = wanted[-1]
            data = self.assets.backup(public_id, chosen["version_id"])
            if data is None:
                return {"error": "no_backup"}
            found = inspect(data, self.settings.max_pixels)
            record.update(
                self.assets.content_fields(data, found.format, found.width, found.height, found.pages)
            )
            record["version_id"] = chosen["version_id"]  # the same bytes: the backup stands for it
            if chosen.get("original_filename"):  # the name those bytes came with
                record["original_filename"] = chosen["original_filename"]
            if "info" in chosen:  # what those bytes are (backups made before it was kept: unchanged)
                record["info"] = chosen["info"]
            regions = record.get("custom_coordinates") or []
            if any(x + w > found.width or y + h > found.height for x, y, w, h in regions):
                del record["custom_coordinates"]  # they were drawn on another image, not inside this one
            record.update({"version": new_version(record["version"]), "deleted": False, "derived": [],
                           "job": None, "uploaded_at": iso(time.time())})  # fmt: skip
            self.assets.mark_unfinished(public_id)  # a crash between the two writes is reconciled
            self.service.originals.write(public_id, found.format, data, version=record["fingerprint"])
            self.assets.save(record)
            if not unfinished(record):
                self.assets.mark_finished(public_id)
            return self._detailed(record, base)

    # == eager transformations ==========================================================================
    def _upload_note(self, record: Record, base: Base, timestamp: str) -> Record:
        """An upload's notification: the answer's fields, the coordinates it set included."""
        return _note({**self.view(record, base), **_coordinates(record)}, timestamp)

    async def _eager(
        self,
        record: Record,
        eagers: list[p.Eager],
        base: Base,
        background: bool,
        notify: str | None,
        note: tuple[str, Record] | None = None,
    ) -> list[Record]:
        """Cheap eager transformations made now; background removals and ``eager_async`` ones kept on
        the record as a batch the asset's driver makes (so a restart makes them too). ``note``: a
        notification (its URL, its payload) that lists what this answers (``eager``, when any were
        asked), kept in the same write as the batch, so that it goes before the batch's own."""
        shown: list[Record] = []
        later: list[p.Eager] = []
        batch = uuid.uuid4().hex
        for item in eagers:
            try:
                prepared = await anyio.to_thread.run_sync(self.jobs.prepare_eager, record, item)
            except OriginError as exc:
                # An overlay it names is missing, say: the asset is already stored (and an explicit's
                # changes made), so the answer must say so; an error here would have the client believe
                # nothing happened. The item says why it was not made, as a failed render's does.
                shown.append(_failed(item, exc))
                continue
            url, secure_url = base.urls(delivery_path(record, item.transformation, item.extension))
            if background or prepared.segmenting:
                later.append(item)
                shown.append({"transformation": written(item), "status": "processing",
                              "batch_id": batch, "url": url, "secure_url": secure_url})  # fmt: skip
                continue
            try:
                entry = await self.service.scheduler.make(prepared)
            except OriginError as exc:  # the upload is stored: the item says why it was not made
                shown.append(_failed(item, exc))
                continue
            shown.append(derived(item, entry, url, secure_url))
        done = [item for item in shown if "status" not in item]
        queued = None
        if later:
            queued = {
                "batch": batch, "notify": notify, "base": base.to_json(),
                "of": {k: record[k] for k in ("public_id", "version", "format", "fingerprint", "asset_id")},
                "items": [{"transformation": e.transformation, "extension": e.extension} for e in later],
            }  # fmt: skip
        notes = [(note[0], {**note[1], **({"eager": shown} if eagers else {})})] if note else []
        if done or queued or notes:
            await anyio.to_thread.run_sync(self._add_derived, record, done, queued, notes)
        if queued or notes:
            self.jobs.start(record["public_id"])
        return shown

    def _add_derived(
        self, made: Record, derived: list[Record], queued: Record | None, notes: list[tuple[str, Record]]
    ) -> None:
        with self.assets.locked(made["public_id"]):
            record = self.assets.current(made["public_id"])
            if record is None:
                return
            if record["version"] == made["version"]:  # else those are derivatives of an older version
                list_derived(record, derived)
            if queued is not None:
                record["eager_jobs"] = [*record.get("eager_jobs", []), queued]
            for url, payload in notes:  # of what was answered, even if a newer upload came meanwhile
                self.jobs.notify(record, url, payload)
            if queued is not None or notes:
                self.assets.mark_unfinished(record["public_id"])
            self.assets.save(record)


def _note(shown: Record, timestamp: str) -> Record:
    """The notification of an upload or explicit: its answer, with Cloudinary's ``notification_type``
    and ``timestamp``."""
    return {"notification_type": "upload", "timestamp": timestamp, **shown}


def _failed(item: p.Eager, exc: OriginError) -> Record:
    return {"transformation": written(item), "status": "failed", "reason": exc.public}


def _coordinates(record: Record) -> Record:
    """The ``coordinates`` an upload's answer (and its notification) shows for the custom coordinates it
    set: Cloudinary's custom_focus_areas page, "The response includes the set coordinates"
    (``coordinates: {"custom": [[x, y, w, h]]}``); nothing when it set none (a new upload keeps none it
    does not bring)."""
    custom = record.get("custom_coordinates")
    return {"coordinates": {"custom": custom}} if custom else {}


def refuse_animated_removal(pages: int) -> None:
    """A 400 for ``background_removal`` of an animation. The removal replaces the original with one PNG
    (Cloudinary: the background-removed image is stored, as a PNG), which would keep the first frame and
    silently drop the others; running the model on every frame is what delivery refuses too (one model
    run and one cached mask per frame: transform/frames.py), so the upload names it instead."""
    if pages > 1:
        raise bad(
            f"background_removal is not supported on an animated image ({pages} frames): the result is "
            "one PNG, which would keep only the first frame. Upload one frame, or remove the background "
            "of one frame at delivery (e_background_removal/pg_1)"
        )


def _filename(received: p.Received) -> str | None:
    """The name ``use_filename`` and ``original_filename`` go by: ``filename_override``, the file part's
    name, or the last part of the path of a URL the file is fetched from."""
    named = received.params.get("filename_override") or received.filename
    if named or received.file is not None:
        return named
    text = received.params.get("file", "").strip()
    if not text.lower().startswith(("http://", "https://")):
        return None
    return unquote(urlsplit(text).path.rpartition("/")[2]) or None


def _stem(filename: str | None) -> str | None:
    """The file's name without its folders and extension; a name without a dot whole (Node's streams
    send ``file``, its ``upload_large`` the name without its extension); None for none."""
    if not filename:
        return None
    name = filename.replace("\\", "/").rpartition("/")[2]
    stem, dot, _ = name.rpartition(".")
    return (stem if dot else name) or None
