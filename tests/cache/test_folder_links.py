"""Symbolic links in the originals folder: fine while they stay inside it, never a way out. An id whose
folder is a link out of the root (or out and back in, an alias of other originals) is not written, found,
listed or deleted, and the refusal comes before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cache import FolderOriginals
from grammar.errors import BadRequest, NotFound


@pytest.fixture
def store(tmp_path: Path) -> FolderOriginals:
    root = tmp_path / "originals"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "road.jpg").write_bytes(b"road")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"secret")
    (root / "linkdir").symlink_to(outside)  # out of the root
    (root / "up").symlink_to(tmp_path)  # out, and back in through up/originals/...
    (root / "alias").symlink_to(root / "docs")  # inside: fine
    return FolderOriginals(root)


def _outside(store: FolderOriginals) -> list[str]:
    return sorted(p.name for p in (store.root.parent / "outside").iterdir())


@pytest.mark.parametrize(
    "public_id", ["linkdir/x", "linkdir/sub/x", "up/originals/docs/road", "up/outside/y"]
)
def test_no_write_through_a_link_out(store: FolderOriginals, public_id: str) -> None:
    assert not store.writable(public_id)
    with pytest.raises(BadRequest, match="leads outside the originals folder"):
        store.write(public_id, "jpg", b"evil")
    assert _outside(store) == ["secret.jpg"]
    assert (store.root / "docs" / "road.jpg").read_bytes() == b"road"


def test_no_find_list_or_delete_through_a_link_out(store: FolderOriginals) -> None:
    for public_id in ("linkdir/secret", "up/outside/secret", "up/originals/docs/road"):
        with pytest.raises(NotFound):
            store.locate(public_id)
        assert store.delete(public_id) is False
    for prefix in ("linkdir/", "linkdir/sec", "up/", "up/originals/docs/"):
        assert list(store.list(prefix)) == [], prefix
    assert sorted(store.list()) == ["docs/road"]  # links below the start are not followed
    assert _outside(store) == ["secret.jpg"]
    assert (store.root / "docs" / "road.jpg").read_bytes() == b"road"


def test_links_inside_the_root_still_work(store: FolderOriginals) -> None:
    assert store.writable("alias/new") and store.writable("docs/new") and store.writable("brand/new/id")
    assert store.locate("alias/road").path.read_bytes() == b"road"
    store.write("alias/new", "png", b"new")
    assert (store.root / "docs" / "new.png").read_bytes() == b"new"
    assert sorted(store.list("alias/")) == ["alias/new", "alias/road"]
    assert store.delete("alias/new") and not (store.root / "docs" / "new.png").exists()
    store.write("brand/new/id", "jpg", b"x")  # new folders are made as plain folders
    assert not os.path.islink(store.root / "brand")


def test_a_link_made_later_is_noticed(store: FolderOriginals, tmp_path: Path) -> None:
    store.write("later/a", "jpg", b"a")
    assert store.locate("later/a")
    (store.root / "later" / "a.jpg").unlink()
    (store.root / "later").rmdir()
    (store.root / "later").symlink_to(tmp_path / "outside")
    assert not store.writable("later/b")
    with pytest.raises(NotFound):
        store.locate("later/secret")


def test_a_folder_that_is_a_file_is_not_writable(store: FolderOriginals) -> None:
    """``docs/road.jpg/x``: its folder is a file; the write failed with NotADirectoryError (a 500)."""
    (store.root / "docs" / "file").write_bytes(b"x")
    (store.root / "filelink").symlink_to(store.root / "docs" / "road.jpg")
    for public_id in ("docs/road.jpg/x", "docs/file/x", "docs/file/deeper/x", "filelink/x"):
        assert not store.writable(public_id), public_id
        with pytest.raises(BadRequest, match="or into a file"):
            store.write(public_id, "jpg", b"x")
    assert list(store.list("docs/road.jpg/")) == []
