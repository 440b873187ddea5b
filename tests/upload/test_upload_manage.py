"""Managing assets with Cloudinary's own SDK against a real `cutout serve`: ``uploader.rename``, the tag
commands (``add_tag``, ``remove_tag``, ``replace_tag``, ``remove_all_tags``) and the Admin API's
``delete_resources`` and ``delete_resources_by_prefix``."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess
from tests.upload.conftest import CLOUD
from tests.upload.test_upload_sdk import status_of, wait_status

ROAD = SAMPLES / "docs" / "road.jpg"
ROUTER = SAMPLES / "docs" / "rmv_bgd" / "router_orig.jpg"


def _originals(server: ServerProcess) -> Path:
    command = server.process.args
    assert isinstance(command, list)
    return Path(command[command.index("--originals") + 1])


def test_rename_moves_the_original_its_record_and_backups(sdk: Any, server: ServerProcess) -> None:
    up = sdk.uploader.upload(str(ROAD), public_id="ren/a", backup=True, tags=["t"], context={"k": "v"})
    moved = sdk.uploader.rename("ren/a", "ren/b")
    assert moved["public_id"] == "ren/b" and moved["version"] == up["version"]
    assert moved["asset_id"] == up["asset_id"] and moved["etag"] == up["etag"] and moved["tags"] == ["t"]
    assert moved["url"].endswith(f"/v{up['version']}/ren/b.jpg")
    assert httpx.get(moved["url"], timeout=30).headers["content-type"] == "image/jpeg"
    assert httpx.get(up["url"], timeout=30).status_code == 404  # the old id is gone
    with pytest.raises(sdk.exceptions.NotFound, match="Resource not found - ren/a"):
        sdk.api.resource("ren/a")
    root = _originals(server)
    assert (root / "ren" / "b.jpg").read_bytes() == ROAD.read_bytes()
    assert not (root / "ren" / "a.jpg").exists()
    assert not any((root / ".cutout" / "backups" / "ren" / "a").rglob("*.record"))
    resource = dict(sdk.api.resource("ren/b", versions=True))
    assert resource["context"] == {"custom": {"k": "v"}} and resource["backup"] is True
    # The backups came along: destroy, then restore under the new id.
    assert sdk.uploader.destroy("ren/b") == {"result": "ok"}
    assert sdk.api.restore(["ren/b"])["ren/b"]["etag"] == up["etag"]

    # Onto an existing id: refused unless overwrite.
    replaced = sdk.uploader.upload(str(ROUTER), public_id="ren/c")
    # 400, not 409: Cloudinary's Node SDK reads the message of the Upload API's 400s only.
    with pytest.raises(sdk.exceptions.BadRequest, match=r"to_public_id \(ren/c\) already exists"):
        sdk.uploader.rename("ren/b", "ren/c")
    over = sdk.uploader.rename("ren/b", "ren/c", overwrite=True)
    assert over["etag"] == up["etag"] and dict(sdk.api.resource("ren/c"))["etag"] == up["etag"]
    # ren/b's version is older than the one it replaces: a higher one, so that the replaced image's URL
    # (cached for a year) is not the renamed image's
    assert over["version"] > replaced["version"] and over["version"] > up["version"]
    assert sorted(p.name for p in (root / "ren").iterdir()) == ["c.jpg"]

    # A file put into the folder by hand (no record) is renamed too.
    by_hand = sdk.uploader.rename("docs/road", "ren/by_hand")
    assert by_hand["etag"] == hashlib.md5(ROAD.read_bytes()).hexdigest()
    sdk.uploader.rename("ren/by_hand", "docs/road")  # put back for the other tests

    with pytest.raises(sdk.exceptions.NotFound, match="Resource not found - ren/none"):
        sdk.uploader.rename("ren/none", "ren/d")
    with pytest.raises(sdk.exceptions.BadRequest, match="to_public_id may not contain"):
        sdk.uploader.rename("ren/c", "../escape")
    with pytest.raises(sdk.exceptions.BadRequest, match="to_type 'private' is not supported"):
        sdk.uploader.rename("ren/c", "ren/e", to_type="private")
    with pytest.raises(sdk.exceptions.BadRequest, match="Parameter metadata is not supported"):
        sdk.uploader.rename("ren/c", "ren/e", metadata="a=b")
    assert dict(sdk.api.resource("ren/c"))["public_id"] == "ren/c"  # nothing changed by the refusals


def test_rename_waits_for_pending_work(sdk: Any, server: ServerProcess) -> None:
    sdk.uploader.upload(str(ROUTER), public_id="ren/busy", background_removal="cloudinary_ai")
    with pytest.raises(sdk.exceptions.RateLimited, match="ren/busy has work pending"):
        sdk.uploader.rename("ren/busy", "ren/idle")
    marker = _originals(server) / ".cutout" / "jobs" / "ren" / "busy.record"
    deadline = time.monotonic() + 120
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    moved = sdk.uploader.rename("ren/busy", "ren/idle")
    assert (
        moved["format"] == "png"
        and moved["info"]["background_removal"]["cloudinary_ai"]["status"] == "complete"
    )


def test_tag_commands(sdk: Any) -> None:
    for name in ("x", "y"):
        sdk.uploader.upload(str(ROAD), public_id=f"tag/{name}", tags=["old"])
    added = sdk.uploader.add_tag("new", ["tag/x", "tag/y", "tag/none"])
    assert added == {"public_ids": ["tag/x", "tag/y"]}
    assert dict(sdk.api.resource("tag/x"))["tags"] == ["old", "new"]
    assert sdk.uploader.remove_tag("old", ["tag/x"]) == {"public_ids": ["tag/x"]}
    assert dict(sdk.api.resource("tag/x"))["tags"] == ["new"]
    sdk.uploader.replace_tag("only", ["tag/y"])
    assert dict(sdk.api.resource("tag/y"))["tags"] == ["only"]
    sdk.uploader.remove_all_tags(["tag/x", "tag/y"])
    assert dict(sdk.api.resource("tag/x"))["tags"] == [] and dict(sdk.api.resource("tag/y"))["tags"] == []
    sdk.uploader.add_tag("a,b", "tag/x")  # several tags at once, one id as a string
    assert dict(sdk.api.resource("tag/x"))["tags"] == ["a", "b"]
    with pytest.raises(sdk.exceptions.BadRequest, match="Missing required parameter - tag"):
        sdk.uploader.add_tag("", ["tag/x"])
    with pytest.raises(sdk.exceptions.BadRequest, match="Missing required parameter - public_ids"):
        sdk.uploader.add_tag("a", [])
    with pytest.raises(sdk.exceptions.BadRequest, match="public_ids may not contain"):
        sdk.uploader.add_tag("a", ["../x"])
    with pytest.raises(sdk.exceptions.BadRequest, match="Parameter notification_url is not supported"):
        sdk.uploader.add_tag("a", ["tag/x"], notification_url="http://127.0.0.1/x")


def test_tag_and_context_commands_take_the_documented_thousand_ids(sdk: Any) -> None:
    """The SDK sends each id as its own ``public_ids[]`` field: 1000 of them (the documented limit) are
    read, and the 1001st is refused naming that limit, not the form reader's field count."""
    sdk.uploader.upload(str(ROAD), public_id="many/one")
    ids = ["many/one", *(f"many/none{i}" for i in range(999))]
    assert sdk.uploader.add_tag("lots", ids) == {"public_ids": ["many/one"]}
    assert sdk.uploader.add_context({"k": "v"}, ids) == {"public_ids": ["many/one"]}
    assert dict(sdk.api.resource("many/one"))["tags"] == ["lots"]
    for call in (lambda: sdk.uploader.add_tag("x", [*ids, "many/extra"]),
                 lambda: sdk.uploader.add_context({"k": "v"}, [*ids, "many/extra"])):  # fmt: skip
        with pytest.raises(sdk.exceptions.BadRequest, match="at most 1000"):
            call()


def test_delete_resources_by_ids_and_by_prefix(sdk: Any, server: ServerProcess) -> None:
    for name in ("p/1", "p/2", "p/sub/3", "q/1"):
        sdk.uploader.upload(str(ROAD), public_id=f"del/{name}", backup=name == "q/1")
    gone = sdk.api.delete_resources(["del/q/1", "del/none"])
    assert gone["deleted"] == {"del/q/1": "deleted", "del/none": "not_found"} and gone["partial"] is False
    assert gone["deleted_counts"]["del/q/1"] == {"original": 1, "derived": 0}
    assert sdk.api.restore(["del/q/1"])["del/q/1"]["public_id"] == "del/q/1"  # its backup was kept
    # an original placed by hand under a name no upload could choose (a part ending in a space) goes too,
    # not a 400 for the whole call
    (_originals(server) / "del" / "p" / "by hand .jpg").write_bytes(ROAD.read_bytes())
    by_prefix = sdk.api.delete_resources_by_prefix("del/p/")
    assert sorted(by_prefix["deleted"]) == ["del/p/1", "del/p/2", "del/p/by hand ", "del/p/sub/3"]
    assert by_prefix["deleted"]["del/p/by hand "] == "deleted"
    assert not (_originals(server) / "del" / "p" / "by hand .jpg").exists()
    assert [r["public_id"] for r in sdk.api.resources(prefix="del/")["resources"]] == ["del/q/1"]
    record = _originals(server) / ".cutout" / "assets" / "del" / "p" / "1.record"
    assert json.loads(record.read_bytes())["deleted"] is True  # kept, for the next upload's version
    with pytest.raises(sdk.exceptions.BadRequest, match="public_ids or prefix"):
        sdk.api.delete_resources([])
    with pytest.raises(sdk.exceptions.BadRequest, match="Parameter all is not supported"):
        sdk.api.delete_all_resources()
    with pytest.raises(sdk.exceptions.BadRequest, match="prefix"):
        sdk.api.delete_resources_by_prefix("../")
    with pytest.raises(sdk.exceptions.AuthorizationRequired):
        sdk.api.delete_resources(["del/q/1"], api_secret="wrong")
    assert json.loads(json.dumps(sdk.api.resource("del/q/1")))["public_id"] == "del/q/1"


def test_resources_by_ids(sdk: Any) -> None:
    for name in ("b", "a"):
        sdk.uploader.upload(str(ROAD), public_id=f"ids/{name}")
    found = sdk.api.resources_by_ids(["ids/b", "ids/none", "ids/a", "ids/b"])
    assert [r["public_id"] for r in found["resources"]] == ["ids/b", "ids/a"]
    with pytest.raises(sdk.exceptions.BadRequest, match="public_ids may not contain"):
        sdk.api.resources_by_ids(["../x"])
    with pytest.raises(sdk.exceptions.BadRequest, match="1 to 100 ids"):
        sdk.api.resources_by_ids([f"ids/{i}" for i in range(101)])


def test_resources_by_tag_and_delete_by_tag(sdk: Any, server: ServerProcess) -> None:
    for name in ("c", "a", "b"):
        sdk.uploader.upload(str(ROAD), public_id=f"bytag/{name}", tags=["shelf", f"only-{name}"])
    sdk.uploader.add_tag("shelf", ["docs/road"])  # a file put in by hand, tagged through the API
    first = sdk.api.resources_by_tag("shelf", max_results=2)
    assert [r["public_id"] for r in first["resources"]] == ["bytag/a", "bytag/b"]
    rest = sdk.api.resources_by_tag("shelf", max_results=2, next_cursor=first["next_cursor"])
    assert [r["public_id"] for r in rest["resources"]] == [
        "bytag/c",
        "docs/road",
    ] and "next_cursor" not in rest
    # A tag removed, an asset renamed, an asset destroyed: the listing follows the records.
    sdk.uploader.remove_tag("shelf", ["docs/road"])
    sdk.uploader.rename("bytag/a", "bytag/renamed")
    sdk.uploader.destroy("bytag/b")
    listed = sdk.api.resources_by_tag("shelf")["resources"]
    assert [r["public_id"] for r in listed] == ["bytag/c", "bytag/renamed"]
    assert sdk.api.resources_by_tag("only-a")["resources"][0]["public_id"] == "bytag/renamed"
    assert sdk.api.resources_by_tag("never-used") == {"resources": []}
    # The index entries that no longer held were dropped as the listing met them.
    index = _originals(server) / ".cutout" / "tags" / hashlib.sha256(b"shelf").hexdigest()[:32]
    assert sorted(str(p.relative_to(index)) for p in index.rglob("*.record")) == [
        "bytag/c.record", "bytag/renamed.record"]  # fmt: skip
    # A page as full as asked is followed by a cursor only when an asset is left for it: an index entry
    # after it that no longer holds (docs/road's, tagged and untagged again) does not count.
    sdk.uploader.add_tag("shelf", ["docs/road"])
    sdk.uploader.remove_tag("shelf", ["docs/road"])
    assert (index / "docs" / "road.record").exists()
    full = sdk.api.resources_by_tag("shelf", max_results=2)
    assert [r["public_id"] for r in full["resources"]] == ["bytag/c", "bytag/renamed"]
    assert "next_cursor" not in full

    gone = sdk.api.delete_resources_by_tag("shelf")
    assert gone["deleted"] == {"bytag/c": "deleted", "bytag/renamed": "deleted"} and gone["partial"] is False
    assert sdk.api.resources_by_tag("shelf") == {"resources": []}
    with pytest.raises(sdk.exceptions.BadRequest, match="is not one valid tag"):
        sdk.api.resources_by_tag("a,b")
    with pytest.raises(sdk.exceptions.BadRequest, match="Parameter direction is not supported"):
        sdk.api.resources_by_tag("shelf", direction="desc")


def test_context_commands(sdk: Any) -> None:
    sdk.uploader.upload(str(ROAD), public_id="ctx/a", context={"sku": "1", "colour": "red"})
    added = sdk.uploader.add_context({"colour": "blue", "size": "L"}, ["ctx/a", "ctx/none"])
    assert added == {"public_ids": ["ctx/a"]}
    assert dict(sdk.api.resource("ctx/a"))["context"] == {
        "custom": {"sku": "1", "colour": "blue", "size": "L"}
    }
    assert sdk.uploader.remove_all_context(["ctx/a"]) == {"public_ids": ["ctx/a"]}
    assert "context" not in dict(sdk.api.resource("ctx/a"))
    with pytest.raises(sdk.exceptions.BadRequest, match="not key=value"):
        sdk.uploader.add_context("novalue", ["ctx/a"])
    with pytest.raises(sdk.exceptions.BadRequest, match="Missing required parameter - public_ids"):
        sdk.uploader.add_context({"a": "b"}, [])


def test_client_side_resource_list(sdk: Any, server: ServerProcess) -> None:
    sdk.uploader.upload(str(ROAD), public_id="gallery/two", tags=["gallery"], context={"alt": "A road"})
    sdk.uploader.upload(str(ROUTER), public_id="gallery/one", tags=["gallery"])
    for path in ("/image/list/gallery.json", f"/{CLOUD}/image/list/gallery.json"):
        answer = httpx.get(server.url + path)
        assert answer.status_code == 200 and answer.headers["cache-control"] == "public, max-age=60"
        assert answer.headers["access-control-allow-origin"] == "*"
        listed = answer.json()["resources"]
        assert [r["public_id"] for r in listed] == ["gallery/one", "gallery/two"]
        assert set(listed[1]) == {"public_id", "version", "format", "width", "height", "type", "created_at",
                                  "context"}  # fmt: skip
        assert listed[1]["context"] == {"custom": {"alt": "A road"}} and listed[1]["type"] == "upload"
    assert httpx.get(server.url + "/image/list/nothing.json").json()["resources"] == []
    assert httpx.get(server.url + "/other/image/list/gallery.json").status_code == 404
    refused = httpx.get(server.url + "/image/list/a,b.json")
    assert refused.status_code == 400 and "is not one valid tag" in refused.headers["x-cld-error"]


def test_assets_from_before_the_tag_index_are_indexed_at_start_up(tmp_path: Path) -> None:
    """A record written before the tag index existed (no ``indexed``) is found by tag once a server has
    started over the store; the marker makes the next start skip the scan."""
    import shutil

    from starlette.testclient import TestClient

    from cache import FolderOriginals
    from cutout.app import create_app
    from cutout.settings import Settings
    from cutout.upload.assets import Assets

    shutil.copytree(SAMPLES, tmp_path / "originals")
    store = FolderOriginals(tmp_path / "originals")
    config = Settings(originals=tmp_path / "originals", cache_dir=tmp_path / "cache", upload=True,
                      api_key="k", api_secret="s", background_removal=False)  # fmt: skip
    with TestClient(create_app(config, load_model=False)) as client:
        photo = {"file": ("a.jpg", ROAD.read_bytes())}
        up = client.post("/v1_1/demo/image/upload", auth=("k", "s"), files=photo,
                         data={"public_id": "old/one", "tags": "x"})  # fmt: skip
        assert up.status_code == 200, up.text
    record = json.loads(store.get_record("assets/old/one") or b"{}")
    record.pop("indexed")  # as an earlier version wrote it: no tag index at all
    store.put_record("assets/old/one", json.dumps(record).encode())
    for name in [*store.list_records("tags"), *store.list_records("index")]:
        store.delete_record(name)
    with TestClient(create_app(config, load_model=False)) as client:
        deadline = time.monotonic() + 60
        while True:
            listed = client.get("/v1_1/demo/resources/image/tags/x", auth=("k", "s")).json()["resources"]
            if listed or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [r["public_id"] for r in listed] == ["old/one"]
    assert Assets(store, None).index_existing() == 0  # type: ignore[arg-type]  # done: the marker says so


def test_an_id_uploaded_again_gets_a_higher_version(sdk: Any) -> None:
    """Whatever happened to the id between (destroyed, renamed away), within the same second too: a
    versioned URL is served as immutable, so one version is one image."""
    first = sdk.uploader.upload(str(ROAD), public_id="ver/a")
    assert sdk.uploader.destroy("ver/a") == {"result": "ok"}
    second = sdk.uploader.upload(str(ROUTER), public_id="ver/a")
    assert second["version"] > first["version"] and second["asset_id"] != first["asset_id"]
    sdk.uploader.rename("ver/a", "ver/b")
    third = sdk.uploader.upload(str(ROAD), public_id="ver/a")
    assert third["version"] > second["version"]
    assert third["asset_id"] != second["asset_id"]  # ver/b is the asset that was ver/a
    assert dict(sdk.api.resource("ver/b"))["asset_id"] == second["asset_id"]


def test_destroy_takes_invalidate_only_as_a_boolean(sdk: Any) -> None:
    """destroy took invalidate=perhaps and deleted the asset, where upload and rename refuse it."""
    sdk.uploader.upload(str(ROAD), public_id="inv/a")
    with pytest.raises(sdk.exceptions.BadRequest, match="invalidate must be true or false"):
        sdk.uploader.destroy("inv/a", invalidate="perhaps")
    assert dict(sdk.api.resource("inv/a"))["public_id"] == "inv/a"  # refused: nothing deleted
    assert sdk.uploader.destroy("inv/a", invalidate=True) == {"result": "ok"}


def test_only_the_current_version_is_served_as_immutable(sdk: Any) -> None:
    """The URL an upload answers is immutable while it names the asset's version; once the id holds a
    newer upload (or for a made-up version) the same URL serves the current image with the short max-age,
    so no cache keeps the old image under it for a year."""
    immutable = "public, max-age=31536000, immutable"
    first = sdk.uploader.upload(str(ROAD), public_id="imm/a")
    assert httpx.get(first["secure_url"]).headers["cache-control"] == immutable
    second = sdk.uploader.upload(str(ROUTER), public_id="imm/a")
    assert httpx.get(second["secure_url"]).headers["cache-control"] == immutable
    old = httpx.get(first["secure_url"])
    assert old.status_code == 200 and old.headers["cache-control"] != immutable
    assert old.content == httpx.get(second["secure_url"]).content  # the current image, as Cloudinary serves
    made_up = httpx.get(second["secure_url"].replace(f"/v{second['version']}/", "/v1/"))
    assert made_up.status_code == 200 and made_up.headers["cache-control"] != immutable


def test_restore_brings_back_what_those_bytes_are(sdk: Any) -> None:
    """The photo before its background was removed comes back without the removal's info (it said
    'complete' with the cut-out's confidence); the cut-out's own backup comes back with it."""
    up = sdk.uploader.upload(str(ROUTER), public_id="info/a", backup=True, background_removal="cloudinary_ai")
    done = wait_status(sdk, "info/a")
    assert status_of(done) == "complete", done
    photo = sdk.api.restore(["info/a"], versions=[up["version_id"]])["info/a"]
    assert photo["format"] == "jpg" and "background_removal" not in photo.get("info", {}), photo
    cut = sdk.api.restore(["info/a"], versions=[done["version_id"]])["info/a"]
    assert cut["format"] == "png" and status_of(cut) == "complete", cut
    listed = dict(sdk.api.resource("info/a", versions=True))["versions"]
    assert all(set(v) == {"version_id", "version", "format", "size", "time", "restorable"} for v in listed)


def test_restore_brings_back_the_name_those_bytes_came_with(sdk: Any) -> None:
    first = sdk.uploader.upload(str(ROAD), public_id="names/a", backup=True)
    second = sdk.uploader.upload(str(ROUTER), public_id="names/a", backup=True)
    assert (first["original_filename"], second["original_filename"]) == ("road", "router_orig")
    restored = sdk.api.restore(["names/a"], versions=[first["version_id"]])["names/a"]
    assert restored["etag"] == first["etag"] and restored["original_filename"] == "road"


def test_restore_pairs_each_version_with_its_public_id(sdk: Any) -> None:
    """Versions are Unix seconds, so two assets share numbers: a list applied to every id restored the
    second asset to its own backup that happened to carry the first asset's number."""
    a1 = sdk.uploader.upload(str(ROAD), public_id="pairs/a", backup=True)
    sdk.uploader.upload(str(ROUTER), public_id="pairs/a", backup=True)
    b1 = sdk.uploader.upload(str(ROUTER), public_id="pairs/b", backup=True)
    b2 = sdk.uploader.upload(str(ROAD), public_id="pairs/b", backup=True)
    both = sdk.api.restore(["pairs/a", "pairs/b"], versions=[a1["version_id"], str(b1["version"])])
    assert both["pairs/a"]["etag"] == a1["etag"] and both["pairs/b"]["etag"] == b1["etag"], both
    with pytest.raises(sdk.exceptions.BadRequest, match="versions: 1 given for 2 public_ids"):
        sdk.api.restore(["pairs/a", "pairs/b"], versions=[str(b2["version"])])
    assert sdk.api.resource("pairs/b")["etag"] == b1["etag"]  # the refused call changed nothing
    missing = sdk.api.restore(["pairs/b"], versions=[a1["version_id"]])  # another asset's version
    assert missing == {"pairs/b": {"error": "no_backup"}}
