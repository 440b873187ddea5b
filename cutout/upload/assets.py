"""Asset records: what Cloudinary knows about an upload that the file does not say (version, asset id,
tags, context, background-removal status, backups, notifications), kept as JSON records beside the
originals through the originals store's record calls, so they live wherever the originals do.

Record names: ``assets/<public_id>`` (the record), ``backups/<public_id>/<version_id>`` (a backed-up
version's bytes), ``jobs/<public_id>`` (the asset has unfinished work: a background removal or a
notification to deliver; a restarted server finishes these). Changes to one asset happen under a lock
that every process agrees on (a claim in the coordinator), so two uploads of one id never mix.

An original put into the folder by hand has no record: it is described from the file (version from its
modification time) and gets a record the first time it is changed through the API.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import pyvips

from cache import Coordinator, OriginalsStore
from cutout.versions import ASSET_RECORDS, asset_record_name
from grammar.errors import NotFound
from transform.decode import oriented_size, page_count

Record = dict[str, Any]

#: How long one asset's lock is held at most (a dead process's lock lapses after this).
LOCK_LEASE = 30.0


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_version(previous: int | None) -> int:
    """Cloudinary's versions are Unix seconds; a new one is always higher than the one it replaces."""
    now = int(time.time())
    return now if previous is None else max(now, previous + 1)


class Assets:
    def __init__(self, originals: OriginalsStore, coordinator: Coordinator) -> None:
        self.originals = originals
        self.coordinator = coordinator
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

    # -- locking -----------------------------------------------------------------------------------------
    @contextmanager
    def locked(self, public_id: str) -> Iterator[None]:
        """Hold ``public_id``'s lock (blocking): one change to an asset at a time, in every process."""
        key = f"upload-lock:{public_id}"
        deadline = time.monotonic() + 2 * LOCK_LEASE
        while not self.coordinator.claim(key, self.owner, lease=LOCK_LEASE):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the lock on {public_id} was not released")
            time.sleep(0.005)
        try:
            yield
        finally:
            self.coordinator.release(key, self.owner)

    @contextmanager
    def locked_all(self, public_ids: list[str]) -> Iterator[None]:
        """Hold every one of these ids' locks, taken in one order (two calls never wait on each other)."""
        with ExitStack() as stack:
            for public_id in sorted(set(public_ids)):
                stack.enter_context(self.locked(public_id))
            yield

    # -- records -----------------------------------------------------------------------------------------
    def record(self, public_id: str) -> Record | None:
        """The stored record (deleted ones included), else None."""
        try:
            data = self.originals.get_record(asset_record_name(public_id))
        except ValueError:  # not a name the store can hold: no such asset
            return None
        return None if data is None else dict(json.loads(data))

    def save(self, record: Record) -> None:
        """Store the record (under the asset's lock), its tags indexed first (``tagged``)."""
        if not record.get("deleted"):
            indexed = record.get("indexed", [])
            fresh = [t for t in record.get("tags", []) if t not in indexed]
            for tag in fresh:
                self.originals.put_record(f"{_tag_folder(tag)}/{record['public_id']}", b"")
            if fresh:
                record["indexed"] = sorted({*indexed, *fresh})
        self._write(record)

    def _write(self, record: Record) -> None:
        self.originals.put_record(
            asset_record_name(record["public_id"]), json.dumps(record, sort_keys=True).encode()
        )

    # -- the tag index -----------------------------------------------------------------------------------
    # ``tags/<hash of the tag>/<public_id>``: an empty record per asset that has (or had) the tag, written
    # before the record that names it, so that the index holds every tagged asset. It may hold more (a
    # tag since removed, an asset since deleted): readers check the record, and ``untag`` drops the entry
    # then. ``indexed`` on a record lists the tags already in the index, so that a save writes nothing
    # for tags it did not add.
    def tagged(self, tag: str) -> list[str]:
        """Public ids the index lists for ``tag`` (a superset of those that have it), sorted."""
        folder = _tag_folder(tag)
        return sorted(name[len(folder) + 1 :] for name in self.originals.list_records(folder))

    def index_existing(self) -> int:
        """Index the tags of records saved before the tag index existed (blocking; once per store: a
        marker record says it is done, and running it twice is harmless). How many were indexed."""

        def index(record: Record) -> bool:
            if all(t in record.get("indexed", []) for t in record.get("tags", [])):
                return False
            self.save(record)
            return True

        return self._repair_once(_INDEXED_MARKER, index)

    def _repair_once(self, marker: str, repair: Callable[[Record], bool]) -> int:
        """``repair`` every asset's record (not deleted), each under its lock, once per store: the
        ``marker`` record says it is done. How many ``repair`` says it changed."""
        if self.originals.get_record(marker) is not None:
            return 0
        changed = 0
        for name in list(self.originals.list_records(ASSET_RECORDS)):
            public_id = name.removeprefix(f"{ASSET_RECORDS}/")
            with self.locked(public_id):
                record = self.record(public_id)
                if record is not None and not record.get("deleted") and repair(record):
                    changed += 1
        self.originals.put_record(marker, b"{}")
        return changed

    # -- records from before sizes were read upright -------------------------------------------------------
    def upright_existing(self) -> int:
        """Turn upright the sizes of records written before uploads were described upright (an EXIF
        orientation 5-8 photo recorded with its stored sides, 300x200 where every delivery is 200x300).
        Once per store (a marker record), in the background at start-up: one header read per asset, once,
        rather than one on every read of a record (object storage fetches an original to read it). Safe
        to run twice or on two replicas at once: a record is changed only under its lock, only while the
        stored original is still the one it describes (its fingerprint), and only when its size is the
        stored sides and the upright sides differ; a repaired record no longer matches. How many changed."""

        def upright(record: Record) -> bool:
            if record.get("pages", 1) > 1:  # EXIF orientation is not applied to animations
                return False
            size = self._upright_size(record["public_id"], record)
            if size is None:
                return False
            record["width"], record["height"] = size
            regions = record.get("custom_coordinates") or []
            if any(x + w > size[0] or y + h > size[1] for x, y, w, h in regions):
                del record["custom_coordinates"]  # checked against the sideways size: as restore does
            self._write(record)
            return True

        return self._repair_once(_UPRIGHT_MARKER, upright)

    def _upright_size(self, public_id: str, record: Record) -> tuple[int, int] | None:
        """The upright size of the stored original when the record holds its stored sides instead; None
        when the record is right, or describes other bytes than those stored (a newer write wins)."""
        try:
            found = self.originals.locate(public_id)
            if self.originals.version(found) != record.get("fingerprint"):
                return None
            header = pyvips.Image.new_from_file(str(self.originals.local(found)))
        except (NotFound, FileNotFoundError, pyvips.Error):
            return None
        stored, upright = (header.width, header.height), oriented_size(header)
        recorded = (record.get("width"), record.get("height"))
        return upright if recorded == stored and upright != stored else None

    def untag(self, public_id: str, tag: str) -> None:
        """Drop ``public_id``'s index entry for ``tag`` if its record does not have the tag (blocking)."""
        with self.locked(public_id):
            record = self.record(public_id)
            if record is not None and not record.get("deleted") and tag in record.get("tags", []):
                return
            self.originals.delete_record(f"{_tag_folder(tag)}/{public_id}")
            if record is not None and tag in record.get("indexed", []):
                record["indexed"] = [t for t in record["indexed"] if t != tag]
                self._write(record)  # not ``save``: nothing to index

    def spelled(self, public_id: str, *, deleted: bool = False) -> str:
        """The spelling of ``public_id`` its asset has: the id as written when there is such an asset, else
        its other Unicode normal form (NFC or NFD) when that one is, else the id as written. ``café``
        composed and decomposed look alike and mean the same, and delivery URLs find either
        (``cutout.resolve.locate_either_form``): every API call finds it the same way, and an upload under
        the other spelling replaces the asset rather than storing a look-alike twin. ``deleted``: a
        deleted asset's record counts too (restore, and the version an upload must pass)."""
        forms = dict.fromkeys([public_id, *(unicodedata.normalize(f, public_id) for f in ("NFC", "NFD"))])
        if len(forms) == 1:  # ASCII, most ids: nothing else to look for
            return public_id
        for form in forms:
            record = self.record(form)
            if self.current_of(form, record) is not None or (deleted and record is not None):
                return form
        return public_id

    def current(self, public_id: str) -> Record | None:
        """The asset as it is now: its record, or one made from a file without a record; None when there
        is no such asset (or it was deleted)."""
        return self.current_of(public_id, self.record(public_id))

    def current_of(self, public_id: str, record: Record | None) -> Record | None:
        """``current`` for a caller that has read the stored record (``record``) already."""
        if record is not None:
            return None if record.get("deleted") else record
        try:
            found = self.originals.locate(public_id)
            path = self.originals.local(found)  # object storage: fetched first (a lookup only lists)
            st = os.stat(path)
            # Not the local copy's time: object storage's copy is as new as its download, a different
            # time on every replica (each answer gave another version, so another immutable URL).
            modified = self.originals.modified(found)
        except (NotFound, FileNotFoundError):  # or gone since it was listed (another replica removed it)
            return None
        try:
            header = pyvips.Image.new_from_file(str(path))
            width, height = oriented_size(header)  # upright, as delivered (image_check's too)
            pages = page_count(header)
        except pyvips.Error:  # described all the same; delivering it answers why it cannot be read
            width = height = 0
            pages = 1
        fmt = path.suffix.lower().lstrip(".")
        return {
            "public_id": public_id,
            "asset_id": hashlib.md5(public_id.encode()).hexdigest(),
            "version": int(modified),
            "version_id": self.originals.version(found)[:32],
            "format": "jpg" if fmt == "jpeg" else fmt,
            "bytes": st.st_size,
            "width": width,
            "height": height,
            "pages": max(1, pages),
            "etag": _md5_of(str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino),
            "fingerprint": self.originals.version(found),
            "created_at": iso(modified),
            "uploaded_at": iso(modified),
            "tags": [],
            "context": {},
            "backups": [],
            "derived": [],
            "info": {},
            "job": None,
            "notifications": [],
        }

    # -- backups -----------------------------------------------------------------------------------------
    def back_up(self, record: Record, data: bytes) -> None:
        """Keep ``data`` as the backup of the record's current version (once), with what describes those
        bytes: the name they came with, and their ``info`` (a finished background removal's; one still
        pending is not theirs), which ``restore`` brings back with them."""
        if any(b["version_id"] == record["version_id"] for b in record["backups"]):
            return
        self.originals.put_record(f"backups/{record['public_id']}/{record['version_id']}", data)
        info = {name: value for name, value in record.get("info", {}).items()
                if name != "background_removal" or _removal_status(value) == "complete"}  # fmt: skip
        record["backups"].append({
            "version_id": record["version_id"], "version": record["version"], "format": record["format"],
            "size": len(data), "time": iso(time.time()), "info": info,
            **({"original_filename": record["original_filename"]} if record.get("original_filename") else {}),
        })  # fmt: skip

    def backup(self, public_id: str, version_id: str) -> bytes | None:
        return self.originals.get_record(f"backups/{public_id}/{version_id}")

    # -- unfinished work -----------------------------------------------------------------------------
    def mark_unfinished(self, public_id: str) -> None:
        self.originals.put_record(f"jobs/{public_id}", b"{}")

    def mark_finished(self, public_id: str) -> None:
        self.originals.delete_record(f"jobs/{public_id}")

    def content_fields(self, data: bytes, fmt: str, width: int, height: int, pages: int = 1) -> Record:
        """The fields of a record that describe one version's bytes; ``fingerprint`` is the version the
        originals store gives them once written (a folder: sha256; object storage: the ETag). ``pages``:
        an animation's frames (Cloudinary's ``pages``, shown when more than one)."""
        etag = hashlib.md5(data).hexdigest()  # Cloudinary's etag: the file's MD5
        return {
            "format": fmt, "bytes": len(data), "width": width, "height": height, "pages": pages,
            "etag": etag, "fingerprint": self.originals.fingerprint(data, md5=etag),
            "version_id": uuid.uuid4().hex,
        }  # fmt: skip

    def unfinished(self) -> list[str]:
        return sorted(name.removeprefix("jobs/") for name in self.originals.list_records("jobs"))


#: Written once every record saved before the tag index existed has been indexed.
_INDEXED_MARKER = "index/tags-1"
#: Written once every record saved before sizes were read upright (EXIF orientation) has been checked.
_UPRIGHT_MARKER = "index/upright-1"


def _removal_status(info: Any) -> str | None:
    """The status of ``info["background_removal"]`` (its one add-on's), None when it says none."""
    if isinstance(info, dict):
        for value in info.values():
            if isinstance(value, dict):
                return str(value.get("status"))
    return None


@lru_cache(maxsize=4096)
def _md5_of(path: str, *stamp: int) -> str:
    """Cloudinary's etag (the MD5) of a file put in by hand, memoised by path and stamp: a listing reads
    each such file once per process, not at every call."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _tag_folder(tag: str) -> str:
    # Hashed: a tag may hold characters and lengths no record name can.
    return f"tags/{hashlib.sha256(tag.encode()).hexdigest()[:32]}"


# -- what clients see -------------------------------------------------------------------------------------
class Base:
    """Where delivery URLs point: ``public``, the base URL clients reach delivery at (``CUTOUT_PUBLIC_URL``,
    else the scheme and Host the request came with), is ``secure_url``'s; ``url`` is the same in http, as
    Cloudinary's ``url`` and ``secure_url`` are. Kept on pending work as JSON, so that a notification sent
    after a restart points where the answer did."""

    def __init__(self, public: str, cloud: str) -> None:
        self.public, self.cloud = public.rstrip("/"), cloud

    def to_json(self) -> dict[str, str]:
        return {"public": self.public, "cloud": self.cloud}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Base:
        if "public" not in data:  # written before CUTOUT_PUBLIC_URL: the request's scheme and host
            return cls(f"{data['scheme']}://{data['host']}", data["cloud"])
        return cls(data["public"], data["cloud"])

    def urls(self, path: str) -> tuple[str, str]:
        tail = f"{quote(self.cloud, safe='')}/image/upload/{path}"
        return f"http://{self.public.partition('://')[2]}/{tail}", f"{self.public}/{tail}"


def delivery_path(record: Record, transformation: str = "", extension: str = "") -> str:
    public_id = quote(record["public_id"], safe="/")
    prefix = f"{transformation}/" if transformation else ""
    return f"{prefix}v{record['version']}/{public_id}.{extension or record['format']}"


def response_signature(public_id: str, version: int, secret: str, algorithm: str = "sha1") -> str:
    """What ``cloudinary.utils.verify_api_response_signature`` checks (signature version 1), in the
    SDK's ``signature_algorithm`` (CUTOUT_SIGNATURE_ALGORITHM)."""
    return hashlib.new(algorithm, f"public_id={public_id}&version={version}{secret}".encode()).hexdigest()


def view(record: Record, base: Base, secret: str, algorithm: str = "sha1") -> Record:
    """The asset as the Upload API's responses and the Admin API describe it (Cloudinary's fields)."""
    url, secure_url = base.urls(delivery_path(record))
    public_id = record["public_id"]
    folder = public_id.rpartition("/")[0]
    shown: Record = {
        "asset_id": record["asset_id"],
        "public_id": public_id,
        "version": record["version"],
        "version_id": record["version_id"],
        "signature": response_signature(public_id, record["version"], secret, algorithm),
        "width": record["width"],
        "height": record["height"],
        "format": record["format"],
        "resource_type": "image",
        "created_at": record["created_at"],
        "uploaded_at": record["uploaded_at"],
        "tags": record["tags"],
        "bytes": record["bytes"],
        "type": "upload",
        "etag": record["etag"],
        "placeholder": False,
        "url": url,
        "secure_url": secure_url,
        "asset_folder": record.get("asset_folder", folder),
        "display_name": record.get("display_name") or public_id.rpartition("/")[2],
        "access_mode": "public",
    }
    if record.get("pages", 1) > 1:
        shown["pages"] = record["pages"]
    if record.get("original_filename"):
        shown["original_filename"] = record["original_filename"]
    if record["context"]:
        shown["context"] = {"custom": dict(record["context"])}
    if record.get("info"):
        shown["info"] = record["info"]
    return shown
