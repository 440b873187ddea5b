"""Managing stored assets in Cloudinary's calls: ``rename``, the tag and context commands, deleting many
(by ids, by prefix, by tag) and listing by tag. Each asset changes under its own lock through the same
records as an upload (``assets``); deleting is ``destroy``'s, one asset at a time."""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from cutout.upload import params as p
from cutout.upload.assets import Base, Record, iso, new_version
from cutout.upload.errors import UploadError, bad, not_found
from cutout.upload.jobs import unfinished

if TYPE_CHECKING:
    from cutout.upload.uploads import Uploads

SIGNING = p.SIGNING
RENAME_PARAMS = (*SIGNING, "from_public_id", "to_public_id", "overwrite", "invalidate", "type", "to_type",
                 "resource_type")  # fmt: skip
TAGS_PARAMS = (*SIGNING, "tag", "public_ids", "command", "type", "resource_type")
CONTEXT_PARAMS = (*SIGNING, "context", "public_ids", "command", "type", "resource_type")
DELETE_PARAMS = ("public_ids", "prefix", "invalidate", "next_cursor", "type")
BY_TAG_PARAMS = ("max_results", "next_cursor", "tags", "context")
#: Cloudinary's cap on the assets one ``tags`` call changes and one ``delete_resources`` call deletes.
MAX_TAGGED, MAX_DELETED = 1000, 1000
#: At most this many assets in a client-side resource list (Cloudinary's cap).
MAX_LISTED = 1000


class Manage:
    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads
        self.assets = uploads.assets
        self.service = uploads.service

    async def rename(self, params: dict[str, str], base: Base) -> Record:
        """``uploader.rename``: the asset (its original, record and backups) under a new public id, same
        version; its derived list starts empty (their URLs named the old id)."""
        p.refuse_unknown(params, RENAME_PARAMS, "rename")
        self.uploads.check_type(params)
        if params.get("to_type", "upload") != "upload":
            raise bad(f"to_type {params['to_type'][:40]!r} is not supported: only upload (public) assets")
        source = p.check_public_id(params.get("from_public_id", ""), "from_public_id")
        target = self.uploads.check_writable(
            p.check_new_public_id(params.get("to_public_id", ""), "to_public_id"), "to_public_id"
        )
        overwrite = p.flag(params, "overwrite")
        p.flag(params, "invalidate")
        record = await anyio.to_thread.run_sync(partial(self._rename, source, target, overwrite=overwrite))
        return self.uploads.view(record, base)

    def _rename(self, source: str, target: str, *, overwrite: bool) -> Record:
        # Either spelling names an asset (``Assets.spelled``): the target too, so that a rename onto an
        # asset's look-alike replaces it (overwrite=true) rather than storing a twin.
        source, target = self.assets.spelled(source), self.assets.spelled(target, deleted=True)
        with self.assets.locked_all([source, target]):
            record = self.assets.current(source)
            if record is None:
                raise not_found(source)
            if source == target:
                return record
            existing = self.assets.current(target)
            if existing is not None and not overwrite:
                raise UploadError(409, f"to_public_id ({target}) already exists: overwrite=true replaces it")
            for name, found in ((source, record), (target, existing)):
                if found is not None and unfinished(found):
                    raise UploadError(
                        420, f"{name} has work pending (background removal, eager or a notification): "
                        "rename once it is done"
                    )  # fmt: skip
            data = self.service.originals.read(source)
            if self.assets.record(source) is None:  # a file put in by hand: its record gets the MD5 etag
                record.update(
                    self.assets.content_fields(
                        data, record["format"], record["width"], record["height"], record.get("pages", 1)
                    )
                )
            kept = self.assets.record(target)  # a replaced or deleted target's backups stay restorable
            backups = [b for b in (kept or {}).get("backups", [])
                       if all(b["version_id"] != m["version_id"] for m in record["backups"])]  # fmt: skip
            for moved in record["backups"]:  # copied first: a crash leaves two copies, never none
                copy = self.assets.backup(source, moved["version_id"])
                if copy is not None:
                    self.service.originals.put_record(f"backups/{target}/{moved['version_id']}", copy)
            renamed: Record = {**record, "public_id": target, "backups": [*backups, *record["backups"]],
                               "derived": [], "notifications": [], "indexed": []}  # fmt: skip
            if kept is not None and kept["version"] >= record["version"]:
                # The version moves with the asset, unless the target's URLs had it or a higher one: a
                # cached URL of the replaced target must not show the renamed image.
                renamed["version"] = new_version(kept["version"])
            renamed.pop("deleted", None)
            # The target as an upload writes it (its marker first: a restart makes the record follow the
            # file), then the source as a destroy removes it.
            self.assets.mark_unfinished(target)
            self.service.originals.write(target, record["format"], data, replacing=existing is not None
                                         or kept is not None, version=record["fingerprint"])  # fmt: skip
            self.assets.save(renamed)
            self.assets.mark_finished(target)
            self.assets.mark_unfinished(source)
            self.service.originals.delete(source)
            # Kept, deleted, as a destroy keeps it: the source id's next upload gets a higher version.
            self.assets.save({**record, "deleted": True, "job": None, "backups": [], "tags": []})
            for moved in record["backups"]:
                self.service.originals.delete_record(f"backups/{source}/{moved['version_id']}")
            self.assets.mark_finished(source)
            return renamed

    async def tags(self, params: dict[str, str]) -> dict[str, list[str]]:
        """``uploader.add_tag``, ``remove_tag``, ``replace_tag``, ``remove_all_tags``: the ids changed."""
        p.refuse_unknown(params, TAGS_PARAMS, "tags")
        self.uploads.check_type(params)
        command = params.get("command", "")
        if command not in ("add", "remove", "replace", "remove_all"):
            raise bad(f"command {command[:40]!r}: expected add, remove, replace or remove_all")
        named = p.tags({"tags": params.get("tag", "")}) or []
        if command != "remove_all" and not named:
            raise bad("Missing required parameter - tag")
        changed = []
        for public_id in self._ids(params, MAX_TAGGED):
            if await anyio.to_thread.run_sync(self._tag, public_id, command, named):
                changed.append(public_id)
        return {"public_ids": changed}

    def _tag(self, public_id: str, command: str, named: list[str]) -> bool:
        """One asset's tags changed as ``command`` says; False when there is no such asset."""
        public_id = self.assets.spelled(public_id)
        with self.assets.locked(public_id):
            record = self.assets.current(public_id)
            if record is None:
                return False
            tags: list[str] = record.get("tags", [])
            if command == "add":
                tags = list(dict.fromkeys([*tags, *named]))
            elif command == "remove":
                tags = [t for t in tags if t not in named]
            elif command == "replace":
                tags = list(named)
            else:
                tags = []
            self.assets.save({**record, "tags": tags})
            return True

    async def context(self, params: dict[str, str]) -> dict[str, list[str]]:
        """``uploader.add_context`` (merged into each asset's context) and ``remove_all_context``: the
        ids changed."""
        p.refuse_unknown(params, CONTEXT_PARAMS, "context")
        self.uploads.check_type(params)
        command = params.get("command", "")
        if command not in ("add", "remove_all"):
            raise bad(f"command {command[:40]!r}: expected add or remove_all")
        pairs = p.context(params) or {}
        if command == "add" and not pairs:
            raise bad("Missing required parameter - context")
        changed = []
        for public_id in self._ids(params, MAX_TAGGED):
            if await anyio.to_thread.run_sync(
                self._set_context, public_id, pairs if command == "add" else None
            ):
                changed.append(public_id)
        return {"public_ids": changed}

    def _set_context(self, public_id: str, pairs: dict[str, str] | None) -> bool:
        """``pairs`` merged into the asset's context (None: all removed); False when there is no asset."""
        public_id = self.assets.spelled(public_id)
        with self.assets.locked(public_id):
            record = self.assets.current(public_id)
            if record is None:
                return False
            context = {**record.get("context", {}), **pairs} if pairs is not None else {}
            self.assets.save({**record, "context": context})
            return True

    def _ids(self, params: dict[str, str], most: int) -> list[str]:
        """The call's ``public_ids``, each checked, once each; a 400 for none or more than ``most``."""
        ids = [i for i in params.get("public_ids", "").split(",") if i]
        if not ids:
            raise bad("Missing required parameter - public_ids")
        if len(ids) > most:
            raise bad(f"public_ids: at most {most} assets per call, not {len(ids)}")
        return list(dict.fromkeys(p.check_public_id(i, "public_ids") for i in ids))

    async def delete_resources(self, params: dict[str, str], *, tag: str | None = None) -> Record:
        """``api.delete_resources`` (``public_ids``), ``delete_resources_by_prefix`` (``prefix``) and
        ``delete_resources_by_tag`` (``tag``, from the path): each as ``destroy`` deletes it (backups kept
        for ``restore``), at most ``MAX_DELETED`` a call (``partial`` when more are left)."""
        p.refuse_unknown(params, DELETE_PARAMS, "Admin API delete_resources")
        if params.get("type", "upload") != "upload":
            raise bad("type: only upload is supported")
        p.flag(params, "invalidate")
        ids = [i for i in params.get("public_ids", "").split(",") if i]
        prefix = params.get("prefix")
        if [bool(ids), prefix is not None, tag is not None].count(True) != 1:
            raise bad("Missing required parameter - public_ids or prefix (one of them)")
        if params.get("next_cursor"):
            raise bad(
                "next_cursor: deleting starts from the first asset left each call; call again while partial"
            )
        more = False
        if prefix is not None:
            if not prefix:
                raise bad("prefix is empty")
            p.check_prefix(prefix)
            found = sorted(await anyio.to_thread.run_sync(lambda: list(self.service.originals.list(prefix))))
            ids, more = found[:MAX_DELETED], len(found) > MAX_DELETED
        elif tag is not None:
            page = await anyio.to_thread.run_sync(self._tagged, _tag(tag), MAX_DELETED, None)
            ids, more = [r["public_id"] for r in page[0]], page[1] is not None
        elif len(ids) > MAX_DELETED:
            raise bad(f"public_ids: at most {MAX_DELETED} assets per call, not {len(ids)}")
        else:  # only the caller's ids are checked: one the store listed (an original placed by hand under
            # a name an upload could not choose) is deleted, not a 400 for the whole call
            ids = [p.check_public_id(i, "public_ids") for i in ids]
        deleted: dict[str, str] = {}
        for public_id in dict.fromkeys(ids):
            result = await anyio.to_thread.run_sync(self.uploads.destroy_one, public_id)
            deleted[public_id] = "deleted" if result["result"] == "ok" else "not_found"
        counts = {i: {"original": int(r == "deleted"), "derived": 0} for i, r in deleted.items()}
        return {"deleted": deleted, "deleted_counts": counts, "partial": more}

    async def by_tag(self, tag: str, query: dict[str, str], base: Base) -> Record:
        """``api.resources_by_tag``: the assets with ``tag``, by public id, ``max_results`` a page."""
        p.refuse_unknown(query, BY_TAG_PARAMS, "Admin API resources_by_tag")
        limit = p.max_results(query, 10)
        after = p.uncursor(query["next_cursor"]) if query.get("next_cursor") else None
        records, last = await anyio.to_thread.run_sync(self._tagged, _tag(tag), limit, after)
        found = [self.uploads.view(r, base) for r in records]
        return {"resources": found, **({"next_cursor": p.cursor(last)} if last else {})}

    async def resource_list(self, tag: str) -> Record:
        """Cloudinary's client-side list (``/image/list/<tag>.json``): the first ``MAX_LISTED`` assets with
        ``tag``, by public id, in its short shape."""
        records, _ = await anyio.to_thread.run_sync(self._tagged, _tag(tag), MAX_LISTED, None)
        shown = []
        for record in records:
            item = {k: record[k] for k in ("public_id", "version", "format", "width", "height", "created_at")}
            item["type"] = "upload"
            if record.get("context"):
                item["context"] = {"custom": dict(record["context"])}
            shown.append(item)
        return {"resources": shown, "updated_at": iso(time.time())}

    def _tagged(self, tag: str, limit: int, after: str | None) -> tuple[list[Record], str | None]:
        """Up to ``limit`` current records with ``tag`` after the id ``after``, and the last id given when
        the index lists more (else None). Index entries that no longer hold are dropped on the way."""
        found: list[Record] = []
        for public_id in self.assets.tagged(tag):
            if after is not None and public_id <= after:
                continue
            record = self.assets.current(public_id)
            if record is None or tag not in record.get("tags", []):
                self.assets.untag(public_id, tag)
                continue
            if len(found) == limit:  # one more holds: a cursor never leads to an empty page
                return found, found[-1]["public_id"]
            found.append(record)
        return found, None


def _tag(text: str) -> str:
    """A tag named in a path: one valid tag, else a 400."""
    found = p.tags({"tags": text})
    if found != [text]:
        raise bad(f"tag {text[:40]!r} is not one valid tag")
    return text
