"""The Upload and Admin API with the originals in object storage (issues 11 and 17): the same SDK calls
as against a folder, and the asset records, backups and the cut-out end up in the bucket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips

from tests.app.server_process import ServerProcess
from tests.conftest import require_model
from tests.scale.servers import RedisServer, SeaweedS3
from tests.upload.conftest import CLOUD, ENV, KEY, SECRET
from tests.upload.test_upload_sdk import ROAD, ROUTER, status_of

pytestmark = pytest.mark.integration


@pytest.fixture
def server(seaweed: SeaweedS3, bucket: str, tmp_path: Path) -> Iterator[ServerProcess]:
    require_model()
    originals = f"s3://{bucket}/originals"
    process = ServerProcess(originals, tmp_path / "cache", env={**ENV, **seaweed.env()})  # type: ignore[arg-type]
    process.wait_ready()
    yield process
    process.stop()


@pytest.fixture
def sdk(server: ServerProcess) -> Iterator[Any]:
    import cloudinary
    import cloudinary.api
    import cloudinary.exceptions
    import cloudinary.uploader

    cloudinary.config(cloud_name=CLOUD, api_key=KEY, api_secret=SECRET, upload_prefix=server.url,
                      secure=False)
    yield cloudinary
    cloudinary.reset_config()


def keys(seaweed: SeaweedS3, bucket: str) -> set[str]:
    listed = seaweed.client().list_objects_v2(Bucket=bucket, Prefix="originals/")
    return {item["Key"] for item in listed.get("Contents", [])}


def test_upload_background_removal_destroy_and_restore_in_a_bucket(sdk: Any, seaweed: SeaweedS3,
                                                                   bucket: str) -> None:
    up = sdk.uploader.upload(str(ROUTER), public_id="shop/router", background_removal="cloudinary_ai")
    assert status_of(up) == "pending" and up["format"] == "jpg"
    deadline = time.monotonic() + 180
    while status_of(resource := dict(sdk.api.resource("shop/router"))) == "pending":
        assert time.monotonic() < deadline, resource
        time.sleep(0.3)
    assert status_of(resource) == "complete" and resource["format"] == "png", resource
    assert resource["version"] > up["version"] and resource["backup"] is True
    served = httpx.get(resource["url"], timeout=30)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert pyvips.Image.new_from_buffer(served.content, "").bands == 4
    stored = keys(seaweed, bucket)
    assert "originals/shop/router.png" in stored and "originals/shop/router.jpg" not in stored
    assert "originals/.cutout/assets/shop/router.record" in stored  # the record lives beside the original

    sdk.uploader.upload(str(ROAD), public_id="docs/road", backup=True)
    assert [r["public_id"] for r in sdk.api.resources(prefix="docs/")["resources"]] == ["docs/road"]
    assert sdk.uploader.destroy("docs/road") == {"result": "ok"}
    assert "originals/docs/road.jpg" not in keys(seaweed, bucket)
    with pytest.raises(sdk.exceptions.NotFound):
        sdk.api.resource("docs/road")
    restored = sdk.api.restore(["docs/road"])
    assert restored["docs/road"]["format"] == "jpg"
    back = httpx.get(dict(sdk.api.resource("docs/road"))["url"], timeout=30)
    assert back.headers["content-type"] == "image/jpeg"


def test_parts_rename_and_tags_in_a_bucket(sdk: Any, seaweed: SeaweedS3, bucket: str) -> None:
    """``upload_large`` in parts, ``rename`` and the tag index, with everything in the bucket."""
    up = sdk.uploader.upload_large(str(ROAD), public_id="big/road", chunk_size=30_000, resource_type="image",
                                   tags=["shelf"], backup=True)  # fmt: skip
    assert up["bytes"] == ROAD.stat().st_size
    assert not any(k.startswith("originals/.cutout/parts/") for k in keys(seaweed, bucket))
    moved = sdk.uploader.rename("big/road", "big/street")
    assert moved["etag"] == up["etag"] and moved["version"] == up["version"]
    stored = keys(seaweed, bucket)
    assert "originals/big/street.jpg" in stored and "originals/big/road.jpg" not in stored
    assert httpx.get(moved["url"], timeout=30).headers["content-type"] == "image/jpeg"
    assert [r["public_id"] for r in sdk.api.resources_by_tag("shelf")["resources"]] == ["big/street"]
    sdk.uploader.destroy("big/street")
    assert sdk.api.restore(["big/street"])["big/street"]["etag"] == up["etag"]  # the backup moved too
    sdk.uploader.remove_all_tags(["big/street"])
    assert sdk.api.resources_by_tag("shelf") == {"resources": []}


def test_an_original_put_straight_into_the_bucket_has_one_version(sdk: Any, seaweed: SeaweedS3,
                                                                  bucket: str) -> None:
    """Its version and dates come from the object's LastModified, not from its local copy (whose time
    moves with every use and differs per replica): each answer named another version before, so
    another immutable URL."""
    s3 = seaweed.client()
    s3.put_object(Bucket=bucket, Key="originals/placed/road.jpg", Body=ROAD.read_bytes())
    modified = s3.head_object(Bucket=bucket, Key="originals/placed/road.jpg")["LastModified"]
    first = dict(sdk.api.resource("placed/road"))
    time.sleep(1.2)
    httpx.get(first["url"], timeout=30)  # a delivery uses the local copy
    listed = sdk.api.resources(prefix="placed/")["resources"]
    again = dict(sdk.api.resource("placed/road"))
    assert first["version"] == again["version"] == listed[0]["version"] == int(modified.timestamp())
    assert first["created_at"] == again["created_at"]


def test_upload_work_survives_the_storage_and_redis_going_away_while_it_sweeps(
        seaweed: SeaweedS3, bucket: str, redis_server: RedisServer, redis_url: str, tmp_path: Path) -> None:
    """The sweep of unfinished work failed once (a listing that timed out, a claim with Redis away) and
    ended the task group every upload's work runs in: each later upload with work answered 500, and work a
    dead replica left was never finished by this one."""
    from cutout.upload.auth import sign

    env = {**ENV, **seaweed.env(), "CUTOUT_LEASE_SECONDS": "1", "CUTOUT_S3_TIMEOUT": "0.5",
           "CUTOUT_BACKGROUND_REMOVAL": "queue", "CUTOUT_STATE": redis_url}  # no worker: the work stays
    server = ServerProcess(f"s3://{bucket}/originals", tmp_path / "cache", env=env)  # type: ignore[arg-type]

    def upload(public_id: str) -> httpx.Response:
        params = {"public_id": public_id, "timestamp": str(int(time.time())),
                  "background_removal": "cloudinary_ai"}
        form = {**params, "signature": sign(params, SECRET), "api_key": KEY}
        return httpx.post(f"{server.url}/v1_1/{CLOUD}/image/upload", data=form, timeout=30,
                          files={"file": ("road.jpg", ROAD.read_bytes(), "image/jpeg")})

    try:
        server.wait_ready()
        assert upload("away/first").status_code == 200  # pending for ever: the sweep drives it each lease
        redis_server.stop()
        time.sleep(2.5)  # the sweep's drive meets Redis away
        redis_server.start()
        seaweed.pause()
        time.sleep(2.5)  # the sweep's listing times out
        seaweed.resume()
        deadline = time.monotonic() + 20
        while (answer := upload("away/second")).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.5)  # the storage marked away for a moment after the timeout
        assert answer.status_code == 200, answer.text
        assert answer.json()["info"]["background_removal"]["cloudinary_ai"]["status"] == "pending"
        assert "Traceback" not in server.log.read_text()
    finally:
        seaweed.resume()
        server.stop()
