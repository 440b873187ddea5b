"""The Upload API's unfinished work, driven to its end: background removals on upload (a job that asks
the core for ``e_background_removal`` of the original, so it is claimed, queued and cached like any
delivery of it: one model run per original, whichever way it was asked for), eager batches, and
Cloudinary-signed notifications, all kept on the asset's record.

Durability: work is written on the record with a ``jobs/<public_id>`` marker before anything else
happens; a driver (one per asset, across processes: a claim in the coordinator with a lease) works until
nothing is left, and a sweep at start-up and every lease picks up assets whose driver died. A job commits
in steps that a restart can finish: backups first, then the record (phase ``committed``), then the
original, then the notification; a record that disagrees with its file after a crash follows the file.
"""

from __future__ import annotations

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
from cutout.schedule import POLL_SECONDS
from cutout.service import Prepared, Service
from cutout.settings import Settings
from cutout.upload import params as p
from cutout.upload.assets import Assets, Base, Record, delivery_path, iso, new_version
from cutout.upload.errors import UploadError
from cutout.upload.images import inspect
from cutout.webhooks import CloudinarySigner, Delivery, RetryPolicy, deliver, webhook_policy
from grammar import parse_path
from grammar.errors import NotFound, OriginError, Overloaded, StillGenerating

log = logging.getLogger("cutout.upload")

#: Notifications and deliveries kept on a record (the oldest go first).
KEPT_NOTIFICATIONS = 20


def _outage(exc: BaseException) -> Overloaded | None:
    """The 503 of a store that is away (StateUnavailable, StorageUnavailable) when that is all ``exc``
    is: itself, or every exception of the task group's ExceptionGroup; else None (a bug: a traceback)."""
    if isinstance(exc, BaseExceptionGroup):
        found = [_outage(inner) for inner in exc.exceptions]
        return found[0] if found and all(found) else None
    return exc if isinstance(exc, Overloaded) else None


# The scale-out stores' clients, named rather than imported (the default path imports neither).
_CLIENTS = ("botocore", "urllib3", "redis")


def _log_failure(exc: Exception, what: str) -> None:
    """One line for a store that is away (expected, and retried), a traceback for anything else."""
    outage = _outage(exc)
    if outage is None and type(exc).__module__.partition(".")[0] in _CLIENTS:
        log.warning("%s: %s", what, exc)  # a storage call that got no answer, straight from its client
    elif outage is None:
        log.exception(what)
    else:
        log.warning("%s: %s (%s)", what, outage.public, outage.__cause__ or outage.detail)


class Jobs:
    def __init__(self, settings: Settings, service: Service, assets: Assets) -> None:
        assert settings.api_key and settings.api_secret, "checked by load_settings"
        self.settings = settings
        self.service = service
        self.assets = assets
        self.api_key = settings.api_key
        self.signer = CloudinarySigner(settings.api_secret, settings.signature_algorithm)
        self.hook_policy = webhook_policy()
        self.retry = RetryPolicy.from_environ()
        self.lease = settings.lease_seconds
        self.owner = assets.owner
        self.group: TaskGroup | None = None

    def ask_removal(self, record: Record, fine: bool, notification_url: str | None, base: Base) -> None:
        record["info"] = {"background_removal": {"cloudinary_ai": {"status": "pending"}}}
        record["job"] = {
            "id": uuid.uuid4().hex, "fine_edges": fine, "source": record["fingerprint"], "phase": "run",
            "notification_url": notification_url, "base": base.to_json(), "asked_at": time.time(),
        }  # fmt: skip

    def notify(self, record: Record, url: str, payload: dict[str, Any]) -> None:
        delivery = Delivery.new(url, {**payload, "signature_key": self.api_key}, "cloudinary")
        record["notifications"] = kept([*record["notifications"], delivery.to_json()])

    def prepare_eager(self, record: Record, item: p.Eager) -> Prepared:
        path = parse_path(f"/image/upload/{delivery_path(record, item.transformation, item.extension)}")
        prepared = self.service.resolver.prepare(path, accept=None, signed_ok=True)
        self.service.coordinator.allow(prepared.allow_name)  # eager derivatives are allowed in strict mode
        return prepared

    async def _run_eager(self, public_id: str, batch: Record) -> None:
        """Make one kept batch of eager transformations, then list them and tell whoever asked."""
        of, base = batch["of"], Base.from_json(batch["base"])
        made = []
        for spec in batch["items"]:
            item = p.Eager(spec["transformation"], spec["extension"])
            made.append(await self._make_eager(of, item, base))
        await anyio.to_thread.run_sync(self._eager_done, public_id, batch, made)

    async def _make_eager(self, of: Record, item: p.Eager, base: Base) -> Record:
        def failed(reason: str) -> Record:
            return {"transformation": written(item), "status": "failed", "reason": reason}

        newer = f"{of['public_id']} has a newer version than v{of['version']}"
        while True:
            try:
                prepared = await anyio.to_thread.run_sync(self.prepare_eager, of, item)
                if prepared.source_key != of["fingerprint"]:
                    return failed(newer)
                entry = await self.service.scheduler.wait_until(prepared, time.monotonic() + self.lease / 3)
            except StillGenerating:  # the original changed under it (a new upload, a removal done)
                return failed(newer)
            except OriginError as exc:
                return failed(exc.public)
            if entry is not None:
                url, secure_url = base.urls(delivery_path(of, item.transformation, item.extension))
                return derived(item, entry, url, secure_url)

    def _eager_done(self, public_id: str, batch: Record, made: list[Record]) -> None:
        with self.assets.locked(public_id):
            record = self.assets.record(public_id)
            if record is None:
                return
            record["eager_jobs"] = [b for b in record.get("eager_jobs", []) if b["batch"] != batch["batch"]]
            if record["version"] == batch["of"]["version"]:
                list_derived(record, [m for m in made if "status" not in m])
            if batch["notify"]:
                of = batch["of"]
                # timestamp and notification_context as Cloudinary's eager notifications carry them
                # (receivers order and deduplicate by them), as do cutout's other notifications.
                payload = {"notification_type": "eager", "eager": made, "batch_id": batch["batch"],
                           "public_id": public_id, "asset_id": of["asset_id"],
                           "version": of["version"], "timestamp": iso(time.time()),
                           "notification_context": {"triggered_at": _now_precise()}}  # fmt: skip
                self.notify(record, batch["notify"], payload)
            self.assets.save(record)

    def start_if_unfinished(self, record: Record) -> None:
        if unfinished(record):
            self.start(record["public_id"])

    def start(self, public_id: str) -> None:
        assert self.group is not None, "started by the app's lifespan"
        self.group.start_soon(self.drive, public_id)

    async def sweep_forever(self) -> None:
        """Finish what a stopped or dead process left: at start-up, then every lease. A failed listing
        (the storage away) is logged and tried again next time: an exception out of here would end the
        task group every driver runs in, and every later upload with work would answer 500."""
        while True:
            try:
                for public_id in await anyio.to_thread.run_sync(self.assets.unfinished):
                    self.start(public_id)
            except Exception as exc:
                _log_failure(exc, "sweeping unfinished upload work failed; trying again later")
            await anyio.sleep(max(self.lease, 1.0))

    async def drive(self, public_id: str) -> None:
        key = f"upload-job:{public_id}"
        claim = self.service.coordinator.claim
        try:
            claimed = await anyio.to_thread.run_sync(partial(claim, key, self.owner, lease=self.lease))
        except Exception as exc:  # Redis away: as an exception out of the sweep, it would end the group
            _log_failure(exc, f"upload work on {public_id} waits; the sweep retries it")
            return
        if not claimed:
            return  # somebody drives it; if they die, the sweep comes back after the lease
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._keep_claim, key)
                while True:
                    step = await anyio.to_thread.run_sync(self.next_step, public_id, key)
                    if step is None:
                        break
                    kind, item = step
                    if kind == "run":
                        await self._run(public_id, item)
                    elif kind == "eager":
                        await self._run_eager(public_id, item)
                    else:
                        await self._deliver(public_id, item, wait=kind == "deliver")
                group.cancel_scope.cancel()
        except Exception as exc:
            outage = _outage(exc)
            if outage is None:
                log.exception("upload work on %s failed; the sweep retries it", public_id)
            else:  # Redis or S3 away: expected, and retried; one line, not a traceback per asset
                log.warning("upload work on %s waits: %s (%s); the sweep retries it", public_id,
                            outage.public, outage.__cause__ or outage.detail)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(self.service.coordinator.release, key, self.owner)
                except Exception as exc:  # Redis away: the claim lapses after its lease instead
                    _log_failure(exc, f"releasing the upload work on {public_id} failed")

    async def _keep_claim(self, key: str) -> None:
        while True:
            await anyio.sleep(self.lease / 3)
            await anyio.to_thread.run_sync(
                partial(self.service.coordinator.renew, key, self.owner, lease=self.lease)
            )

    def next_step(self, public_id: str, key: str) -> tuple[str, Any] | None:
        """What is left to do on an asset (blocking): ('notify', delivery JSON: one due now, tried before
        the work and not waited for), ('eager', batch), ('run', job), ('deliver', delivery JSON), or None
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
                # Deliveries go in the order they were made (a receiver hears of the upload, then of its
                # background removal); the first, when due, goes before the work: the upload's
                # notification is sent when the upload is done, as Cloudinary sends it, not held back
                # until the removal ends. One that must wait for its next try waits behind the work.
                waiting = pending(record)
                if waiting and Delivery.from_json(waiting[0]).next_attempt_at <= time.time():
                    return "notify", waiting[0]
                # Eager batches first: they are of the version the upload answered with, which a
                # background removal is about to replace (and they share its mask).
                if record.get("eager_jobs") and not record.get("deleted"):
                    return "eager", record["eager_jobs"][0]
                if job is not None and not record.get("deleted"):
                    return "run", job
                if waiting:
                    return "deliver", waiting[0]
            self.assets.mark_finished(public_id)
            self.service.coordinator.release(key, self.owner)
            return None

    def _reconcile(self, record: Record) -> None:
        """After a crash between writing an original and its record (an upload, a restore, a destroy):
        the record follows the file. A committed job is finished by ``_complete`` instead."""
        job = record.get("job")
        if job is not None and job["phase"] == "committed":
            return
        public_id = record["public_id"]
        try:
            found = self.service.originals.locate(public_id)
        except NotFound:
            if not record.get("deleted"):
                log.warning(
                    "%s: its original is gone (a crash mid-destroy?); the asset is deleted", public_id
                )
                self.assets.save({**record, "deleted": True, "job": None})
            return
        if not record.get("deleted") and self.service.originals.version(found) == record["fingerprint"]:
            return
        data = self.service.originals.read(public_id)
        try:
            shape = inspect(data, self.settings.max_pixels)
        except UploadError:
            return
        log.warning("%s: the record did not match the original (a crash mid-write); reconciled", public_id)
        record.update(self.assets.content_fields(data, shape.format, shape.width, shape.height, shape.pages))
        record.update({"version": new_version(record["version"]), "job": None, "info": {}, "deleted": False})
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
                self.notify(
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
            if self.service.originals.fingerprint(original) != job["source"]:
                return
            self.assets.back_up(record, original)
            width, height = int(entry.meta["width"]), int(entry.meta["height"])
            record.update(self.assets.content_fields(entry.data, "png", width, height))
            record["version"] = new_version(record["version"])
            confidence = float(entry.meta.get("confidence", 0.0))
            record["info"] = {"background_removal": {"cloudinary_ai": {
                "status": "complete", "data": {"confidence_score": confidence}}}}  # fmt: skip
            self.assets.back_up(record, entry.data)  # with its info: a restore of it says so again
            record["derived"] = []
            record["job"] = {**job, "phase": "committed", "confidence": confidence}
            self.assets.save(record)
            self._complete(record)
        log.info("background of %s removed: v%d, confidence %.3f", public_id, record["version"], confidence)

    def _complete(self, record: Record) -> None:
        """Finish a committed job (under the lock): the original is the record's, the client is told."""
        job = record["job"]
        try:
            current = self.service.originals.version(self.service.originals.locate(record["public_id"]))
        except NotFound:
            current = None
        if current != record["fingerprint"]:
            data = self.assets.backup(record["public_id"], record["version_id"])
            assert data is not None, "a committed cut-out is backed up before the record says so"
            self.service.originals.write(
                record["public_id"], record["format"], data, version=record["fingerprint"]
            )
        record["job"] = None
        if job.get("notification_url"):
            score = {"confidence_score": job["confidence"]}
            self.notify(record, job["notification_url"], self._info_payload(record, job, "complete", score))
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

    async def _deliver(self, public_id: str, text: str, *, wait: bool = True) -> None:
        """Deliver one notification; without ``wait``, only the tries due now (other work comes first)."""

        async def keep(attempted: Delivery) -> None:
            await anyio.to_thread.run_sync(self._keep_delivery, public_id, attempted)

        delivery = Delivery.from_json(text)
        await deliver(delivery, self.signer, self.hook_policy, self.retry, on_attempt=keep, wait=wait)

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


def _now_precise() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pending(record: Record | None) -> list[str]:
    """The notifications of an asset's earlier version that are still to be delivered."""
    if record is None:
        return []
    return [t for t in record.get("notifications", []) if Delivery.from_json(t).state == "pending"]


def kept(texts: list[str]) -> list[str]:
    """At most KEPT_NOTIFICATIONS of an asset's deliveries, dropping the oldest finished ones first: a
    delivery still to be made is dropped only when that many newer ones wait too (a receiver away while
    an asset changes often), else it would be lost silently while a record of a finished one stays."""
    texts = list(texts)
    while len(texts) > KEPT_NOTIFICATIONS:
        states = (Delivery.from_json(text).state for text in texts)
        drop = next((i for i, state in enumerate(states) if state != "pending"), 0)
        del texts[drop]
    return texts


def unfinished(record: Record) -> bool:
    return record.get("job") is not None or bool(record.get("eager_jobs")) or bool(pending(record))


def list_derived(record: Record, derived: list[Record]) -> None:
    for item in derived:
        # Listed as before answers wrote the format in: the transformation alone (its ``format`` beside it).
        entry = {**item, "transformation": p.eager_item(item["transformation"]).transformation,
                 "id": hashlib.md5(item["url"].encode()).hexdigest()}  # fmt: skip
        record["derived"] = [d for d in record.get("derived", []) if d["id"] != entry["id"]] + [entry]


def summary(delivery: Delivery) -> Record:
    last = delivery.attempts[-1] if delivery.attempts else None
    return {
        "id": delivery.id, "url": delivery.url, "state": delivery.state, "attempts": len(delivery.attempts),
        "last_status": last.status if last else None, "last_error": last.error if last else None,
    }  # fmt: skip


def written(item: p.Eager) -> str:
    """The eager transformation as Cloudinary's answers and notifications write it: with its format, when
    one was asked for, after a slash (``sp_full_hd/mp4`` in the SDKs' sample eager notification)."""
    return f"{item.transformation}/{item.extension}" if item.extension else item.transformation


def derived(item: p.Eager, entry: Entry, url: str, secure_url: str) -> Record:
    return {
        "transformation": written(item), "width": int(entry.meta["width"]),
        "height": int(entry.meta["height"]), "bytes": len(entry.data), "format": entry.meta["format"],
        "url": url, "secure_url": secure_url,
    }  # fmt: skip
