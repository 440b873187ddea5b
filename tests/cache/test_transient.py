"""The images the server fetched or was sent (``fetched/<sha256>``, ``api-uploads/<sha256>``) live in
bounded folders beside the originals' records (else of the cache), least recently used out first, never
among the originals; every other id and every record is the originals'."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from cache import FolderOriginals
from cache.hotfiles import HotFiles
from cache.transient import Held, TransientOriginals, transient
from grammar.errors import NotFound


def _id(folder: str, data: bytes) -> str:
    return f"{folder}/{hashlib.sha256(data).hexdigest()}"


@pytest.fixture
def store(tmp_path: Path) -> TransientOriginals:
    (tmp_path / "originals").mkdir()
    folders = {"fetched": HotFiles(tmp_path / "t" / "fetched", 2500),
               "api-uploads": HotFiles(tmp_path / "t" / "api-uploads", 10_000)}  # fmt: skip
    return TransientOriginals(FolderOriginals(tmp_path / "originals"), folders)


def test_kept_apart_from_the_originals(store: TransientOriginals, tmp_path: Path) -> None:
    data = b"a" * 1000
    public_id = _id("fetched", data)
    found = store.write(public_id, "jpg", data, version=public_id.split("/")[1])
    assert found.path == tmp_path / "t" / "fetched" / f"{public_id.split('/')[1]}.jpg"
    assert not (tmp_path / "originals" / "fetched").exists()
    again = store.locate(public_id)
    assert again == found and isinstance(again.stamp, Held)
    # The folder store's version of the same bytes: masks are shared with an original of that content.
    assert store.version(again) == FolderOriginals(tmp_path / "originals").fingerprint(data)
    assert store.current([again]) and store.read(public_id) == data
    assert list(store.list()) == [] and list(store.list("fetched/")) == []  # not assets
    store.write("docs/a", "png", b"png")  # any other id is an original
    assert (tmp_path / "originals" / "docs" / "a.png").exists()
    assert list(store.list()) == ["docs/a"] and store.current([again, store.locate("docs/a")])
    assert store.delete(public_id) and not found.path.exists() and not store.current([again])
    with pytest.raises(NotFound):
        store.locate(public_id)


def test_least_recently_used_out_first(store: TransientOriginals) -> None:
    first, second, third = (bytes([n]) * 1000 for n in (1, 2, 3))
    ids = [_id("fetched", d) for d in (first, second, third)]
    old = time.time() - 100
    for public_id, data in zip(ids[:2], (first, second), strict=True):
        os.utime(store.write(public_id, "png", data).path, (old, old))
        old += 10
    store.locate(ids[0])  # used now: the second is the least recently used
    store.write(ids[2], "png", third)  # 3000 bytes > 2500: one goes
    with pytest.raises(NotFound):
        store.locate(ids[1])
    assert store.read(ids[0]) == first and store.read(ids[2]) == third


def test_bytes_that_are_not_the_ids_content_are_an_ordinary_original(
    store: TransientOriginals, tmp_path: Path
) -> None:
    """An upload that names itself fetched/<digest> with other bytes cannot pass for that content."""
    public_id = _id("fetched", b"the real content")
    store.write(public_id, "jpg", b"something else")
    assert (tmp_path / "originals" / f"{public_id}.jpg").exists()
    assert not isinstance(store.locate(public_id).stamp, Held)


def test_those_stored_among_the_originals_before_are_still_found(
    store: TransientOriginals, tmp_path: Path
) -> None:
    data = b"old" * 100
    public_id = _id("api-uploads", data)
    (tmp_path / "originals" / "api-uploads").mkdir()
    (tmp_path / "originals" / f"{public_id}.png").write_bytes(data)
    assert store.read(public_id) == data
    assert store.delete(public_id) and not (tmp_path / "originals" / f"{public_id}.png").exists()


def test_replicas_sharing_the_originals_share_what_was_sent(tmp_path: Path) -> None:
    """Two processes with caches of their own and one folder of originals (replicas, a ``cutout worker``):
    an image one of them was sent is found by the other."""
    originals = tmp_path / "originals"
    originals.mkdir()
    one = transient(FolderOriginals(originals), tmp_path / "one", 1 << 20, 1 << 20)
    other = transient(FolderOriginals(originals), tmp_path / "two", 1 << 20, 1 << 20)
    data = b"\xff\xd8\xff" + b"x" * 100
    public_id = f"api-uploads/{hashlib.sha256(data).hexdigest()}"
    one.write(public_id, "jpg", data)
    assert other.locate(public_id).path.read_bytes() == data
    assert (originals / ".cutout" / "transient" / "api-uploads").is_dir()


def test_originals_that_cannot_be_written_keep_them_in_the_cache(tmp_path: Path) -> None:
    originals = tmp_path / "originals"
    originals.mkdir()
    (originals / ".cutout").write_text("not a folder")  # what a read-only folder does to mkdir: an OSError
    store = transient(FolderOriginals(originals), tmp_path / "cache", 1 << 20, 1 << 20)
    assert store.folders["fetched"].folder == tmp_path / "cache" / "transient" / "fetched"
