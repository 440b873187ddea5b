"""The Upload and Admin API's work over the core: uploads become originals (through the originals store)
with a record beside them; background removal on upload is a job that asks the core for
``e_background_removal`` of the original, so it is claimed, queued and cached like any delivery of it
(one model run per original, whichever way it was asked for), and when it is done the asset becomes that
PNG under a new version. Notifications are Cloudinary-signed webhooks kept on the record.

Durability: a job, and every notification not yet delivered, is written on the record with a
``jobs/<public_id>`` marker before anything else happens; a driver (one per asset, across processes:
a claim in the coordinator with a lease) works until nothing is left, and a sweep at start-up and every
lease picks up assets whose driver died. A job commits in steps that a restart can finish: backups
first, then the record (phase ``committed``), then the original, then the notification.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from cache import Entry
from cutout.fetch import FetchPolicy, check_url, fetch, parse_url
from cutout.schedule import POLL_SECONDS
from cutout.service import Prepared, Service
from cutout.settings import Settings
from cutout.upload import params as p
from cutout.upload.assets import Assets, Base, Record, content_fields, delivery_path, iso, new_version, view
from cutout.upload.errors import UploadError, bad, from_origin, not_found
from cutout.upload.images import decode_file_field, inspect
from cutout.webhooks import CloudinarySigner, Delivery, RetryPolicy, deliver, webhook_policy
from grammar import parse_path
from grammar.errors import NotFound, OriginError, StillGenerating

log = logging.getLogger("cutout.upload")

#: Parameters each call understands; anything else is refused with a 400 naming it.
SIGNING = ("timestamp", "signature", "api_key")
UPLOAD_PARAMS = (*SIGNING, "file", "public_id", "folder", "use_filename", "unique_filename", "overwrite",
                 "tags", "context", "eager", "eager_async", "eager_notification_url", "notification_url",
                 "background_removal", "backup", "invalidate", "type", "filename_override", "display_name",
                 "resource_type")  # fmt: skip
EXPLICIT_PARAMS = (*SIGNING, "public_id", "type", "eager", "eager_async", "eager_notification_url",
                   "notification_url", "background_removal", "tags", "context", "invalidate",
                   "resource_type")  # fmt: skip
DESTROY_PARAMS = (*SIGNING, "public_id", "type", "invalidate", "resource_type")
UPDATE_PARAMS = ("background_removal", "notification_url", "tags", "context", "display_name")
RESOURCE_PARAMS = ("versions", "max_results")
LIST_PARAMS = ("prefix", "max_results", "next_cursor", "tags", "context", "type")
RESTORE_PARAMS = ("public_ids", "versions")
#: Notifications and deliveries kept on a record (the oldest go first).
KEPT_NOTIFICATIONS = 20


def _now_precise() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Uploads:
    def __init__(self, settings: Settings, service: Service) -> None:
        assert settings.api_key and settings.api_secret, "checked by load_settings"
        self.settings = settings
        self.service = service
        self.api_key, self.api_secret = settings.api_key, settings.api_secret
        self.assets = Assets(service.originals, service.coordinator)
        self.signer = CloudinarySigner(settings.api_secret)
        self.hook_policy = webhook_policy()
        self.fetch_policy = FetchPolicy.from_environ()
        self.retry = RetryPolicy.from_environ()
        self.lease = settings.lease_seconds
        self.owner = self.assets.owner
        self.group: TaskGroup | None = None

    # == the Upload API ================================================================================
    async def upload(self, received: p.Received, base: Base) -> Record:
        params = received.params
        p.refuse_unknown(params, UPLOAD_PARAMS, "Upload API")
        self._check_type(params)
        public_id = p.choose_public_id(params, params.get("filename_override") or received.filename)
        tags, context = p.tags(params), p.context(params)
        fine = self._removal(params)
        eagers = p.eager(params, self.settings.named)
        notification_url = self._hook(params, "notification_url")
        eager_url = self._hook(params, "eager_notification_url")
        overwrite, backup = p.flag(params, "overwrite", True), p.flag(params, "backup")
        eager_async = p.flag(params, "eager_async")
        p.flag(params, "invalidate")  # accepted (a new version is a new URL), but only as a boolean
        data = await self._file(received)
        found = await anyio.to_thread.run_sync(inspect, data, self.settings.max_pixels)
        details = {
            "tags": tags or [], "context": context or {}, "backup": backup,
            "original_filename": _stem(params.get("filename_override") or received.filename),
            "display_name": params.get("display_name"),
        }  # fmt: skip
        record, outcome = await anyio.to_thread.run_sync(
            partial(self._store, public_id, data, found.format, found.width, found.height, details,
                    overwrite=overwrite, fine=fine, notification_url=notification_url, base=base)
        )  # fmt: skip
        shown = view(record, base, self.api_secret)
        if outcome == "existing":
            return {**shown, "existing": True}
        if outcome == "overwritten":
            shown["overwritten"] = True
        self._start_if_unfinished(record)
        if eagers:
            shown["eager"] = await self._eager(
                record, eagers, base, eager_async, eager_url or notification_url
            )
        return {**shown, "api_key": self.api_key}

    def _check_type(self, params: dict[str, str]) -> None:
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
                check_url(parse_url(url), self.hook_policy)
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
        fmt: str,
        width: int,
        height: int,
        details: dict[str, Any],
        *,
        overwrite: bool,
        fine: bool | None,
        notification_url: str | None,
        base: Base,
    ) -> tuple[Record, str]:
        """Store one upload under the asset's lock (blocking): (the record, new|overwritten|existing)."""
        with self.assets.locked(public_id):
            old = self.assets.current(public_id)
            if old is not None and not overwrite:
                return old, "existing"
            stored = self.assets.record(public_id)  # a deleted asset's record keeps its backups
            before = old or stored
            now = time.time()
            record: Record = {
                "public_id": public_id,
                "asset_id": before["asset_id"] if before else uuid.uuid4().hex,
                "version": new_version(before["version"] if before else None),
                **content_fields(data, fmt, width, height),
                "created_at": old["created_at"] if old else iso(now),
                "uploaded_at": iso(now),
                **{k: v for k, v in details.items() if v is not None},
                "backups": list(before.get("backups", [])) if before else [],
                "derived": [], "info": {}, "job": None,
                "notifications": _pending(before),
            }  # fmt: skip
            record["backup"] = bool(details["backup"] or (before and before.get("backup")))
            if record["backup"]:
                self.assets.back_up(record, data)
            if fine is not None:
                self._ask_removal(record, fine, notification_url, base)
            elif notification_url:
                payload = {
                    "notification_type": "upload",
                    "timestamp": iso(now),
                    **view(record, base, self.api_secret),
                }
                self._notify(record, notification_url, payload)
            # The marker first when a crash between the writes would matter: a record that no longer
            # describes the original (a restart reconciles it), or work a restart must find. A new id
            # without work needs none: its original alone is an asset, described from the file.
            marked = stored is not None or _unfinished(record)
            if marked:
                self.assets.mark_unfinished(public_id)
            self.service.originals.write(public_id, fmt, data)
            self.assets.save(record)
            if marked and not _unfinished(record):
                self.assets.mark_finished(public_id)
            return record, "overwritten" if old is not None else "new"

    def _ask_removal(self, record: Record, fine: bool, notification_url: str | None, base: Base) -> None:
        record["info"] = {"background_removal": {"cloudinary_ai": {"status": "pending"}}}
        record["job"] = {
            "id": uuid.uuid4().hex, "fine_edges": fine, "source": record["sha256"], "phase": "run",
            "notification_url": notification_url, "base": base.to_json(), "asked_at": time.time(),
        }  # fmt: skip

    def _notify(self, record: Record, url: str, payload: dict[str, Any]) -> None:
        delivery = Delivery.new(url, {**payload, "signature_key": self.api_key}, "cloudinary")
        record["notifications"] = [*record["notifications"], delivery.to_json()][-KEPT_NOTIFICATIONS:]

    async def explicit(self, params: dict[str, str], base: Base) -> Record:
        p.refuse_unknown(params, EXPLICIT_PARAMS, "explicit")
        self._check_type(params)
        public_id = p.check_public_id(params.get("public_id", ""))
        fine = self._removal(params)
        eagers = p.eager(params, self.settings.named)
        notification_url = self._hook(params, "notification_url")
        eager_url = self._hook(params, "eager_notification_url")
        changes = {"tags": p.tags(params), "context": p.context(params)}
        eager_async = p.flag(params, "eager_async")
        p.flag(params, "invalidate")
        record = await anyio.to_thread.run_sync(
            partial(self._change, public_id, changes, fine, notification_url, base)
        )
        self._start_if_unfinished(record)
        shown = view(record, base, self.api_secret)
        if eagers:
            shown["eager"] = await self._eager(
                record, eagers, base, eager_async, eager_url or notification_url
            )
        return shown

    def _change(
        self,
        public_id: str,
        changes: dict[str, Any],
        fine: bool | None,
        notification_url: str | None,
        base: Base,
    ) -> Record:
        with self.assets.locked(public_id):
            record = self.assets.current(public_id)
            if record is None:
                raise not_found(public_id)
            record.update({k: v for k, v in changes.items() if v is not None})
            if fine is not None:
                if record.get("job"):
                    raise UploadError(420, f"Background removal of {public_id} is already pending")
                self._ask_removal(record, fine, notification_url, base)
                self.assets.mark_unfinished(public_id)
            self.assets.save(record)
            return record

    async def destroy(self, params: dict[str, str]) -> dict[str, str]:
        p.refuse_unknown(params, DESTROY_PARAMS, "destroy")
        self._check_type(params)
        public_id = p.check_public_id(params.get("public_id", ""))
        return await anyio.to_thread.run_sync(self._destroy, public_id)

    def _destroy(self, public_id: str) -> dict[str, str]:
        with self.assets.locked(public_id):
            record = self.assets.current(public_id)
            if record is None:
                return {"result": "not found"}
            self.service.originals.delete(public_id)
            if record.get("backups"):  # kept, so that api.restore can bring it back
                self.assets.save({**record, "deleted": True, "job": None})
            else:
                self.assets.forget(public_id)
            return {"result": "ok"}

    # == the Admin API ================================================================================
    async def resource(self, public_id: str, query: dict[str, str], base: Base) -> Record:
        p.refuse_unknown(query, RESOURCE_PARAMS, "Admin API resource")
        record = await anyio.to_thread.run_sync(self.assets.current, public_id)
        if record is None:
            raise not_found(public_id)
        return self._detailed(record, base, versions=p.flag(query, "versions"))

    def _detailed(self, record: Record, base: Base, *, versions: bool = False) -> Record:
        shown = view(record, base, self.api_secret)
        shown["backup"] = bool(record.get("backups"))
        shown["derived"] = record.get("derived", [])
        if versions:
            shown["versions"] = [{**b, "restorable": True} for b in record.get("backups", [])]
        if record.get("notifications"):
            shown["notifications"] = [_summary(Delivery.from_json(d)) for d in record["notifications"]]
        return shown

    async def update(self, public_id: str, params: dict[str, str], base: Base) -> Record:
        p.refuse_unknown(params, UPDATE_PARAMS, "Admin API update")
        fine = self._removal(params)
        notification_url = self._hook(params, "notification_url")
        changes = {
            "tags": p.tags(params),
            "context": p.context(params),
            "display_name": params.get("display_name"),
        }
        record = await anyio.to_thread.run_sync(
            partial(self._change, public_id, changes, fine, notification_url, base)
        )
        self._start_if_unfinished(record)
        return self._detailed(record, base)

    async def listing(self, query: dict[str, str], base: Base) -> Record:
        p.refuse_unknown(query, LIST_PARAMS, "Admin API resources")
        if query.get("type", "upload") != "upload":
            raise bad("type: only upload is supported")
        try:
            limit = int(query.get("max_results", "10"))
        except ValueError:
            raise bad("max_results must be an integer from 1 to 500") from None
        if not 1 <= limit <= 500:
            raise bad("max_results must be an integer from 1 to 500")
        after = _uncursor(query["next_cursor"]) if query.get("next_cursor") else None
        return await anyio.to_thread.run_sync(self._list, query.get("prefix", ""), limit, after, base)

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
                found.append(view(record, base, self.api_secret))
        more = last is not None and ids[-1] != last
        return {"resources": found, **({"next_cursor": _cursor(last)} if more and last else {})}

    async def restore(self, params: dict[str, str], base: Base) -> Record:
        p.refuse_unknown(params, RESTORE_PARAMS, "Admin API restore")
        ids = [i for i in params.get("public_ids", "").split(",") if i]
        if not ids:
            raise bad("Missing required parameter - public_ids")
        versions = [v for v in params.get("versions", "").split(",") if v]
        results = {}
        for public_id in ids:
            p.check_public_id(public_id, "public_ids")
            results[public_id] = await anyio.to_thread.run_sync(self._restore, public_id, versions, base)
        return results

    def _restore(self, public_id: str, versions: list[str], base: Base) -> Record:
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
            record.update(content_fields(data, found.format, found.width, found.height))
            record["version_id"] = chosen["version_id"]  # the same bytes: the backup stands for it
            record.update({"version": new_version(record["version"]), "deleted": False, "derived": [],
                           "job": None, "uploaded_at": iso(time.time())})  # fmt: skip
            self.service.originals.write(public_id, found.format, data)
            self.assets.save(record)
            return self._detailed(record, base)

    # == eager transformations ==========================================================================
    async def _eager(
        self, record: Record, eagers: list[p.Eager], base: Base, background: bool, notify: str | None
    ) -> list[Record]:
        shown: list[Record] = []
        later: list[tuple[p.Eager, Prepared]] = []
        batch = uuid.uuid4().hex
        for item in eagers:
            prepared = await anyio.to_thread.run_sync(self._prepare_eager, record, item)
            url, secure_url = base.urls(delivery_path(record, item.transformation, item.extension))
            if background or prepared.plan.needs_segmentation:
                later.append((item, prepared))
                shown.append({"transformation": item.transformation, "status": "processing",
                              "batch_id": batch, "url": url, "secure_url": secure_url})  # fmt: skip
                continue
            try:
                entry = await self.service.scheduler.make(prepared)
            except OriginError as exc:  # the upload is stored: the item says why it was not made
                shown.append(
                    {"transformation": item.transformation, "status": "failed", "reason": exc.public}
                )
                continue
            shown.append(_derived(item, entry, url, secure_url))
        done = [item for item in shown if "status" not in item]
        if done:
            await anyio.to_thread.run_sync(self._add_derived, record, done, None)
        if later:
            assert self.group is not None
            self.group.start_soon(self._eager_later, record, later, base, batch, notify)
        return shown

    def _prepare_eager(self, record: Record, item: p.Eager) -> Prepared:
        path = parse_path(f"/image/upload/{delivery_path(record, item.transformation, item.extension)}")
        prepared = self.service.resolver.prepare(path, accept=None, signed_ok=True)
        self.service.coordinator.allow(prepared.allow_name)  # eager derivatives are allowed in strict mode
        return prepared

    async def _eager_later(
        self,
        record: Record,
        later: list[tuple[p.Eager, Prepared]],
        base: Base,
        batch: str,
        notify: str | None,
    ) -> None:
        made = []
        for item, prepared in later:
            url, secure_url = base.urls(delivery_path(record, item.transformation, item.extension))
            try:
                entry = await self.service.scheduler.wait_until(prepared, time.monotonic() + 600)
            except StillGenerating:  # the original changed under it (a new upload, a removal done)
                reason = f"{record['public_id']} has a newer version than v{record['version']}"
                made.append({"transformation": item.transformation, "status": "failed", "reason": reason})
                continue
            except OriginError as exc:
                made.append({"transformation": item.transformation, "status": "failed", "reason": exc.public})
                continue
            if entry is None:
                made.append(
                    {"transformation": item.transformation, "status": "failed", "reason": "timed out"}
                )
                continue
            made.append(_derived(item, entry, url, secure_url))
        payload = None
        if notify:
            payload = {"notification_type": "eager", "eager": made, "batch_id": batch,
                       "public_id": record["public_id"], "asset_id": record["asset_id"],
                       "version": record["version"]}  # fmt: skip
        await anyio.to_thread.run_sync(
            self._add_derived, record, [m for m in made if "status" not in m], (notify, payload)
        )
        self.start(record["public_id"])

    def _add_derived(
        self, made: Record, derived: list[Record], notice: tuple[str | None, Any] | None
    ) -> None:
        with self.assets.locked(made["public_id"]):
            record = self.assets.current(made["public_id"])
            if record is None:
                return
            # Replaced meanwhile (a new upload, or the background removal done): those derivatives are of
            # an older version and are not listed, but whoever asked is told all the same.
            fresh = record["version"] == made["version"]
            for item in derived if fresh else []:
                entry = {**item, "id": hashlib.md5(item["url"].encode()).hexdigest()}
                record["derived"] = [d for d in record.get("derived", []) if d["id"] != entry["id"]] + [entry]
            if notice is not None and notice[0]:
                self._notify(record, notice[0], notice[1])
                self.assets.mark_unfinished(record["public_id"])
            self.assets.save(record)

    # == the driver =====================================================================================
    def _start_if_unfinished(self, record: Record) -> None:
        if _unfinished(record):
            self.start(record["public_id"])

    def start(self, public_id: str) -> None:
        assert self.group is not None, "started by the app's lifespan"
        self.group.start_soon(self.drive, public_id)

    async def sweep_forever(self) -> None:
        """Finish what a stopped or dead process left: at start-up, then every lease."""
        while True:
            for public_id in await anyio.to_thread.run_sync(self.assets.unfinished):
                self.start(public_id)
            await anyio.sleep(max(self.lease, 1.0))

    async def drive(self, public_id: str) -> None:
        key = f"upload-job:{public_id}"
        claim = self.service.coordinator.claim
        if not await anyio.to_thread.run_sync(partial(claim, key, self.owner, lease=self.lease)):
            return  # somebody drives it; if they die, the sweep comes back after the lease
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._keep_claim, key)
                while True:
                    step = await anyio.to_thread.run_sync(self._next_step, public_id, key)
                    if step is None:
                        break
                    kind, item = step
                    if kind == "run":
                        await self._run(public_id, item)
                    else:
                        await self._deliver(public_id, item)
                group.cancel_scope.cancel()
        except Exception:
            log.exception("upload work on %s failed; the sweep retries it", public_id)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.service.coordinator.release, key, self.owner)

    async def _keep_claim(self, key: str) -> None:
        while True:
            await anyio.sleep(self.lease / 3)
            await anyio.to_thread.run_sync(
                partial(self.service.coordinator.renew, key, self.owner, lease=self.lease)
            )

    def _next_step(self, public_id: str, key: str) -> tuple[str, Any] | None:
        """What is left to do on an asset (blocking): ('run', job), ('deliver', delivery JSON), or None
        when nothing is (the marker and the claim are then gone, under the lock, so that an upload
        that adds work after this look starts a driver that can claim)."""
        with self.assets.locked(public_id):
            record = self.assets.record(public_id)
            if record is not None:
                self._reconcile(record)
                job = record.get("job")
                if job is not None and job["phase"] == "committed":
                    self._complete(record)
                    job = None
                if job is not None and not record.get("deleted"):
                    return "run", job
                for text in record.get("notifications", []):
                    if Delivery.from_json(text).state == "pending":
                        return "deliver", text
            self.assets.mark_finished(public_id)
            self.service.coordinator.release(key, self.owner)
            return None

    def _reconcile(self, record: Record) -> None:
        """After a crash between writing an original and its record: the record follows the file."""
        job = record.get("job")
        if record.get("deleted") or (job is not None and job["phase"] == "committed"):
            return
        try:
            found = self.service.originals.locate(record["public_id"])
        except NotFound:
            return
        if self.service.originals.version(found) == record["sha256"]:
            return
        data = self.service.originals.read(record["public_id"])
        try:
            shape = inspect(data, self.settings.max_pixels)
        except UploadError:
            return
        log.warning(
            "%s: the record did not match the original (a crash mid-upload); reconciled", record["public_id"]
        )
        record.update(content_fields(data, shape.format, shape.width, shape.height))
        record.update({"version": new_version(record["version"]), "job": None, "info": {}})
        self.assets.save(record)

    async def _run(self, public_id: str, job: Record) -> None:
        effect = "e_background_removal" + (":fineedges_y" if job["fine_edges"] else "")
        path = parse_path(f"/image/upload/{effect}/v1/{quote(public_id, safe='/')}.png")
        resolver, scheduler = self.service.resolver, self.service.scheduler
        while True:
            try:
                prepared = await anyio.to_thread.run_sync(
                    partial(resolver.prepare, path, accept=None, signed_ok=True)
                )
                if prepared.source_key != job["source"]:
                    if await anyio.to_thread.run_sync(self._wanted, public_id, job):
                        await self._fail(
                            public_id, job, "The original changed while its background was removed"
                        )
                    return
                if self.service.models.masks is None:
                    await self._fail(
                        public_id, job, "Background removal is not available: no segmentation model"
                    )
                    return
                entry = await scheduler.wait_until(prepared, time.monotonic() + self.lease / 3)
            except StillGenerating:
                await anyio.sleep(POLL_SECONDS)
                continue
            except OriginError as exc:
                await self._fail(public_id, job, exc.public)
                return
            if entry is not None:
                await anyio.to_thread.run_sync(self._commit, public_id, job, entry)
                return
            if not await anyio.to_thread.run_sync(self._wanted, public_id, job):
                return  # replaced by a newer upload or removed: its result would be of old content

    def _wanted(self, public_id: str, job: Record) -> bool:
        record = self.assets.record(public_id)
        return (
            record is not None
            and not record.get("deleted")
            and (record.get("job") or {}).get("id") == job["id"]
        )

    async def _fail(self, public_id: str, job: Record, reason: str) -> None:
        await anyio.to_thread.run_sync(self._failed, public_id, job, reason)

    def _failed(self, public_id: str, job: Record, reason: str) -> None:
        with self.assets.locked(public_id):
            record = self.assets.record(public_id)
            if record is None or (record.get("job") or {}).get("id") != job["id"]:
                return
            record["info"] = {"background_removal": {"cloudinary_ai": {"status": "failed", "reason": reason}}}
            record["job"] = None
            if job.get("notification_url"):
                self._notify(
                    record,
                    job["notification_url"],
                    self._info_payload(record, job, "failed", {"error": {"message": reason}}),
                )
            self.assets.save(record)
        log.info("background removal of %s failed: %s", public_id, reason)

    def _commit(self, public_id: str, job: Record, entry: Entry) -> None:
        """The cut-out becomes the asset (blocking): backups, then the record, then the original."""
        with self.assets.locked(public_id):
            record = self.assets.record(public_id)
            if record is None or record.get("deleted") or (record.get("job") or {}).get("id") != job["id"]:
                return  # replaced or removed meanwhile: the newer original stays
            original = self.service.originals.read(public_id)
            if hashlib.sha256(original).hexdigest() != job["source"]:
                return
            self.assets.back_up(record, original)
            width, height = int(entry.meta["width"]), int(entry.meta["height"])
            record.update(content_fields(entry.data, "png", width, height))
            record["version"] = new_version(record["version"])
            self.assets.back_up(record, entry.data)
            confidence = float(entry.meta.get("confidence", 0.0))
            record["info"] = {"background_removal": {"cloudinary_ai": {
                "status": "complete", "data": {"confidence_score": confidence}}}}  # fmt: skip
            record["derived"] = []
            record["job"] = {**job, "phase": "committed", "confidence": confidence}
            self.assets.save(record)
            self._complete(record)

    def _complete(self, record: Record) -> None:
        """Finish a committed job (under the lock): the original is the record's, the client is told."""
        job = record["job"]
        try:
            current = self.service.originals.version(self.service.originals.locate(record["public_id"]))
        except NotFound:
            current = None
        if current != record["sha256"]:
            data = self.assets.backup(record["public_id"], record["version_id"])
            assert data is not None, "a committed cut-out is backed up before the record says so"
            self.service.originals.write(record["public_id"], record["format"], data)
        record["job"] = None
        if job.get("notification_url"):
            score = {"confidence_score": job["confidence"]}
            self._notify(record, job["notification_url"], self._info_payload(record, job, "complete", score))
        self.assets.save(record)

    def _info_payload(self, record: Record, job: Record, status: str, data: dict[str, Any]) -> dict[str, Any]:
        url, secure_url = Base.from_json(job["base"]).urls(delivery_path(record))
        return {
            "info_kind": "cloudinary_ai", "info_status": status, "etag": record["etag"],
            "notification_type": "info", "asset_id": record["asset_id"], "public_id": record["public_id"],
            "uploaded_at": record["uploaded_at"], "version": record["version"], "url": url,
            "secure_url": secure_url,
            "info_data": {"cloudinary_ai_hints": [], "cloudinary_ai_fine_edges": job["fine_edges"], **data},
            "notification_context": {"triggered_at": _now_precise()},
        }  # fmt: skip

    async def _deliver(self, public_id: str, text: str) -> None:
        async def keep(attempted: Delivery) -> None:
            await anyio.to_thread.run_sync(self._keep_delivery, public_id, attempted)

        delivery = Delivery.from_json(text)
        await deliver(delivery, self.signer, self.hook_policy, self.retry, on_attempt=keep)
        if delivery.state == "pending":  # not kept (the record was replaced): nothing more to do here
            delivery.state = "failed"

    def _keep_delivery(self, public_id: str, attempted: Delivery) -> None:
        with self.assets.locked(public_id):
            record = self.assets.record(public_id)
            if record is None:
                return
            texts = record.get("notifications", [])
            for i, text in enumerate(texts):
                if Delivery.from_json(text).id == attempted.id:
                    texts[i] = attempted.to_json()
                    self.assets.save(record)
                    return


def _pending(record: Record | None) -> list[str]:
    """The notifications of an asset's earlier version that are still to be delivered."""
    if record is None:
        return []
    return [t for t in record.get("notifications", []) if Delivery.from_json(t).state == "pending"]


def _unfinished(record: Record) -> bool:
    return record.get("job") is not None or bool(_pending(record))


def _summary(delivery: Delivery) -> Record:
    last = delivery.attempts[-1] if delivery.attempts else None
    return {
        "id": delivery.id, "url": delivery.url, "state": delivery.state, "attempts": len(delivery.attempts),
        "last_status": last.status if last else None, "last_error": last.error if last else None,
    }  # fmt: skip


def _derived(item: p.Eager, entry: Entry, url: str, secure_url: str) -> Record:
    return {
        "transformation": item.transformation, "width": int(entry.meta["width"]),
        "height": int(entry.meta["height"]), "bytes": len(entry.data), "format": entry.meta["format"],
        "url": url, "secure_url": secure_url,
    }  # fmt: skip


def _stem(filename: str | None) -> str | None:
    if not filename:
        return None
    return filename.replace("\\", "/").rpartition("/")[2].rpartition(".")[0] or None


def _cursor(public_id: str) -> str:
    return base64.urlsafe_b64encode(public_id.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise bad("next_cursor is not a cursor this server returned") from None
