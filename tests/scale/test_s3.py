"""S3Originals and the shared blob tier against a real S3 (SeaweedFS on loopback)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from cache import DerivativeCache, DiskBlobs, Entry
from cache.s3 import S3Blobs, S3Originals, TieredBlobs, client
from cutout.service import Service
from cutout.settings import Settings
from cutout.versions import Versions, asset_record_name
from grammar.errors import BadRequest, NotFound, Overloaded
from tests.app.helpers import SAMPLES
from tests.scale.servers import SeaweedS3

pytestmark = pytest.mark.integration

ROAD = (SAMPLES / "docs" / "road.jpg").read_bytes()


class Counting:
    """The real boto3 client, counting the requests made through it (what a lookup costs)."""

    def __init__(self, s3: Any) -> None:
        self.s3, self.calls = s3, []  # type: ignore[var-annotated]

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.s3, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return call


@pytest.fixture
def s3(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> Counting:
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    return Counting(client(seaweed.endpoint))


def test_one_listing_per_lookup_etag_version_and_conditional_fetch(s3: Counting, bucket: str,
                                                                     tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="shop/docs/road.png", Body=b"not the jpeg")
    s3.put_object(Bucket=bucket, Key="shop/docs/road.jpg", Body=ROAD)
    s3.put_object(Bucket=bucket, Key="shop/docs/road.jpg.bak/x.jpg", Body=b"")
    s3.put_object(Bucket=bucket, Key="shop/docs/sketch.psd", Body=b"8BPS")
    originals = S3Originals(f"s3://{bucket}/shop", tmp_path / "hot", s3=s3)
    s3.calls.clear()
    found = originals.locate("docs/road")
    # Every extension in one request; an id in two formats reads its asset record too (none here: the
    # extension order), once: ``test_an_id_in_two_formats_is_the_one_its_asset_record_names``.
    assert s3.calls == ["list_objects_v2", "get_object"]
    assert found.stamp[0] == "shop/docs/road.jpg"  # type: ignore[index]
    s3.calls.clear()
    version = originals.version(found)
    assert version.startswith("s3:") and s3.calls == []  # the ETag: no read
    assert not found.path.exists()  # nothing fetched for a lookup
    assert originals.local(found).read_bytes() == ROAD
    assert originals.local(found) == found.path and s3.calls.count("get_object") == 1  # kept locally
    assert originals.current([found])
    with pytest.raises(NotFound, match="docs/none"):
        originals.locate("docs/none")
    with pytest.raises(NotFound):
        originals.locate("../etc/passwd")
    with pytest.raises(BadRequest, match=r"\.psd"):
        originals.locate("docs/sketch")
    assert sorted(originals.list("docs/")) == ["docs/road", "docs/road.jpg.bak/x"]


def test_an_original_replaced_after_lookup_is_never_read_as_the_old_version(s3: Counting, bucket: str,
                                                                           tmp_path: Path) -> None:
    originals = S3Originals(f"s3://{bucket}", tmp_path / "hot", s3=s3)
    s3.put_object(Bucket=bucket, Key="a.jpg", Body=ROAD)
    found = originals.locate("a")
    s3.put_object(Bucket=bucket, Key="a.jpg", Body=ROAD + b"\0")  # replaced mid-render
    with pytest.raises(Overloaded) as raised:  # If-Match: 412, never the new bytes under the old key
        originals.local(found)
    assert raised.value.status == 503 and not found.path.exists()
    assert not originals.current([found])
    again = originals.locate("a")
    assert originals.version(again) != originals.version(found)
    assert originals.local(again).read_bytes() == ROAD + b"\0"


def test_a_replica_that_located_the_old_bytes_does_not_serve_them_as_the_new_version(
        s3: Counting, bucket: str, tmp_path: Path) -> None:
    """Replica B located an id a moment before replica A uploaded over it: the new record's version is
    not B's located bytes' version, so B does not call the URL naming that version immutable."""
    s3.put_object(Bucket=bucket, Key="docs/road.jpg", Body=ROAD)
    b = S3Originals(f"s3://{bucket}", tmp_path / "hot-b", s3=s3)
    old = b.locate("docs/road")
    a = S3Originals(f"s3://{bucket}", tmp_path / "hot-a", s3=s3)
    new = a.write("docs/road", "jpg", ROAD + b"\0")
    a.put_record(asset_record_name("docs/road"),
                 json.dumps({"version": 2_000_000_000, "fingerprint": a.version(new)}).encode())
    assert b.locate("docs/road") == old  # remembered for RECHECK_SECONDS: the old bytes still
    assert not Versions(b).is_current(old, 2_000_000_000)
    located = S3Originals(f"s3://{bucket}", tmp_path / "hot-c", s3=s3).locate("docs/road")
    assert Versions(b).is_current(located, 2_000_000_000)  # the bytes the record describes
    # Delivery on B: the URL naming the new version looks again and serves the new bytes as immutable,
    # within the moment B's lookup is remembered; the old version's URL is served, not as immutable.
    assert b.locate("docs/road") == old
    settings = Settings(originals=tmp_path, cache_dir=tmp_path / "cache")
    cache = DerivativeCache(tmp_path / "cache")
    service = Service.over(settings, originals=b, blobs=cache, coordinator=cache, segmenter=None)
    try:
        prepared = service.resolver.resolve("/image/upload/v2000000000/docs/road.jpg", None)
        assert prepared.source != old and prepared.source_key == a.version(new) and prepared.versioned
        assert b.locate("docs/road") == prepared.source
        again = service.resolver.resolve("/image/upload/v1999999999/docs/road.jpg", None)
        assert again.source == prepared.source and not again.versioned
    finally:
        service.close()
        cache.close()


def test_current_never_sends_a_request_on_the_event_loop(s3: Counting, bucket: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    originals = S3Originals(f"s3://{bucket}", tmp_path / "hot", s3=s3)
    s3.put_object(Bucket=bucket, Key="a.jpg", Body=ROAD)
    found = originals.locate("a")
    monkeypatch.setattr("cache.s3.RECHECK_SECONDS", 0.0)
    s3.calls.clear()

    async def on_loop() -> bool:
        return originals.current([found])

    assert not asyncio.run(on_loop()) and s3.calls == []  # stale: the thread path locates again
    assert originals.current([found]) and s3.calls == ["head_object"]  # in a thread: one HEAD


def test_one_head_answers_current_and_modified(s3: Counting, bucket: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that checks an original is current and reads its time (a versioned URL of an original
    without a record) costs one HEAD, in either order; a changed object is not answered from it."""
    monkeypatch.setattr("cache.s3.RECHECK_SECONDS", 0.2)
    originals = S3Originals(f"s3://{bucket}", tmp_path / "hot", s3=s3)
    # Written here: the PUT's answer gives the ETag but no LastModified, so ``modified`` must ask.
    road = originals.write("a", "jpg", ROAD)
    other = originals.write("b", "jpg", ROAD + b"\0")
    time.sleep(0.3)  # past the recheck: ``current`` asks the storage again
    s3.calls.clear()
    assert originals.current([road])
    when = originals.modified(road)
    assert s3.calls == ["head_object"]
    s3.calls.clear()
    assert originals.modified(other) > 0
    assert originals.current([other])
    assert s3.calls == ["head_object"]

    time.sleep(1.1)  # LastModified is in whole seconds: the replacement's is later
    s3.put_object(Bucket=bucket, Key="a.jpg", Body=ROAD + b"\1")  # replaced by another replica
    time.sleep(0.3)
    s3.calls.clear()
    assert not originals.current([road])  # its one HEAD saw the new ETag
    again = originals.locate("a")
    assert originals.version(again) != originals.version(road)
    assert originals.current([again]) and originals.modified(again) > when
    assert s3.calls == ["head_object", "list_objects_v2"]


def test_the_hot_originals_folder_is_bounded(s3: Counting, bucket: str, tmp_path: Path) -> None:
    originals = S3Originals(f"s3://{bucket}", tmp_path / "hot", s3=s3, cache_size=len(ROAD) * 2 + 10)
    for name in "abcd":
        s3.put_object(Bucket=bucket, Key=f"{name}.jpg", Body=ROAD + name.encode())
        originals.read(name)
    kept = sum(p.stat().st_size for p in (tmp_path / "hot").iterdir())
    assert kept <= len(ROAD) * 2 + 10 and (originals.locate("d").path.exists())


def test_the_shared_tier_serves_what_another_replica_stored(s3: Counting, bucket: str,
                                                            tmp_path: Path) -> None:
    one = TieredBlobs(DiskBlobs(tmp_path / "one"), S3Blobs(f"s3://{bucket}/derived", s3=s3))
    hits: list[int] = []
    other = TieredBlobs(DiskBlobs(tmp_path / "two"), S3Blobs(f"s3://{bucket}/derived", s3=s3),
                        on_shared_hit=lambda: hits.append(1))
    entry = Entry.of(b"rendered", format="png")
    assert other.get("d:k") is None
    one.put("d:k", entry)
    assert other.get("d:k") == entry and hits == [1]
    other.settle()
    assert other.get("d:k") == entry and hits == [1]  # now from its own first tier
    s3.put_object(Bucket=bucket, Key="derived/d:bad", Body=b"CUT1garbage")
    assert other.get("d:bad") is None  # unreadable: a miss, never a 500


def test_writes_deletes_and_records_as_the_folder_keeps_them(s3: Counting, bucket: str,
                                                              tmp_path: Path) -> None:
    """The calls the Upload API makes on the originals seam (issue 11), on object storage: a write that
    changes format removes the old one, delete removes every format, records live beside the originals
    and are never listed as originals."""
    originals = S3Originals(f"s3://{bucket}/shop", tmp_path / "hot", s3=s3)
    originals.write("items/bag", "jpg", ROAD)
    assert originals.locate("items/bag").stamp[0] == "shop/items/bag.jpg"  # type: ignore[index]
    originals.write("items/bag", "png", b"\x89PNG new")
    assert originals.locate("items/bag").stamp[0] == "shop/items/bag.png"  # type: ignore[index]
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="shop/items/")["Contents"]}
    assert keys == {"shop/items/bag.png"}
    originals.put_record("assets/items/bag", b'{"version": 1}')
    originals.put_record("assets/items/bag", b'{"version": 2}')
    originals.put_record("jobs/items/bag", b"{}")
    assert originals.get_record("assets/items/bag") == b'{"version": 2}'
    assert originals.get_record("assets/items/none") is None
    assert sorted(originals.list_records("assets")) == ["assets/items/bag"]
    assert sorted(originals.list("")) == ["items/bag"]  # records are not originals
    # Nor the images the server keeps for itself here (cache.transient), as a folder of originals keeps
    # them apart: the HTTP API's uploads and fetched images are no assets of the Admin API or console.
    digest = "0" * 64
    originals.write(f"api-uploads/{digest}", "jpg", ROAD)
    originals.write(f"fetched/{digest}", "png", b"\x89PNG")
    kept = originals.locate(f"api-uploads/{digest}").stamp[0]  # type: ignore[index]
    assert kept == f"shop/api-uploads/{digest}.jpg"
    assert sorted(originals.list("")) == ["items/bag"] and list(originals.list("api-uploads/")) == []
    originals.delete_record("jobs/items/bag")
    originals.delete_record("jobs/items/bag")  # idempotent
    assert list(originals.list_records("jobs")) == []
    with pytest.raises(ValueError):
        originals.put_record("../escape", b"")
    assert originals.delete("items/bag") and not originals.delete("items/bag")
    with pytest.raises(NotFound):
        originals.locate("items/bag")


def test_a_write_with_the_uploads_md5_is_checked_by_the_storage(s3: Counting, bucket: str,
                                                                tmp_path: Path) -> None:
    """The version the Upload API computed (``fingerprint``: the MD5 of the bytes) goes along as
    Content-MD5: bytes that do not match it are refused by the storage (a 503 to the client, nothing
    stored), bytes that do are stored with that ETag."""
    import hashlib

    from cache.s3 import StorageUnavailable

    originals = S3Originals(f"s3://{bucket}/shop", tmp_path / "hot", s3=s3)
    version = originals.fingerprint(ROAD)
    assert version == "s3:" + hashlib.md5(ROAD).hexdigest()
    with pytest.raises(StorageUnavailable):
        originals.write("items/shoe", "jpg", ROAD[:-1] + b"\x00", version=version)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="shop/items/shoe")
    found = originals.write("items/shoe", "jpg", ROAD, version=version)
    assert originals.version(found) == version
    assert s3.get_object(Bucket=bucket, Key="shop/items/shoe.jpg")["Body"].read() == ROAD


def test_a_chunked_uploads_parts_on_object_storage(s3: Counting, bucket: str, tmp_path: Path) -> None:
    """``upload_large``'s parts are records in the originals store: a replica other than the one that
    kept the first parts joins them (issue 11)."""
    from cutout.upload.parts import Parts, Range

    one = Parts(S3Originals(f"s3://{bucket}/shop", tmp_path / "hot1", s3=s3), 10_000_000)
    other = Parts(S3Originals(f"s3://{bucket}/shop", tmp_path / "hot2", s3=s3), 10_000_000)
    total = len(ROAD)
    folder = one.check("upload-on-s3", Range(0, 29_999, total), ROAD[:30_000])
    one.put(folder, Range(30_000, 59_999, total), ROAD[30_000:60_000])
    one.put(folder, Range(0, 29_999, total), ROAD[:30_000])
    assert other.join(folder, Range(60_000, total - 1, total), ROAD[60_000:]) == ROAD
    other.drop(folder)
    assert list(one.originals.list_records("parts")) == []
    assert sorted(one.originals.list("")) == []  # parts were never originals


def test_a_bucket_the_storage_does_not_have_stops_the_start_with_the_variables_name(
        seaweed: SeaweedS3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Else a typo shows only as a warning per request, and cut-outs stay 423 for ever."""
    from cutout.settings import SettingsError, check_buckets, load_settings

    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    env = {**seaweed.env(), "CUTOUT_ORIGINALS": f"s3://{bucket}/originals"}
    check_buckets(load_settings({**env, "CUTOUT_SHARED_CACHE": f"s3://{bucket}/derived"}))  # both there
    with pytest.raises(SettingsError, match="^CUTOUT_SHARED_CACHE: the storage has no bucket 'nosuchbucket'"):
        check_buckets(load_settings({**env, "CUTOUT_SHARED_CACHE": "s3://nosuchbucket/derived"}))
    with pytest.raises(SettingsError, match="^CUTOUT_ORIGINALS: the storage has no bucket 'nosuch'"):
        check_buckets(load_settings({**env, "CUTOUT_ORIGINALS": "s3://nosuch/originals"}))
    # A storage that does not answer (not started yet) is not a reason to refuse the start.
    away = {"CUTOUT_S3_ENDPOINT": "http://127.0.0.1:1", "CUTOUT_S3_TIMEOUT": "0.5"}
    check_buckets(load_settings({**env, **away}))


def test_credentials_the_storage_refuses_stop_the_start_with_the_variables_name(
        seaweed: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Else the replica starts, says ready (degraded), and answers 503 to every render for ever."""
    from cutout.settings import SettingsError, check_buckets, load_settings

    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    env = {**seaweed.env(), "CUTOUT_ORIGINALS": f"s3://{bucket}/originals",
           "CUTOUT_SHARED_CACHE": f"s3://{bucket}/derived"}
    check_buckets(load_settings(env))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(SettingsError, match="^CUTOUT_ORIGINALS: the storage refuses the credentials "
                                            r"\(SignatureDoesNotMatch\): check AWS_ACCESS_KEY_ID"):
        check_buckets(load_settings(env))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    with pytest.raises(SettingsError, match=r"^CUTOUT_SHARED_CACHE: .*\(InvalidAccessKeyId\)"):
        check_buckets(load_settings({**env, "CUTOUT_ORIGINALS": "/"}))


def test_an_id_in_two_formats_is_the_one_its_asset_record_names(s3: Counting, bucket: str,
                                                                 tmp_path: Path) -> None:
    """As in the folder: a JPEG put beside an uploaded PNG does not hide it; the record is read once per
    set of objects, not on every listing."""
    originals = S3Originals(f"s3://{bucket}/shop", tmp_path / "hot", s3=s3)
    originals.write("docs/road", "png", b"\x89PNG uploaded")
    originals.put_record("assets/docs/road", json.dumps({"format": "png"}).encode())
    s3.put_object(Bucket=bucket, Key="shop/docs/road.jpg", Body=ROAD)  # by hand
    originals.forget("docs/road")
    s3.calls.clear()
    assert originals.locate("docs/road").stamp[0] == "shop/docs/road.png"  # type: ignore[index]
    assert s3.calls == ["list_objects_v2", "get_object"]
    originals.forget("docs/road")  # forgotten: the record is read again
    s3.calls.clear()
    assert originals.locate("docs/road").stamp[0] == "shop/docs/road.png"  # type: ignore[index]
    assert s3.calls == ["list_objects_v2", "get_object"]
    originals._located.clear()  # listed again (as after RECHECK_SECONDS): the same objects, no record read
    s3.calls.clear()
    assert originals.locate("docs/road").stamp[0] == "shop/docs/road.png"  # type: ignore[index]
    assert s3.calls == ["list_objects_v2"]
    originals.put_record("assets/docs/road", json.dumps({"format": "png", "deleted": True}).encode())
    originals.forget("docs/road")
    assert originals.locate("docs/road").stamp[0] == "shop/docs/road.jpg"  # type: ignore[index]
    originals.write("docs/road", "png", b"\x89PNG again")  # an upload still removes the other formats
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="shop/docs/road.")
    assert [item["Key"] for item in listed["Contents"]] == ["shop/docs/road.png"]
