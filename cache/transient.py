"""Originals the server stores for itself, named by their content: ``fetched/<sha256>`` (images fetched
for ``/image/fetch/`` and the HTTP API's ``image_url``) and ``api-uploads/<sha256>`` (images sent to the
HTTP API). Anyone allowed a fetch URL, or holding an API key, makes them, so they are not kept among the
originals for ever: with a folder of originals, each kind lives in a folder beside the originals' records
(``<originals>/.cutout/transient/``, never delivered by a URL of its own) bounded by size
(``CUTOUT_FETCH_CACHE``, ``CUTOUT_API_UPLOAD_CACHE``), least recently used out first. A dropped fetched
image is fetched again when next asked (``cutout.remote``); a dropped upload is a 404 until it is sent
again.

``TransientOriginals`` is the ``OriginalsStore`` the server uses then: those ids go to their folder,
every other id (and every record) to the originals. Such an id found among the originals (stored there
before this store existed) is still served from there. A file here never changes (its name is its
content), so its ``version`` is the digest in its id (what the folder store computes for the same bytes:
masks are shared with originals of the same content) and it is ``current`` while it exists; ``touch``
on every lookup marks it used without changing its stamp.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cache.folder import _RANK, RECORDS, FolderOriginals
from cache.hotfiles import HotFiles
from cache.seams import Located, OriginalsStore
from grammar.errors import NotFound
from transform.files import write_atomically

#: The folders of ids kept here, and what each holds.
FETCHED, API_UPLOADS = "fetched", "api-uploads"
_ID = re.compile(r"([a-z-]+)/([0-9a-f]{64})")


def is_transient(public_id: str) -> bool:
    """Whether ``public_id`` names an image the server stores for itself (``fetched/<sha256>``,
    ``api-uploads/<sha256>``): not an asset, so never listed among the originals, wherever it is kept."""
    found = _ID.fullmatch(public_id)
    return found is not None and found[1] in (FETCHED, API_UPLOADS)


@dataclass(frozen=True)
class Held:
    """The stamp of an original kept here: its content digest (the file never changes)."""

    digest: str


class TransientOriginals:
    def __init__(self, originals: OriginalsStore, folders: Mapping[str, HotFiles]) -> None:
        self.originals = originals
        self.folders = dict(folders)

    def _routed(self, public_id: str) -> tuple[HotFiles, str] | None:
        found = _ID.fullmatch(public_id)
        if found is None or found[1] not in self.folders:
            return None
        return self.folders[found[1]], found[2]

    def locate(self, public_id: str, *, what: str = "Resource not found - {}") -> Located:
        routed = self._routed(public_id)
        if routed is not None:
            hot, digest = routed
            for ext in _RANK:  # the formats an image is written in: a miss costs a few stats
                path = hot.folder / f"{digest}.{ext}"
                if hot.touch(path):  # found, and marked used
                    return Located(public_id, path, Held(digest))
        return self.originals.locate(public_id, what=what)

    def forget(self, public_id: str) -> None:
        self.originals.forget(public_id)  # what is held here is named by its digest: never out of date

    def version(self, found: Located) -> str:
        if isinstance(found.stamp, Held):
            return found.stamp.digest
        return self.originals.version(found)

    def current(self, found: Sequence[Located]) -> bool:
        others = [f for f in found if not isinstance(f.stamp, Held)]
        if len(others) == len(found):  # the common case: nothing of ours
            return self.originals.current(found)
        if not all(os.path.exists(f.path) for f in found if isinstance(f.stamp, Held)):
            return False
        return not others or self.originals.current(others)

    def modified(self, found: Located) -> float:
        if not isinstance(found.stamp, Held):
            return self.originals.modified(found)
        try:
            return os.stat(found.path).st_mtime
        except FileNotFoundError:  # dropped since it was located
            raise NotFound(f"Resource not found - {found.public_id}") from None

    def fingerprint(self, data: bytes, *, md5: str | None = None) -> str:
        return self.originals.fingerprint(data, md5=md5)

    def local(self, found: Located) -> Path:
        if not isinstance(found.stamp, Held):
            return self.originals.local(found)
        if not os.path.exists(found.path):  # dropped since it was located: the next lookup says so
            raise NotFound(f"Resource not found - {found.public_id}")
        return found.path

    def read(self, public_id: str) -> bytes:
        return self.local(self.locate(public_id)).read_bytes()

    def write(
        self,
        public_id: str,
        extension: str,
        data: bytes,
        *,
        replacing: bool = True,
        version: str | None = None,
    ) -> Located:
        routed = self._routed(public_id)
        # Only bytes whose digest is the id's: else its version would name other content (and share
        # that content's mask); such an id (an upload that chose it) is an ordinary original.
        if routed is None or (version or hashlib.sha256(data).hexdigest()) != routed[1]:
            return self.originals.write(public_id, extension, data, replacing=replacing, version=version)
        if extension not in _RANK:
            raise ValueError(f"not an original's extension: {extension!r}")
        hot, digest = routed
        path = hot.folder / f"{digest}.{extension}"
        try:
            write_atomically(path, data)
        except FileNotFoundError:  # the first one kept: its folder is made only now
            hot.folder.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data)
        hot.added(path)  # counted, and the least recently used ones dropped past the limit
        return Located(public_id, path, Held(digest))

    def writable(self, public_id: str) -> bool:
        return self._routed(public_id) is not None or self.originals.writable(public_id)

    def delete(self, public_id: str) -> bool:
        routed = self._routed(public_id)
        removed = False
        if routed is not None:
            hot, digest = routed
            removed = any([hot.removed(hot.folder / f"{digest}.{ext}") for ext in _RANK])
        return self.originals.delete(public_id) or removed

    def list(self, prefix: str = "") -> Iterator[str]:
        return self.originals.list(prefix)  # not assets: never listed (nor deleted by prefix)

    def put_record(self, name: str, data: bytes) -> None:
        self.originals.put_record(name, data)

    def get_record(self, name: str) -> bytes | None:
        return self.originals.get_record(name)

    def delete_record(self, name: str) -> None:
        self.originals.delete_record(name)

    def list_records(self, prefix: str) -> Iterator[str]:
        return self.originals.list_records(prefix)


def transient(originals: FolderOriginals, cache_dir: Path, fetched: int, uploads: int) -> TransientOriginals:
    """``originals`` with the fetched and sent images in bounded folders beside its records
    (``<originals>/.cutout/transient/``): replicas and ``cutout worker`` processes sharing the folder of
    originals, each with a cache of its own, must all reach an image one of them was sent. A folder of
    originals cutout may not write into keeps them in ``cache_dir`` instead (one process's own)."""
    records = originals.root / RECORDS
    if os.access(records if records.exists() else originals.root, os.W_OK) and not records.is_file():
        base, create = records / "transient", False  # made with the first image kept there
    else:  # a folder of originals cutout may not write into: the cache folder's turn
        base, create = cache_dir / "transient", True
    folders = {FETCHED: HotFiles(base / FETCHED, fetched, create=create),
               API_UPLOADS: HotFiles(base / API_UPLOADS, uploads, create=create)}
    return TransientOriginals(originals, folders)
