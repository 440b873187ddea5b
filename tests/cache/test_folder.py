"""The folder originals store: one listing per folder, found again after changes, versions by content."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cache import FolderOriginals, OriginalsStore
from grammar.errors import BadRequest, NotFound


def test_the_folder_is_an_originals_store(tmp_path: Path) -> None:
    store: OriginalsStore = FolderOriginals(tmp_path)
    found = store.write("docs/a", "png", b"one")
    assert found.path == tmp_path.resolve() / "docs" / "a.png"
    assert store.read("docs/a") == b"one" and store.current([found])
    version = store.version(found)
    store.write("docs/a", "png", b"two")
    assert not store.current([found])  # a new inode: the old stamp no longer holds
    assert store.version(store.locate("docs/a")) != version
    assert not list(tmp_path.glob("docs/.*")), "no temporary file left behind"
    with pytest.raises(NotFound):
        store.write("../outside", "png", b"x")
    with pytest.raises(ValueError):
        store.write("docs/b", "exe", b"x")


def test_write_answers_what_locate_would_without_listing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "root").mkdir()
    store = FolderOriginals(tmp_path / "root")
    store.write("docs/a", "jpg", b"jpeg")
    monkeypatch.setattr(store, "_list", lambda *_: pytest.fail("listed the folder on a write"))
    found = store.write("docs/a", "png", b"png")  # the jpg goes: the png is the only format left
    monkeypatch.undo()
    assert found == store.locate("docs/a") and not (store.root / "docs" / "a.jpg").exists()
    (tmp_path / "elsewhere").mkdir()
    (store.root / "out").symlink_to(tmp_path / "elsewhere")  # a folder leading out of the root
    with pytest.raises(BadRequest, match="leads outside the originals folder"):
        store.write("out/b", "png", b"x")
    assert list((tmp_path / "elsewhere").iterdir()) == []  # refused before it was written


def test_list_by_prefix(tmp_path: Path) -> None:
    store = FolderOriginals(tmp_path)
    for public_id in ("docs/a", "docs/ab", "docs/sub/c", "other/d"):
        store.write(public_id, "jpg", b"x")
    (tmp_path / "docs" / "a.png").write_bytes(b"x")  # a second file of one id: listed once
    (tmp_path / "docs" / "notes.txt").write_bytes(b"x")
    assert sorted(store.list("docs/a")) == ["docs/a", "docs/ab"]
    assert sorted(store.list("docs/")) == ["docs/a", "docs/ab", "docs/sub/c"]
    assert sorted(store.list()) == ["docs/a", "docs/ab", "docs/sub/c", "other/d"]
    assert list(store.list("missing/")) == []


def test_one_listing_finds_every_extension_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.PNG").write_bytes(b"x")
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.webp").write_bytes(b"x")
    (tmp_path / "c.jpg").mkdir()  # a folder named like an original is not one
    os.utime(tmp_path, ns=(1_000_000_000, 1_000_000_000))  # a quiet folder: its listing is kept
    store = FolderOriginals(tmp_path)
    assert store.locate("a").path.name == "a.png"  # lower case before upper, as before
    assert store.locate("b").path.name == "b.webp"
    with pytest.raises(NotFound):
        store.locate("c")
    stats: list[str] = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: (stats.append(str(p)), real_stat(p, *a, **k))[1])
    store.locate("a")
    with pytest.raises(NotFound):
        store.locate("missing")
    monkeypatch.undo()
    # The folder and the file found: not one stat per candidate extension (22 before).
    assert stats == [str(tmp_path.resolve()), str(tmp_path.resolve() / "a.png"), str(tmp_path.resolve())]


def test_a_new_original_is_found_at_once(tmp_path: Path) -> None:
    """A folder's listing is not trusted while the folder is young (its mtime ticks coarsely)."""
    store = FolderOriginals(tmp_path)
    with pytest.raises(NotFound):
        store.locate("new")
    for i in range(20):  # changes within one mtime tick of each other
        (tmp_path / f"new{i}.jpg").write_bytes(b"x")
        assert store.locate(f"new{i}").path.name == f"new{i}.jpg"
    (tmp_path / "new0.jpg").unlink()
    with pytest.raises(NotFound):
        store.locate("new0")
    old = 1_000_000_000
    os.utime(tmp_path, ns=(old, old))  # an old, quiet folder: its listing is kept
    assert store.locate("new1").path.name == "new1.jpg"
    (tmp_path / "new1.png").write_bytes(b"x")  # not preferred over .jpg, but the folder changed
    assert store.locate("new1").path.name == "new1.jpg"


def test_long_names_and_escapes_are_not_found(tmp_path: Path) -> None:
    store = FolderOriginals(tmp_path)
    (tmp_path / "outside.jpg").write_bytes(b"x")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(tmp_path / "outside.jpg", root / "link.jpg")
    store = FolderOriginals(root)
    for bad in ("link", "a" * 300, "b" * 300 + "/c", "../outside", "/etc/passwd", "docs//a"):
        with pytest.raises(NotFound):
            store.locate(bad)


def test_a_big_folder_changing_now_is_not_listed_per_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads into a folder of thousands keep it young: each lookup would list it whole again (23 ms for
    20 000 files). Once it is known to be big, a lookup while it changes tries the names instead, with
    the listing's answers: the preferred format first, files only, links out of the root refused."""
    root = tmp_path / "root"
    (root / "big").mkdir(parents=True)
    for i in range(200):
        (root / "big" / f"f{i}.jpg").write_bytes(b"x")
    store = FolderOriginals(root)
    assert store.locate("big/f0").path.name == "f0.jpg"  # the first lookup lists it: now it is known big
    monkeypatch.setattr(store, "_list", lambda *_: pytest.fail("listed a big folder that is changing"))
    store.write("big/new", "png", b"png")
    assert store.locate("big/new").path.name == "new.png"
    (root / "big" / "new.jpg").write_bytes(b"jpeg")  # preferred over .png
    found = store.locate("big/new")
    assert found.path.name == "new.jpg" and store.current([found])
    (root / "big" / "dir.jpg").mkdir()  # a folder named like an original is not one
    (root / "big" / "dir.PNG").write_bytes(b"x")
    assert store.locate("big/dir").path.name == "dir.PNG"
    (root / "big" / "poster.PSD").write_bytes(b"x")
    with pytest.raises(BadRequest, match=r"Unsupported original format \.PSD - big/poster"):
        store.locate("big/poster")
    (tmp_path / "outside.jpg").write_bytes(b"x")
    (root / "big" / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    (root / "big" / "inside.jpg").symlink_to(root / "big" / "f1.jpg")
    with pytest.raises(NotFound):
        store.locate("big/link")
    assert store.locate("big/inside").path.name == "inside.jpg"
    for missing in ("big/none", "big/" + "a" * 300):
        with pytest.raises(NotFound):
            store.locate(missing)
    monkeypatch.undo()
    os.utime(root / "big", ns=(1_000_000_000, 1_000_000_000))  # quiet again: listed, and kept
    assert store.locate("big/new").path.name == "new.jpg"
    assert store._listing("big") is not None


def test_an_id_in_two_formats_is_the_one_its_asset_record_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A file put by hand beside an uploaded original (``road.jpg`` beside the uploaded ``road.png``) does
    not hide it: the format the asset's record names wins over the extension order, which stays the rule
    without a record. The record is read once per listing, not per lookup; a warning names the file that
    is never delivered, once."""
    store = FolderOriginals(tmp_path)
    store.write("docs/road", "png", b"uploaded")
    store.put_record("assets/docs/road", b'{"public_id": "docs/road", "format": "png"}')
    (tmp_path / "docs" / "road.jpg").write_bytes(b"by hand")
    (tmp_path / "docs" / "plain.png").write_bytes(b"png")
    (tmp_path / "docs" / "plain.jpg").write_bytes(b"jpeg")  # no record: the extension order
    (tmp_path / "docs" / "gone.png").write_bytes(b"png")
    (tmp_path / "docs" / "gone.jpg").write_bytes(b"jpeg")
    store.put_record("assets/docs/gone", b'{"format": "png", "deleted": true}')  # a deleted asset's
    os.utime(tmp_path / "docs", ns=(1_000_000_000, 1_000_000_000))  # a quiet folder: its listing is kept
    with caplog.at_level("WARNING", logger="cutout.originals"):
        assert store.locate("docs/road").path.name == "road.png"
        assert store.locate("docs/plain").path.name == "plain.jpg"
        assert store.locate("docs/gone").path.name == "gone.jpg"
        monkeypatch.setattr(store, "get_record", lambda *_: pytest.fail("read a record per lookup"))
        assert store.locate("docs/road").path.name == "road.png"
        monkeypatch.undo()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 3 and "docs/road is stored in several formats: road.png is delivered" in warned[0]
    assert "road.jpg never is" in warned[0] and "record of the asset names its png" in warned[0]
    assert "plain.jpg is delivered (the first in the extension order" in warned[1]
    store.put_record("assets/docs/road", b'{"format": "jpg"}')
    store.forget("docs/road")  # a replica told by the record that the id changed looks again
    assert store.locate("docs/road").path.name == "road.jpg"
    store.put_record("assets/docs/road", b'{"format": "webp"}')  # in none of the files: the order
    store.forget("docs/road")
    assert store.locate("docs/road").path.name == "road.jpg"
    (tmp_path / "docs" / "road.JPEG").write_bytes(b"x")  # one format twice: no record needed
    (tmp_path / "docs" / "one.jpg").write_bytes(b"x")
    (tmp_path / "docs" / "one.JPEG").write_bytes(b"x")
    monkeypatch.setattr(store, "get_record", lambda *_: pytest.fail("read a record for one format"))
    assert store.locate("docs/one").path.name == "one.jpg"
    monkeypatch.undo()
    store.write("docs/road", "png", b"uploaded again")  # an upload still removes the other formats
    assert sorted(p.name for p in (tmp_path / "docs").glob("road.*")) == ["road.png"]


def test_a_big_folder_changing_now_chooses_by_the_record_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    (root / "big").mkdir(parents=True)
    for i in range(200):
        (root / "big" / f"f{i}.jpg").write_bytes(b"x")
    store = FolderOriginals(root)
    assert store.locate("big/f0").path.name == "f0.jpg"  # listed: now it is known big
    monkeypatch.setattr(store, "_list", lambda *_: pytest.fail("listed a big folder that is changing"))
    store.write("big/road", "png", b"uploaded")
    store.put_record("assets/big/road", b'{"format": "png"}')
    (root / "big" / "road.jpg").write_bytes(b"by hand")
    found = store.locate("big/road")
    assert found.path.name == "road.png" and store.current([found])
    (root / "big" / "plain.png").write_bytes(b"png")
    (root / "big" / "plain.jpg").write_bytes(b"jpeg")
    assert store.locate("big/plain").path.name == "plain.jpg"
