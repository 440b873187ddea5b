"""What a restarted server does with an asset whose last change was cut short (in-process, no model): the
record follows the file, a committed background removal is finished, nothing stays marked. And the
Upload API's switch."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from cache import DerivativeCache
from cutout.app import create_app
from cutout.service import Service
from cutout.settings import Settings, SettingsError, load_settings
from cutout.upload.assets import Base
from cutout.upload.uploads import Uploads
from cutout.webhooks import Delivery, webhook_policy
from tests.app.helpers import SAMPLES
from tests.upload.conftest import Receiver

ROAD = (SAMPLES / "docs" / "road.jpg").read_bytes()
LOGO = (SAMPLES / "docs" / "rmv_bgd" / "router_orig.jpg").read_bytes()
BASE = Base("http://127.0.0.1:1", "demo")
DETAILS: dict[str, Any] = {"tags": [], "context": {}, "backup": True, "original_filename": None,
                           "display_name": None}  # fmt: skip


@pytest.fixture
def uploads(tmp_path: Path) -> Iterator[Uploads]:
    (tmp_path / "originals").mkdir()
    settings = Settings(originals=tmp_path / "originals", cache_dir=tmp_path / "cache", upload=True,
                        api_key="k", api_secret="s", background_removal=False)  # fmt: skip
    cache = DerivativeCache(tmp_path / "cache", size_limit=1 << 30)
    service = Service.open(settings, cache, segmenter=None)
    yield Uploads(settings, service)
    service.close()
    cache.close()


def restart(uploads: Uploads, public_id: str) -> dict[str, Any] | None:
    """What a restarted server's driver does for a marked asset; the record afterwards."""
    assert public_id in uploads.assets.unfinished()
    assert uploads.jobs.next_step(public_id, f"upload-job:{public_id}") is None
    assert public_id not in uploads.assets.unfinished()
    return uploads.assets.record(public_id)


def store(uploads: Uploads, public_id: str, data: bytes) -> dict[str, Any]:
    record, _ = uploads._store(public_id, data, DETAILS, overwrite=True, fine=None,
                               notification_url=None, base=BASE)  # fmt: skip
    return record


def test_an_overwrite_cut_short_is_reconciled(uploads: Uploads) -> None:
    first = store(uploads, "a/x", ROAD)
    uploads.assets.mark_unfinished("a/x")  # as _store does, then the crash after the original's write
    uploads.service.originals.write("a/x", "jpg", LOGO)
    record = restart(uploads, "a/x")
    assert record is not None and record["fingerprint"] == hashlib.sha256(LOGO).hexdigest()
    assert record["version"] > first["version"] and record["etag"] == hashlib.md5(LOGO).hexdigest()


def test_a_destroy_and_a_restore_cut_short_are_reconciled(uploads: Uploads) -> None:
    store(uploads, "a/y", ROAD)
    uploads.assets.mark_unfinished("a/y")
    uploads.service.originals.delete("a/y")  # crash before the record says deleted
    record = restart(uploads, "a/y")
    assert record is not None and record["deleted"] is True and uploads.assets.current("a/y") is None
    uploads.assets.mark_unfinished("a/y")
    uploads.service.originals.write("a/y", "jpg", ROAD)  # a restore, cut short the same way
    record = restart(uploads, "a/y")
    assert record is not None and record["deleted"] is False and uploads.assets.current("a/y") is not None


def test_a_committed_removal_is_finished(uploads: Uploads, tmp_path: Path) -> None:
    record = store(uploads, "a/z", ROAD)
    cut = (SAMPLES / "docs" / "rmv_bgd" / "dog_couch_orig.jpg").read_bytes()  # stands in for the PNG
    job = {"id": "j1", "fine_edges": False, "source": record["fingerprint"], "phase": "committed",
           "notification_url": None, "base": BASE.to_json(), "confidence": 0.9}  # fmt: skip
    record.update({"fingerprint": hashlib.sha256(cut).hexdigest(), "version_id": "v2", "format": "png",
                   "job": job})  # fmt: skip
    uploads.assets.originals.put_record("backups/a/z/v2", cut)  # backed up before the record said so
    uploads.assets.save(record)
    uploads.assets.mark_unfinished("a/z")  # the crash: the record is committed, the original is not
    done = restart(uploads, "a/z")
    assert done is not None and done["job"] is None
    stored = next((tmp_path / "originals" / "a").glob("z.*"))
    assert stored.name == "z.png" and stored.read_bytes() == cut


def test_off_answers_404_in_cloudinarys_shape(tmp_path: Path) -> None:
    originals = tmp_path / "originals"
    shutil.copytree(SAMPLES, originals)
    settings = Settings(originals=originals, cache_dir=tmp_path / "cache", background_removal=False)
    with TestClient(create_app(settings, load_model=False)) as client:
        answer = client.post("/v1_1/demo/image/upload", data={"public_id": "x"})
        assert answer.status_code == 404
        assert "CUTOUT_UPLOAD=1" in json.loads(answer.content)["error"]["message"]
        listed = client.get("/image/list/gallery.json")
        assert listed.status_code == 404 and "CUTOUT_RESOURCE_LIST=1" in listed.headers["x-cld-error"]
    with pytest.raises(SettingsError, match="CUTOUT_UPLOAD=1 needs CUTOUT_API_KEY"):
        load_settings({"CUTOUT_UPLOAD": "1", "CUTOUT_API_SECRET": "s"})
    with pytest.raises(SettingsError, match="CUTOUT_RESOURCE_LIST=1 needs CUTOUT_UPLOAD=1"):
        load_settings({"CUTOUT_RESOURCE_LIST": "1"})


def test_an_upload_replaces_a_hand_placed_original_in_another_format(uploads: Uploads) -> None:
    root = uploads.settings.originals
    assert isinstance(root, Path)
    (root / "hand").mkdir()
    (root / "hand" / "made.png").write_bytes(LOGO)  # no record: found by the lookup under the lock
    record, outcome = uploads._store("hand/made", ROAD, DETAILS, overwrite=True, fine=None,
                                     notification_url=None, base=BASE)  # fmt: skip
    assert outcome == "overwritten" and record["format"] == "jpg"
    assert sorted(p.name for p in (root / "hand").iterdir()) == ["made.jpg"]
    new = store(uploads, "hand/fresh", ROAD)  # a new id: written alone
    assert new["format"] == "jpg"
    assert sorted(p.name for p in (root / "hand").iterdir()) == ["fresh.jpg", "made.jpg"]


def test_the_written_original_is_not_hashed_again(uploads: Uploads, monkeypatch: pytest.MonkeyPatch) -> None:
    import cache.folder

    monkeypatch.setattr(cache.folder, "sha256_of", lambda path: pytest.fail(f"hashed {path} again"))
    record = store(uploads, "known/road", ROAD)
    originals = uploads.service.originals
    assert originals.version(originals.locate("known/road")) == record["fingerprint"]
    assert record["fingerprint"] == hashlib.sha256(ROAD).hexdigest()
    monkeypatch.undo()
    (uploads.settings.originals / "known" / "road.jpg").write_bytes(LOGO)  # type: ignore[operator]
    assert originals.version(originals.locate("known/road")) == hashlib.sha256(LOGO).hexdigest()


def test_an_outage_under_an_assets_driver_is_one_warning_line(uploads: Uploads,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Redis or S3 away while an upload's work is pending: expected (the sweep retries), so a warning
    without the task group's ExceptionGroup traceback; anything else still logs its traceback."""
    from cache.s3 import StorageUnavailable

    def away(public_id: str, key: str) -> None:
        raise StorageUnavailable() from TimeoutError("read timed out")

    monkeypatch.setattr(uploads.jobs, "next_step", away)
    with caplog.at_level("WARNING", logger="cutout.upload"):
        anyio.run(uploads.jobs.drive, "docs/road")
    [record] = [r for r in caplog.records if "docs/road" in r.getMessage()]
    assert record.levelname == "WARNING" and record.exc_info is None
    assert "waits: Storage is unavailable; retry later (read timed out)" in record.getMessage()

    def bug(public_id: str, key: str) -> None:
        raise KeyError("job")

    caplog.clear()
    monkeypatch.setattr(uploads.jobs, "next_step", bug)
    with caplog.at_level("WARNING", logger="cutout.upload"):
        anyio.run(uploads.jobs.drive, "docs/road")
    [record] = [r for r in caplog.records if "docs/road" in r.getMessage()]
    assert record.levelname == "ERROR" and record.exc_info is not None


def test_a_removal_on_upload_notifies_of_the_upload_first(uploads: Uploads, receiver: Receiver,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Cloudinary's two notifications of an upload with background_removal: ``upload`` when the upload is
    done (before the removal runs), then ``info`` when the removal ends (here it fails: no model)."""
    jobs = uploads.jobs
    jobs.hook_policy = webhook_policy({"CUTOUT_FETCH_ALLOW_PRIVATE": "1"})  # the receiver is on loopback
    public_id = "hooks/removed"

    def mine() -> list[dict[str, Any]]:
        with receiver.condition:
            bodies = [json.loads(p.body) for p in receiver.posts]
        return [b for b in bodies if b.get("public_id") == public_id]

    seen_by_the_run: list[list[str]] = []
    run = jobs._run

    async def noting(public_id: str, job: dict[str, Any]) -> None:
        seen_by_the_run.append([b["notification_type"] for b in mine()])
        await run(public_id, job)

    monkeypatch.setattr(jobs, "_run", noting)
    record, _ = uploads._store(public_id, ROAD, DETAILS, overwrite=True, fine=False,
                               notification_url=receiver.url, base=BASE)  # fmt: skip
    anyio.run(jobs.drive, public_id)
    assert seen_by_the_run == [["upload"]]  # told of the upload before its background removal ran
    upload, info = mine()
    assert upload["notification_type"] == "upload" and info["notification_type"] == "info"
    assert upload["version"] == record["version"] and upload["format"] == "jpg"
    assert upload["info"] == {"background_removal": {"cloudinary_ai": {"status": "pending"}}}
    assert upload["signature_key"] == "k" and upload["timestamp"].endswith("Z")
    assert info["info_status"] == "failed" and info["signature_key"] == "k"
    with receiver.condition:
        posts = [p for p in receiver.posts if json.loads(p.body).get("public_id") == public_id]
    import cloudinary
    from cloudinary.utils import verify_notification_signature

    cloudinary.config(api_secret="s")
    try:
        for post in posts:  # both signed as Cloudinary signs them
            stamp, signature = post.headers["x-cld-timestamp"], post.headers["x-cld-signature"]
            assert verify_notification_signature(post.body.decode(), stamp, signature)
    finally:
        cloudinary.reset_config()
    stored = uploads.assets.record(public_id)
    assert stored is not None
    assert [Delivery.from_json(t).state for t in stored["notifications"]] == ["delivered", "delivered"]


def test_an_upload_notification_retried_still_comes_before_the_removals(
        uploads: Uploads, receiver: Receiver) -> None:
    """Its first try refused (503, Retry-After: 1): the removal does not wait for the retry, and the
    ``info`` notification waits for the ``upload`` one, retried with the same back-off."""
    jobs = uploads.jobs
    jobs.hook_policy = webhook_policy({"CUTOUT_FETCH_ALLOW_PRIVATE": "1"})
    public_id = "hooks/retried"
    receiver.fail_first = 1
    uploads._store(public_id, ROAD, DETAILS, overwrite=True, fine=False, notification_url=receiver.url,
                   base=BASE)  # fmt: skip
    anyio.run(jobs.drive, public_id)
    with receiver.condition:
        kinds = [json.loads(p.body)["notification_type"] for p in receiver.posts
                 if json.loads(p.body).get("public_id") == public_id]  # fmt: skip
    assert kinds == ["upload", "info"]
    stored = uploads.assets.record(public_id)
    assert stored is not None
    upload, info = map(Delivery.from_json, stored["notifications"])
    assert [len(upload.attempts), upload.attempts[0].status, upload.state] == [2, 503, "delivered"]
    assert [len(info.attempts), info.state] == [1, "delivered"]
    assert info.attempts[0].at >= upload.attempts[1].at
