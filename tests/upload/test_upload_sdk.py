"""End to end with Cloudinary's own Python SDK against a real `cutout serve` (real model): upload with
background removal, the signed notification, the Admin API, explicit, destroy, restore, and every
refusal raised as the SDK's own exception with our message."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess, metric
from tests.upload.conftest import CLOUD, KEY, Receiver

ROUTER = SAMPLES / "docs" / "rmv_bgd" / "router_orig.jpg"
ROAD = SAMPLES / "docs" / "road.jpg"


def status_of(resource: dict[str, Any]) -> str:
    return str(resource.get("info", {}).get("background_removal", {}).get("cloudinary_ai", {}).get("status"))


def wait_status(sdk: Any, public_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        resource = dict(sdk.api.resource(public_id))
        if status_of(resource) != "pending" or time.monotonic() > deadline:
            return resource
        time.sleep(0.3)


def notified(receiver: Receiver, public_id: str, kind: str) -> dict[str, Any]:
    def match(post: Any) -> bool:
        body = json.loads(post.body)
        return bool(body.get("public_id") == public_id and body.get("notification_type") == kind)

    post = receiver.wait_for(match)
    from cloudinary.utils import verify_notification_signature

    stamp, signature = post.headers["x-cld-timestamp"], post.headers["x-cld-signature"]
    assert verify_notification_signature(post.body.decode(), stamp, signature)
    assert not verify_notification_signature(post.body.decode() + " ", stamp, signature)
    return dict(json.loads(post.body))


def _originals(server: ServerProcess) -> Path:
    command = server.process.args
    assert isinstance(command, list)
    return Path(command[command.index("--originals") + 1])


def test_background_removal_on_upload(sdk: Any, server: ServerProcess, receiver: Receiver) -> None:
    runs = metric(server.url, "cutout_inference_total")
    eager = [{"width": 100, "crop": "scale"}, {"effect": "background_removal"}]
    up = sdk.uploader.upload(str(ROUTER), public_id="shop/router", background_removal="cloudinary_ai",
                             notification_url=receiver.url, tags=["new", "shop"], context={"sku": "R-1"},
                             eager=eager, eager_notification_url=receiver.url)  # fmt: skip
    assert status_of(up) == "pending" and up["format"] == "jpg" and up["public_id"] == "shop/router"
    assert up["url"].endswith(f"/{CLOUD}/image/upload/v{up['version']}/shop/router.jpg")
    assert up["tags"] == ["new", "shop"] and up["context"] == {"custom": {"sku": "R-1"}}
    assert up["eager"][0]["width"] == 100 and up["eager"][0]["transformation"] == "c_scale,w_100"
    assert up["eager"][1]["status"] == "processing"
    assert sdk.utils.verify_api_response_signature(up["public_id"], up["version"], up["signature"])

    note = notified(receiver, "shop/router", "info")
    assert note["info_kind"] == "cloudinary_ai" and note["info_status"] == "complete"
    assert note["signature_key"] == KEY and note["asset_id"] == up["asset_id"]
    assert 0.0 <= note["info_data"]["confidence_score"] <= 1.0
    assert note["info_data"]["cloudinary_ai_fine_edges"] is False
    assert note["url"].endswith(".png") and note["version"] > up["version"]
    assert note["notification_context"]["triggered_at"].endswith("Z")
    # Before it, the upload's own notification, sent when the upload was done: the answer's fields.
    told = notified(receiver, "shop/router", "upload")
    assert told["version"] == up["version"] and told["format"] == "jpg" and status_of(told) == "pending"
    assert told["asset_id"] == up["asset_id"] and told["signature_key"] == KEY
    with receiver.condition:
        kinds = [json.loads(p.body)["notification_type"] for p in receiver.posts
                 if json.loads(p.body).get("public_id") == "shop/router"]  # fmt: skip
    assert kinds == ["upload", "eager", "info"], kinds

    resource = dict(sdk.api.resource("shop/router"))
    assert resource["format"] == "png" and status_of(resource) == "complete"
    confidence = resource["info"]["background_removal"]["cloudinary_ai"]["data"]["confidence_score"]
    assert confidence == note["info_data"]["confidence_score"]
    assert resource["version"] == note["version"] > up["version"] and resource["backup"] is True
    assert resource["secure_url"].endswith(f"/v{resource['version']}/shop/router.png")

    served = httpx.get(resource["secure_url"], timeout=30)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    image = pyvips.Image.new_from_buffer(served.content, "")
    assert image.bands == 4
    alpha = image.extract_band(3)
    assert alpha.min() == 0 and alpha.max() == 255  # transparent background, opaque router
    stored = next(_originals(server).joinpath("shop").glob("router.*"))
    assert stored.name == "router.png"  # the JPEG is gone from the originals
    assert hashlib.md5(stored.read_bytes()).hexdigest() == resource["etag"]

    # One model run for the upload's removal and the eager e_background_removal of the same original.
    eager_note = notified(receiver, "shop/router", "eager")
    made = eager_note["eager"][0]
    # Made from the JPEG the upload answered with, before the removal replaced it.
    assert made["transformation"] == "e_background_removal" and made.get("format") == "jpg", made
    assert eager_note["batch_id"] == up["eager"][1]["batch_id"] and eager_note["version"] == up["version"]
    assert metric(server.url, "cutout_inference_total") == runs + 1
    versions = dict(sdk.api.resource("shop/router", versions=True))["versions"]
    assert [v["format"] for v in versions] == ["jpg", "png"]


def test_update_explicit_destroy_restore(sdk: Any, server: ServerProcess, receiver: Receiver) -> None:
    up = sdk.uploader.upload(str(ROAD), public_id="docs2/road", backup=True)
    assert status_of(up) == "None" and up["format"] == "jpg"
    updated = sdk.api.update("docs2/road", background_removal="cloudinary_ai:fine_edges",
                             notification_url=receiver.url, tags=["road"])  # fmt: skip
    assert status_of(updated) == "pending" and updated["tags"] == ["road"]
    note = notified(receiver, "docs2/road", "info")
    assert note["info_data"]["cloudinary_ai_fine_edges"] is True
    assert dict(sdk.api.resource("docs2/road"))["format"] == "png"

    explicit = sdk.uploader.explicit("docs2/road", type="upload", eager=[{"width": 50, "crop": "scale"}])
    assert explicit["eager"][0]["width"] == 50 and explicit["format"] == "png"
    later = sdk.uploader.explicit("docs2/road", type="upload", eager=[{"width": 30, "crop": "scale"}],
                                  eager_async=True, eager_notification_url=receiver.url)  # fmt: skip
    assert later["eager"][0]["status"] == "processing"
    eager_note = notified(receiver, "docs2/road", "eager")
    assert eager_note["eager"][0]["width"] == 30 and eager_note["eager"][0]["url"].endswith(".png")
    derived = dict(sdk.api.resource("docs2/road"))["derived"]
    assert [d["transformation"] for d in derived] == ["c_scale,w_50", "c_scale,w_30"]

    assert sdk.uploader.destroy("docs2/road") == {"result": "ok"}
    with pytest.raises(sdk.exceptions.NotFound, match="Resource not found - docs2/road"):
        sdk.api.resource("docs2/road")
    assert sdk.uploader.destroy("docs2/road") == {"result": "not found"}

    original = next(v for v in [*_versions_of(server, "docs2/road")] if v["format"] == "jpg")
    restored = sdk.api.restore(["docs2/road"], versions=[original["version_id"]])
    assert restored["docs2/road"]["format"] == "jpg"
    resource = dict(sdk.api.resource("docs2/road"))
    assert resource["format"] == "jpg" and resource["bytes"] == ROAD.stat().st_size
    assert httpx.get(resource["url"], timeout=30).headers["content-type"] == "image/jpeg"
    assert sdk.api.restore(["never/there"])["never/there"] == {"error": "no_backup"}


def _versions_of(server: ServerProcess, public_id: str) -> list[dict[str, Any]]:
    """A deleted asset's backups, from its record (the Admin API answers 404 for it)."""
    record = _originals(server) / ".cutout" / "assets" / f"{public_id}.record"
    return list(json.loads(record.read_bytes())["backups"])


def test_list_with_prefix_and_cursor(sdk: Any) -> None:
    for name in ("a", "b", "c"):
        sdk.uploader.upload(str(ROAD), public_id=f"list/{name}")
    first = sdk.api.resources(prefix="list/", max_results=2)
    assert [r["public_id"] for r in first["resources"]] == ["list/a", "list/b"]
    second = sdk.api.resources(type="upload", prefix="list/", max_results=2, next_cursor=first["next_cursor"])
    assert [r["public_id"] for r in second["resources"]] == ["list/c"] and "next_cursor" not in second
    for hostile in ("../", "/etc/", "a/../../"):
        with pytest.raises(sdk.exceptions.BadRequest, match="prefix"):
            sdk.api.resources(prefix=hostile)


def test_overwrite_false_and_a_new_upload_over_a_running_job(sdk: Any, server: ServerProcess) -> None:
    sdk.uploader.upload(str(ROAD), public_id="keep/one")
    again = sdk.uploader.upload(str(ROUTER), public_id="keep/one", overwrite=False)
    assert again["existing"] is True and again["bytes"] == ROAD.stat().st_size

    sdk.uploader.upload(str(ROUTER), public_id="keep/raced", background_removal="cloudinary_ai")
    newer = sdk.uploader.upload(str(ROAD), public_id="keep/raced")  # while the removal runs
    marker = _originals(server) / ".cutout" / "jobs" / "keep" / "raced.record"
    deadline = time.monotonic() + 60
    while marker.exists() and time.monotonic() < deadline:  # until the stale job has ended
        time.sleep(0.2)
    assert not marker.exists()
    resource = dict(sdk.api.resource("keep/raced"))
    assert resource["format"] == "jpg" and resource["etag"] == newer["etag"] and "info" not in resource


def test_concurrent_uploads_of_one_id(sdk: Any, server: ServerProcess) -> None:
    answers: dict[str, dict[str, Any]] = {}

    def send(path: Path) -> None:
        answers[path.name] = dict(sdk.uploader.upload(str(path), public_id="race/one"))

    threads = [threading.Thread(target=send, args=(p,)) for p in (ROAD, ROUTER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for path in (ROAD, ROUTER):
        assert answers[path.name]["etag"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert answers["road.jpg"]["version"] != answers["router_orig.jpg"]["version"]
    resource = dict(sdk.api.resource("race/one"))
    winner = max(answers.values(), key=lambda a: a["version"])
    assert resource["etag"] == winner["etag"]
    files = list(_originals(server).joinpath("race").glob("one.*"))
    assert len(files) == 1 and hashlib.md5(files[0].read_bytes()).hexdigest() == winner["etag"]


def test_upload_notification_retried_and_recorded(sdk: Any, receiver: Receiver) -> None:
    receiver.fail_first = 1
    sdk.uploader.upload(str(ROAD), public_id="hooks/one", notification_url=receiver.url)
    note = notified(receiver, "hooks/one", "upload")
    assert note["format"] == "jpg"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        notes = dict(sdk.api.resource("hooks/one")).get("notifications", [])
        if notes and notes[0]["state"] == "delivered":
            break
        time.sleep(0.2)
    assert notes[0]["state"] == "delivered" and notes[0]["attempts"] == 2 and notes[0]["last_status"] == 200


def _png_header(width: int, height: int, idat: bytes | None = None) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _animation(width: int, height: int, frames: int, *, declared: int | None = None) -> bytes:
    """A GIF of ``frames`` frames; ``declared``: its screen and frames then say they are that many
    pixels square, with the data of the small ones (an animated decompression bomb)."""
    black = pyvips.Image.black(width, height)
    colours = [black.new_from_image([40 * i, 90, 200]).cast("uchar") for i in range(frames)]
    strip = pyvips.Image.arrayjoin(colours, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    data: bytes = strip.write_to_buffer(".gif")
    if declared is not None:
        size = struct.pack("<HH", declared, declared)
        data = data[:6] + size + data[10:]  # the logical screen, then each frame's descriptor
        frame = b"\x2c\0\0\0\0"  # an image descriptor at (0, 0)
        data = data.replace(frame + struct.pack("<HH", width, height), frame + size)
    return data


def test_an_animation_is_described_with_its_pages(sdk: Any) -> None:
    done = sdk.uploader.upload(io.BytesIO(_animation(40, 30, 4)), public_id="anim/four")
    assert (done["format"], done["width"], done["height"], done["pages"]) == ("gif", 40, 30, 4)
    assert sdk.api.resource("anim/four")["pages"] == 4
    assert "pages" not in sdk.uploader.upload(io.BytesIO(ROAD.read_bytes()), public_id="anim/still")


def _rotated_jpeg(width: int, height: int, orientation: int) -> bytes:
    image = pyvips.Image.black(width, height, bands=3).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return bytes(image.jpegsave_buffer())


def test_an_exif_rotated_photo_is_described_as_delivered(sdk: Any, server: ServerProcess) -> None:
    """A phone's portrait photo is stored landscape with EXIF orientation 6; delivery turns it upright, so
    the asset's width and height (upload, resource, listing) are the upright ones, as Cloudinary's."""
    done = sdk.uploader.upload(io.BytesIO(_rotated_jpeg(120, 80, 6)), public_id="exif/portrait")
    assert (done["width"], done["height"]) == (80, 120)
    resource = sdk.api.resource("exif/portrait")
    assert (resource["width"], resource["height"]) == (80, 120)
    listed = sdk.api.resources(prefix="exif/")["resources"][0]
    assert (listed["width"], listed["height"]) == (80, 120)
    served = httpx.get(f"{server.url}/{CLOUD}/image/upload/f_png/exif/portrait.jpg", timeout=60)
    assert served.status_code == 200
    image = pyvips.Image.new_from_buffer(served.content, "")
    assert (image.width, image.height) == (80, 120)
    # Orientation 3 (upside down) keeps the sides; the bytes are kept as sent either way.
    flipped = sdk.uploader.upload(io.BytesIO(_rotated_jpeg(120, 80, 3)), public_id="exif/flipped")
    assert (flipped["width"], flipped["height"]) == (120, 80)
    # An original put into the folder by hand is described from its file the same way.
    command = server.process.args
    assert isinstance(command, list)
    originals = Path(command[command.index("--originals") + 1])
    (originals / "exif-by-hand.jpg").write_bytes(_rotated_jpeg(120, 80, 8))
    by_hand = sdk.api.resource("exif-by-hand")
    assert (by_hand["width"], by_hand["height"]) == (80, 120)


def _files_outside_records(root: Path) -> list[Path]:
    """Every file and folder under ``root`` but the records' ``.cutout`` (never walked into: the server
    removes its empty folders while the test looks, and rglob then fails on a folder gone)."""
    found: list[Path] = []
    for parent, folders, files in os.walk(root):
        folders[:] = [f for f in folders if f != ".cutout"]
        found += [Path(parent) / name for name in (*folders, *files)]
    return sorted(found)


@pytest.mark.parametrize(
    ("options", "file", "exception", "words"),
    [
        ({"moderation": "manual"}, None, "BadRequest", "Parameter moderation is not supported"),
        ({"upload_preset": "preset"}, None, "BadRequest", "upload_preset"),
        ({"ocr": "adv_ocr"}, None, "BadRequest", "Parameter ocr"),
        ({"auto_tagging": 0.5}, None, "BadRequest", "Parameter auto_tagging"),
        ({"width": 100, "crop": "scale"}, None, "BadRequest", "Parameter transformation"),
        ({"background_removal": "pixelz"}, None, "BadRequest", "background_removal 'pixelz'"),
        ({"resource_type": "video"}, None, "BadRequest", "resource_type video is not supported"),
        ({"type": "private"}, None, "BadRequest", "type 'private' is not supported"),
        ({"eager": "w_abc"}, None, "BadRequest", "eager: Invalid transformation parameter - w_abc"),
        ({"notification_url": "ftp://example.org/x"}, None, "BadRequest", "notification_url: Only http"),
        ({"notification_url": "http://127.0.0.1:99999/x"}, None, "BadRequest", "notification_url: .*99999"),
        ({"eager": "w_10", "eager_notification_url": "http://127.0.0.1:0/x"}, None, "BadRequest",
         "eager_notification_url: .*port 0"),
        ({"api_secret": "wrong"}, None, "AuthorizationRequired", "Invalid Signature"),
        ({"api_key": "999"}, None, "AuthorizationRequired", "Unknown API key 999"),
        ({}, ("empty.jpg", b""), "BadRequest", "Empty file"),
        ({}, ("half.jpg", ROUTER.read_bytes()[:20000]), "BadRequest", "truncated or damaged JPG"),
        ({}, ("bomb.png", _png_header(60000, 60000)), "BadRequest", "Image is too large: 60000x60000"),
        ({}, ("frames.gif", _animation(8, 8, 2, declared=5000)), "BadRequest", "2 frames of 5000x5000"),
        ({}, ("notes.txt", b"hello, world"), "BadRequest", "Invalid image file"),
        ({}, ("huge.jpg", b"\xff\xd8\xff" + bytes(4 << 20)), "BadRequest", "File size too large"),
        ({"public_id": "../../etc/passwd"}, None, "BadRequest", "'..' folders"),
        ({"public_id": "/abs/path"}, None, "BadRequest", "absolute path"),
        ({"public_id": "bad\x01id"}, None, "BadRequest", "control characters"),
        ({"public_id": "bad\x9bid"}, None, "BadRequest", "control characters"),
        ({"public_id": "x" * 300}, None, "BadRequest", "public_id is too long"),
        ({"public_id": "ok", "folder": "../up"}, None, "BadRequest", "folder may not contain"),
        ({"public_id": "a/.hidden"}, None, "BadRequest", "starting with '.'"),
        ({"public_id": "a,b"}, None, "BadRequest", "public_id may not contain ,: Cloudinary forbids"),
        ({"public_id": "fish&chips <1>"}, None, "BadRequest", "public_id may not contain & < >"),
        ({"public_id": "v123/x"}, None, "BadRequest", "a folder may not be named 'v123'"),
        ({"public_id": "x", "folder": "shop/v2"}, None, "BadRequest", "folder: a folder may not be"),
        ({"public_id": "x", "folder": "50%"}, None, "BadRequest", "folder may not contain %"),
    ],
)
def test_refusals_raise_the_sdks_exceptions(
    sdk: Any, server: ServerProcess, options: dict[str, Any], file: Any, exception: str, words: str
) -> None:
    before = _files_outside_records(_originals(server))
    with pytest.raises(getattr(sdk.exceptions, exception), match=words.replace("(", r"\(")):
        sdk.uploader.upload(io.BytesIO(ROAD.read_bytes()) if file is None else file, **options)
    after = _files_outside_records(_originals(server))
    assert after == before  # nothing stored, no partial file left behind


def test_admin_refusals(sdk: Any) -> None:
    with pytest.raises(sdk.exceptions.NotFound, match="Resource not found - nope"):
        sdk.api.resource("nope")
    path = f"/v1_1/{CLOUD}/resources/image/upload/..%2F..%2Fetc%2Fpasswd"
    hostile = httpx.get(sdk.config().upload_prefix + path, auth=(KEY, "upload-test-secret"))
    # Checked as destroy checks its public_id (it was a 404 once the store had looked): a 400 naming it.
    assert hostile.status_code == 400 and "'.' or '..' folders" in hostile.json()["error"]["message"]
    with pytest.raises(sdk.exceptions.BadRequest, match="Parameter faces"):
        sdk.api.resource("docs/road", faces=True)
    with pytest.raises(sdk.exceptions.BadRequest, match="Parameter moderation_status"):
        sdk.api.update("docs/road", moderation_status="approved")
    with pytest.raises(sdk.exceptions.AuthorizationRequired, match="Invalid api_key or api_secret"):
        sdk.api.resource("docs/road", api_secret="wrong")
    with pytest.raises(sdk.exceptions.BadRequest, match="resource_type video"):
        sdk.api.resource("x", resource_type="video")
    with pytest.raises(sdk.exceptions.BadRequest, match="GET /tags is not supported"):
        sdk.api.tags()
    with pytest.raises(sdk.exceptions.BadRequest, match="GET /folders is not supported"):
        sdk.api.root_folders()
    assert sdk.api.ping() == {"status": "ok"}
    with pytest.raises(sdk.exceptions.AuthorizationRequired):
        sdk.api.ping(api_secret="wrong")
    whole = sdk.uploader.upload_large(str(ROAD), public_id="large/one", resource_type="image")
    assert whole["public_id"] == "large/one"  # one part: the whole file
    with pytest.raises(sdk.exceptions.BadRequest, match="resource_type raw is not supported.*upload_large"):
        sdk.uploader.upload_large(str(ROAD), public_id="large/raw")  # Python's default: raw
    with pytest.raises(sdk.exceptions.BadRequest, match="action metadata is not supported"):
        sdk.uploader.update_metadata({"a": "b"}, ["docs/road"])
    with pytest.raises(sdk.exceptions.BadRequest, match="resources_by_context is not supported"):
        sdk.api.resources_by_context("key")
    with pytest.raises(sdk.exceptions.BadRequest, match="next_cursor is not a cursor this server returned"):
        sdk.api.resources(next_cursor="!!!")
    # A hand-placed original (no record) is an asset too, its etag the file's MD5 as an upload's is.
    road = dict(sdk.api.resource("docs/road"))
    assert road["format"] == "jpg" and road["width"] > 0 and road["url"].endswith("/docs/road.jpg")
    assert road["etag"] == hashlib.md5(ROAD.read_bytes()).hexdigest()


def test_upload_by_url_through_the_guarded_fetcher(sdk: Any, receiver: Receiver) -> None:
    up = sdk.uploader.upload(receiver.url.replace("/hook", "/road.jpg"), public_id="fetched/road")
    assert up["bytes"] == ROAD.stat().st_size and up["etag"] == hashlib.md5(ROAD.read_bytes()).hexdigest()
    # use_filename takes the name from the URL's path, as Cloudinary does
    named = sdk.uploader.upload(receiver.url.replace("/hook", "/road%20trip.jpg?size=big"), folder="fetched",
                                use_filename=True, unique_filename=False)  # fmt: skip
    assert named["public_id"] == "fetched/road_trip" and named["original_filename"] == "road trip"
    with pytest.raises(sdk.exceptions.BadRequest, match="file: Fetching from localhost.invalid is not"):
        sdk.uploader.upload("http://localhost.invalid/x.jpg", public_id="fetched/no")


def test_curl_form_with_basic_auth_and_data_uri(server: ServerProcess) -> None:
    import base64

    data_uri = "data:image/jpeg;base64," + base64.b64encode(ROAD.read_bytes()).decode()
    answer = httpx.post(f"{server.url}/v1_1/{CLOUD}/image/upload", auth=(KEY, "upload-test-secret"),
                        data={"file": data_uri, "public_id": "curl/road"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200 and answer.json()["public_id"] == "curl/road"
    missing = httpx.post(f"{server.url}/v1_1/{CLOUD}/image/upload", data={"public_id": "x"}, timeout=30)
    assert missing.status_code == 401 and missing.json() == {"error": {"message": "Must supply api_key"}}
    other = httpx.get(f"{server.url}/v1_1/other-cloud/resources/image", auth=(KEY, "upload-test-secret"))
    assert other.status_code == 404 and "Unknown cloud name" in other.json()["error"]["message"]


def test_failed_removal_keeps_the_original_and_notifies(sdk: Any, receiver: Receiver) -> None:
    # Whole in structure (so the upload takes it) but its pixel data cannot be decoded.
    damaged = _png_header(64, 64, idat=bytes(range(256)) * 2)
    up = sdk.uploader.upload(("damaged.png", damaged), public_id="fail/damaged",
                             background_removal="cloudinary_ai", notification_url=receiver.url)  # fmt: skip
    assert status_of(up) == "pending"
    note = notified(receiver, "fail/damaged", "info")
    assert note["info_status"] == "failed" and "decod" in note["info_data"]["error"]["message"]
    resource = dict(sdk.api.resource("fail/damaged"))
    assert status_of(resource) == "failed"
    assert "decod" in resource["info"]["background_removal"]["cloudinary_ai"]["reason"]
    assert resource["etag"] == hashlib.md5(damaged).hexdigest() and resource["version"] == up["version"]



def test_an_eager_naming_a_missing_overlay_is_listed_failed_not_an_error_after_storing(
    sdk: Any, receiver: Receiver
) -> None:
    """The overlay is found missing once the original is stored: the answer must say the upload (and
    an explicit's tags) happened, with that eager item failed, rather than a 404 that has the client
    believe nothing was stored."""
    eager = "c_scale,w_30|l_no_such_overlay"
    up = sdk.uploader.upload(str(ROAD), public_id="docs2/overlaid", eager=eager)
    assert up["eager"][0]["width"] == 30
    assert up["eager"][1]["status"] == "failed" and "no_such_overlay" in up["eager"][1]["reason"]
    assert up["eager"][1]["transformation"] == "l_no_such_overlay"
    derived = dict(sdk.api.resource("docs2/overlaid"))["derived"]
    assert [d["transformation"] for d in derived] == ["c_scale,w_30"]

    later = sdk.uploader.explicit("docs2/overlaid", type="upload", tags=["x"], eager=eager, eager_async=True,
                                  eager_notification_url=receiver.url)  # fmt: skip
    assert later["tags"] == ["x"]
    assert [e["status"] for e in later["eager"]] == ["processing", "failed"]
    note = notified(receiver, "docs2/overlaid", "eager")
    assert [e["transformation"] for e in note["eager"]] == ["c_scale,w_30"]
    assert sdk.uploader.destroy("docs2/overlaid") == {"result": "ok"}


def test_the_eager_notification_carries_its_timestamp(sdk: Any, receiver: Receiver) -> None:
    """As Cloudinary's eager notifications do (``timestamp``, ``notification_context.triggered_at``),
    beside the batch, the asset and what was made."""
    up = sdk.uploader.upload(str(ROAD), public_id="docs2/stamped", eager="c_scale,w_20", eager_async=True,
                             eager_notification_url=receiver.url)  # fmt: skip
    note = notified(receiver, "docs2/stamped", "eager")
    assert note["timestamp"].startswith(up["created_at"][:4]) and note["timestamp"].endswith("Z")
    assert note["notification_context"]["triggered_at"].endswith("Z")
    assert (note["batch_id"], note["asset_id"], note["version"]) == (
        up["eager"][0]["batch_id"], up["asset_id"], up["version"]
    )
    assert note["eager"][0]["transformation"] == "c_scale,w_20" and note["eager"][0]["width"] == 20
    assert sdk.uploader.destroy("docs2/stamped") == {"result": "ok"}
