"""The originals store's calls the Upload API adds (records, delete, a write that replaces the other
formats of an id), on today's folder store; and the request values the Upload API parses."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from cache import FolderOriginals
from cutout.upload import params
from cutout.upload.errors import UploadError
from cutout.upload.jobs import KEPT_NOTIFICATIONS, kept
from cutout.webhooks import Delivery
from cutout.webhooks.delivery import State
from grammar.errors import NotFound
from tests.app.helpers import SAMPLES

ROAD = (SAMPLES / "docs" / "road.jpg").read_bytes()


def test_records_beside_the_originals_are_never_originals(tmp_path: Path) -> None:
    store = FolderOriginals(tmp_path)
    store.put_record("assets/shop/router", b'{"a": 1}')
    store.put_record("backups/shop/router/abc", ROAD)
    store.put_record("jobs/shop/router", b"{}")
    assert store.get_record("assets/shop/router") == b'{"a": 1}'
    assert store.get_record("assets/missing") is None
    assert sorted(store.list_records("jobs")) == ["jobs/shop/router"]
    assert sorted(store.list_records("backups")) == ["backups/shop/router/abc"]
    assert list(store.list()) == []  # no record is listed, located or served as an original
    with pytest.raises(NotFound):
        store.locate(".cutout/backups/shop/router/abc")
    store.put_record("assets/shop/router", b"{}")  # replaced atomically: no temporary file stays
    assert [p.name for p in (tmp_path / ".cutout" / "assets" / "shop").iterdir()] == ["router.record"]
    store.put_record("jobs/shop/other", b"{}")
    store.delete_record("jobs/shop/router")
    store.delete_record("jobs/shop/router")
    assert list(store.list_records("jobs")) == ["jobs/shop/other"]
    store.delete_record("jobs/shop/other")
    assert list(store.list_records("jobs")) == []
    # folders left empty go (else one per chunked upload ever made would stay), up to the records' own
    assert not (tmp_path / ".cutout" / "jobs").exists() and (tmp_path / ".cutout" / "assets").is_dir()
    store.put_record("jobs/shop/router", b"{}")  # and come back when needed
    assert store.get_record("jobs/shop/router") == b"{}"
    with pytest.raises(ValueError):
        store.put_record("../escape", b"")
    store.write("inside", "jpg", ROAD)
    assert list(store.list("../")) == [] and list(store.list("/etc/")) == []
    assert list(store.list_records("../")) == []


def test_write_replaces_the_other_formats_and_delete_removes_all(tmp_path: Path) -> None:
    store = FolderOriginals(tmp_path)
    store.write("a/photo", "jpg", ROAD)
    png = (SAMPLES / "docs" / "rmv_bgd" / "router_orig.jpg").read_bytes()  # bytes only: the name matters
    found = store.write("a/photo", "png", png)
    assert found.path.name == "photo.png"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["photo.png"]
    assert store.delete("a/photo") is True and store.delete("a/photo") is False
    assert store.delete("../x") is False
    with pytest.raises(NotFound):
        store.locate("a/photo")


def test_context_tags_and_eager() -> None:
    assert params.context({"context": r"alt=a \= b|caption=x\|y|empty="}) == {
        "alt": "a = b", "caption": "x|y", "empty": ""}  # fmt: skip
    assert params.tags({"tags": "a, b,,a"}) == ["a", "b"]
    eager = params.eager({"eager": "c_pad,h_300,w_400|c_crop,g_north,h_200,w_260/jpg|e_grayscale/"}, {})
    assert [(e.transformation, e.extension) for e in eager] == [
        ("c_pad,h_300,w_400", ""), ("c_crop,g_north,h_200,w_260", "jpg"), ("e_grayscale", "")]  # fmt: skip
    for bad in ({"context": "novalue"}, {"eager": "c_scale,w_10/bmpx"}):
        with pytest.raises(UploadError):
            params.context(bad) if "context" in bad else params.eager(bad, {})


def test_eager_is_capped() -> None:
    """Fifty per call; more is a 400 naming the limit (each one is a render, kept on the record)."""
    assert len(params.eager({"eager": "|".join(f"c_scale,w_{w}" for w in range(10, 60))}, {})) == 50
    with pytest.raises(UploadError, match="eager: at most 50 transformations per call, got 51") as caught:
        params.eager({"eager": "|".join(f"c_scale,w_{w}" for w in range(10, 61))}, {})
    assert caught.value.status == 400


def test_public_ids() -> None:
    assert params.choose_public_id({"folder": "shop/", "public_id": "a b"}, None) == "shop/a b"
    for absolute in ("/shop", "/shop/", "//shop", "/"):  # the README's rule: an absolute folder is a 400
        with pytest.raises(UploadError, match="folder may not be an absolute path"):
            params.choose_public_id({"folder": absolute, "public_id": "a"}, None)
    chosen = params.choose_public_id({"use_filename": "1"}, "/tmp/My Photo.JPG")
    assert chosen.startswith("My_Photo_") and len(chosen) == len("My_Photo_") + 6
    assert params.choose_public_id({"use_filename": "true", "unique_filename": "false"}, "x.jpg") == "x"
    assert len(params.choose_public_id({}, None)) == 20
    for hostile in ("a//b", "a/./b", " lead", "a\nb", "é" * 201):
        with pytest.raises(UploadError):
            params.check_public_id(hostile)


@pytest.mark.parametrize("name", ["use_filename", "unique_filename"])
def test_filename_flags_are_booleans_even_when_unused(name: str) -> None:
    """A malformed ``use_filename`` or ``unique_filename`` is a 400 naming it, as ``overwrite``'s is, even
    where the value would not matter (an explicit public_id; unique_filename without use_filename)."""
    for given in ({"public_id": "a"}, {}, {"use_filename": "true"}):
        with pytest.raises(UploadError, match=f"{name} must be true or false") as caught:
            params.choose_public_id({**given, name: "nah"}, "x.jpg")
        assert caught.value.status == 400


def test_a_file_part_without_a_filename_is_named_in_the_refusal() -> None:
    """multipart reads a part without a filename as a text field: the 400 says what to add."""
    from cutout.upload.images import decode_file_field

    with pytest.raises(UploadError, match="a file part needs a filename in its Content-Disposition"):
        decode_file_field(ROAD[:2000].decode("latin-1"))


def test_a_data_uri_with_bad_base64_is_named_as_such() -> None:
    """A data URI says what it is: its refusal names its data, not how the field was sent."""
    from cutout.upload.images import decode_file_field

    for data in ("!!!!", "-_-_" * 10):  # not base64; URL-safe base64 (not what data URIs carry)
        with pytest.raises(UploadError, match="the data URI's data is not base64") as caught:
            decode_file_field(f"data:image/jpeg;base64,{data}")
        assert caught.value.status == 400


def test_an_exif_rotated_image_is_checked_upright() -> None:
    """``check_image`` gives the size delivery serves: EXIF orientations 5-8 swap the sides."""
    from cutout.image_check import check_image

    for orientation, size in ((1, (120, 80)), (3, (120, 80)), (6, (80, 120)), (8, (80, 120))):
        image = pyvips.Image.black(120, 80, bands=3).copy()
        image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
        checked = check_image(bytes(image.jpegsave_buffer()), 10_000)
        assert (checked.width, checked.height) == size, orientation


def test_a_write_of_a_new_id_looks_for_no_other_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FolderOriginals(tmp_path)
    monkeypatch.setattr(store, "_remove_others", lambda *a, **k: pytest.fail("looked for other formats"))
    found = store.write("a/new", "jpg", ROAD, replacing=False)
    assert found == store.locate("a/new") and found.path.read_bytes() == ROAD


def test_records_from_before_sizes_were_upright_are_repaired_once_at_start_up(tmp_path: Path) -> None:
    """A record an earlier version wrote for an EXIF-rotated photo (its stored sides, 120x80, where
    delivery serves 80x120) gets the upright size from a server started over the store, with coordinates
    that no longer fit dropped; a record that is right, or that describes other bytes, is left alone; the
    marker makes the next start skip the scan."""
    import json
    import time

    from starlette.testclient import TestClient

    from cutout.app import create_app
    from cutout.settings import Settings
    from cutout.upload.assets import Assets

    (tmp_path / "originals").mkdir()
    store = FolderOriginals(tmp_path / "originals")
    config = Settings(originals=tmp_path / "originals", cache_dir=tmp_path / "cache", upload=True,
                      api_key="k", api_secret="s", background_removal=False)  # fmt: skip
    photo = pyvips.Image.black(120, 80, bands=3).copy()
    photo.set_type(pyvips.GValue.gint_type, "orientation", 6)
    sideways = bytes(photo.jpegsave_buffer())
    with TestClient(create_app(config, load_model=False)) as client:
        for public_id, regions in (("old/turned", ""), ("old/kept", "10,10,20,20"), ("new/right", "")):
            up = client.post("/v1_1/demo/image/upload", auth=("k", "s"), files={"file": ("a.jpg", sideways)},
                             data={"public_id": public_id, "custom_coordinates": regions})  # fmt: skip
            assert up.status_code == 200, up.text
            assert (up.json()["width"], up.json()["height"]) == (80, 120)
    for public_id in ("old/turned", "old/kept"):  # as the earlier version wrote them: the stored sides
        record = json.loads(store.get_record(f"assets/{public_id}") or b"{}")
        record.update({"width": 120, "height": 80})
        if public_id == "old/turned":
            record["custom_coordinates"] = [[90, 10, 20, 20]]  # inside 120x80, outside 80x120
        store.put_record(f"assets/{public_id}", json.dumps(record).encode())
    other = json.loads(store.get_record("assets/new/right") or b"{}")
    store.put_record("assets/new/right", json.dumps({**other, "fingerprint": "other bytes", "width": 120,
                                                     "height": 80}).encode())  # fmt: skip
    store.delete_record("index/upright-1")

    def size(client: TestClient, public_id: str) -> dict[str, object]:
        shown = client.get(f"/v1_1/demo/resources/image/upload/{public_id}", auth=("k", "s"),
                           params={"coordinates": "true"})  # fmt: skip
        return dict(shown.json())

    with TestClient(create_app(config, load_model=False)) as client:
        deadline = time.monotonic() + 60
        while size(client, "old/kept")["width"] != 80 and time.monotonic() < deadline:
            time.sleep(0.05)
        turned, kept = size(client, "old/turned"), size(client, "old/kept")
    assert (turned["width"], turned["height"], turned["coordinates"]) == (80, 120, {})
    assert (kept["width"], kept["height"], kept["coordinates"]) == (80, 120, {"custom": [[10, 10, 20, 20]]})
    # The stored original is not the one that record describes: left for whoever writes it next.
    assert json.loads(store.get_record("assets/new/right") or b"{}")["width"] == 120
    assert Assets(store, None).upright_existing() == 0  # type: ignore[arg-type]  # done: the marker says so


def test_notifications_still_to_deliver_are_kept_before_finished_ones() -> None:
    """A record keeps KEPT_NOTIFICATIONS deliveries; a full list drops the oldest finished one, not the
    oldest still to be delivered (it used to keep the newest, whatever their state)."""

    def delivery(n: int, state: State) -> str:
        made = Delivery.new(f"https://hooks.example.org/{n}", {"n": n}, "cloudinary")
        made.state = state
        return made.to_json()

    first_pending = delivery(0, "pending")
    texts = [first_pending] + [delivery(n, "delivered") for n in range(1, KEPT_NOTIFICATIONS)]
    after = kept([*texts, delivery(99, "pending")])
    assert len(after) == KEPT_NOTIFICATIONS
    assert after[0] == first_pending and Delivery.from_json(after[-1]).url.endswith("/99")
    assert "https://hooks.example.org/1" not in [Delivery.from_json(t).url for t in after]  # oldest finished
    all_pending = [delivery(n, "pending") for n in range(KEPT_NOTIFICATIONS + 1)]
    assert kept(all_pending) == all_pending[1:]  # none finished: the oldest goes, the list stays bounded
