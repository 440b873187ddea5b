"""Chunked uploads (the SDKs' ``upload_large``: parts with ``Content-Range`` and ``X-Unique-Upload-Id``)
and ``resource_type=auto``: the parts' store on its own, then Cloudinary's own SDK against a real
`cutout serve`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache import FolderOriginals
from cutout.upload import parts as parts_module
from cutout.upload.errors import UploadError
from cutout.upload.parts import Parts, Range, content_range
from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess
from tests.upload.conftest import CLOUD
from tests.upload.conftest import records as records_in

ROAD = SAMPLES / "docs" / "road.jpg"


def test_content_range() -> None:
    assert content_range({}) is None
    found = content_range({"content-range": "bytes 10-19/30"})
    assert found == Range(10, 19, 30) and found.size == 10 and not found.last and not found.whole
    assert content_range({"content-range": " bytes 0-29/30 "}) == Range(0, 29, 30)
    assert Range(0, 29, 30).whole and Range(20, 29, 30).last
    wrong = [("items 0-1/2", "is not 'bytes START-END/TOTAL'"), ("bytes 0-1/*", "is not"),
             ("bytes 5-4/10", "are not inside 10"), ("bytes 0-10/10", "are not inside 10")]  # fmt: skip
    for text, message in wrong:
        with pytest.raises(UploadError, match=message) as caught:
            content_range({"content-range": text})
        assert caught.value.status == 400


def test_parts_join_in_order_whatever_order_they_came(tmp_path: Path) -> None:
    store = FolderOriginals(tmp_path)
    kept = Parts(store, 1000)
    data = os.urandom(250)
    folder = kept.check("upload-1", Range(0, 99, 250), data[:100])
    assert folder.startswith("parts/") and "upload-1" not in folder  # hashed, never the client's text
    kept.put(folder, Range(100, 199, 250), data[100:200])  # the middle parts may come in any order
    kept.put(folder, Range(0, 99, 250), data[:100])
    kept.put(folder, Range(0, 99, 250), data[:100])  # a part sent again replaces itself
    kept.put(folder, Range(50, 149, 250), data[50:150])  # ... or comes again with other bounds
    assert kept.join(folder, Range(200, 249, 250), data[200:]) == data
    assert not any(store.list())  # parts are records: never listed, located or served as originals
    kept.drop(folder)
    assert list(store.list_records("parts")) == []


def test_parts_that_do_not_know_the_total_yet(tmp_path: Path) -> None:
    """Cloudinary's Node SDK sends ``/-1`` on every part but the last (it streams: the size is known at
    the end): kept as parts whose total is open, joined by the last, which says it."""
    assert content_range({"content-range": "bytes 0-99/-1"}) == Range(0, 99, parts_module.UNKNOWN)
    assert not Range(0, 99, parts_module.UNKNOWN).last and not Range(0, 99, parts_module.UNKNOWN).whole
    with pytest.raises(UploadError, match="no range"):
        content_range({"content-range": "bytes 9-3/-1"})
    store = FolderOriginals(tmp_path)
    kept = Parts(store, 1000)
    data = os.urandom(250)
    folder = kept.check("node", Range(0, 99, -1), data[:100])
    kept.put(folder, Range(0, 99, -1), data[:100])
    kept.put(folder, Range(100, 199, -1), data[100:200])
    assert kept.join(folder, Range(200, 249, 250), data[200:]) == data
    kept.drop(folder)
    kept.put(folder, Range(0, 199, -1), data[:200])  # a part past the total the last part says
    with pytest.raises(UploadError, match="a part ends at byte 199, the last part that it is 150 bytes"):
        kept.join(folder, Range(100, 149, 150), data[100:150])
    with pytest.raises(UploadError, match="over 1001 bytes, over CUTOUT_MAX_UPLOAD_BYTES"):
        kept.check("node", Range(0, 1000, -1), b"x" * 1001)


def test_parts_refusals(tmp_path: Path) -> None:
    kept = Parts(FolderOriginals(tmp_path), 1000)
    refusals: list[tuple[Any, str]] = [
        (lambda: kept.check(None, Range(0, 9, 20), b"x" * 10), "needs the X-Unique-Upload-Id header"),
        (lambda: kept.check(" ", Range(0, 9, 20), b"x" * 10), "needs the X-Unique-Upload-Id header"),
        (lambda: kept.check("u", Range(0, 9, 2000), b"x" * 10), "2000 bytes, over CUTOUT_MAX_UPLOAD_BYTES"),
        (lambda: kept.check("u", Range(0, 9, 20), b"x" * 9), "0-9 are 10 bytes, but the file part has 9"),
    ]  # fmt: skip
    for call, message in refusals:
        with pytest.raises(UploadError, match=message):
            call()
    folder = kept.check("u", Range(0, 9, 30), b"x" * 10)
    kept.put(folder, Range(0, 9, 30), b"a" * 10)
    with pytest.raises(UploadError, match="bytes 10-19 of 30 never arrived"):
        kept.join(folder, Range(20, 29, 30), b"c" * 10)
    kept.put(folder, Range(10, 19, 40), b"b" * 10)
    with pytest.raises(UploadError, match="says the file is 40 bytes, the last part that it is 30 .*dropped"):
        kept.join(folder, Range(20, 29, 30), b"c" * 10)
    assert list(kept.originals.list_records("parts")) == []  # nothing can mend that: the parts went


def test_abandoned_uploads_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FolderOriginals(tmp_path)
    kept = Parts(store, 1000)
    old, new = kept.check("old", Range(0, 9, 20), b"x" * 10), kept.check("new", Range(0, 9, 20), b"x" * 10)
    monkeypatch.setattr(parts_module.time, "time", lambda: 1_000_000.0)
    kept.put(old, Range(0, 9, 20), b"x" * 10)
    monkeypatch.setattr(parts_module.time, "time", lambda: 1_000_000.0 + parts_module.PARTS_TTL - 60)
    kept.put(new, Range(0, 9, 20), b"x" * 10)
    assert kept.sweep(now=1_000_000.0 + parts_module.PARTS_TTL + 1) == 1
    assert {n.rsplit("/", 1)[0] for n in store.list_records("parts")} == {new}
    # Without ``now``: as of the clock; a second sweep finds nothing left to drop.
    monkeypatch.setattr(parts_module.time, "time", lambda: 1_000_000.0 + 3 * parts_module.PARTS_TTL)
    fresh = Parts(store, 1000)
    assert fresh.sweep() == 1 and fresh.sweep() == 0
    assert list(store.list_records("parts")) == []


# == end to end, with the SDK ==========================================================================


def test_upload_large_in_parts(sdk: Any, server: ServerProcess) -> None:
    data = ROAD.read_bytes()
    up = sdk.uploader.upload_large(str(ROAD), public_id="large/parts", chunk_size=30_000,
                                   resource_type="image", tags=["big"])  # fmt: skip
    assert up["public_id"] == "large/parts" and up["bytes"] == len(data) and up["tags"] == ["big"]
    assert up["etag"] == hashlib.md5(data).hexdigest() and up["format"] == "jpg"
    assert (_originals(server) / "large" / "parts.jpg").read_bytes() == data  # byte for byte
    assert httpx.get(up["url"]).headers["content-type"] == "image/jpeg"
    records = _originals(server) / ".cutout" / "parts"
    assert not records_in(records)  # dropped once answered
    # No public id: the server chooses one when the last part comes; use_filename names it after the file.
    named = sdk.uploader.upload_large(str(ROAD), chunk_size=40_000, resource_type="image", use_filename=True,
                                      unique_filename=False, folder="large")  # fmt: skip
    assert named["public_id"] == "large/road" and named["bytes"] == len(data)


def test_resource_type_auto_is_an_image_upload(sdk: Any) -> None:
    up = sdk.uploader.upload(str(ROAD), public_id="auto/road", resource_type="auto")
    assert up["resource_type"] == "image" and up["format"] == "jpg"
    assert up["url"].endswith(f"/{CLOUD}/image/upload/v{up['version']}/auto/road.jpg")
    parted = sdk.uploader.upload_large(str(ROAD), public_id="auto/parts", chunk_size=50_000,
                                       resource_type="auto")  # fmt: skip
    assert parted["resource_type"] == "image" and parted["bytes"] == ROAD.stat().st_size
    with pytest.raises(sdk.exceptions.BadRequest, match="Invalid image file"):
        sdk.uploader.upload(b"%PDF-1.4 not an image", public_id="auto/doc", resource_type="auto")
    with pytest.raises(sdk.exceptions.BadRequest, match="resource_type auto is only for upload"):
        sdk.uploader.destroy("auto/road", resource_type="auto")


def test_chunked_upload_refusals(sdk: Any, server: ServerProcess) -> None:
    data = ROAD.read_bytes()
    total = len(data)

    def part(start: int, end: int, upload_id: str | None = "refusals", **options: Any) -> Any:
        headers = {"Content-Range": f"bytes {start}-{end}/{total}"}
        if upload_id is not None:
            headers["X-Unique-Upload-Id"] = upload_id
        return sdk.uploader.upload_large_part(("road.jpg", data[start : end + 1]), http_headers=headers,
                                              resource_type="image", **options)  # fmt: skip

    def open_part(start: int, end: int, said: int, public_id: str) -> Any:
        headers = {"Content-Range": f"bytes {start}-{end}/{said}", "X-Unique-Upload-Id": "node-style"}
        return sdk.uploader.upload_large_part(("road.jpg", data[start : end + 1]), http_headers=headers,
                                              resource_type="image", public_id=public_id)  # fmt: skip

    # As Cloudinary's Node SDK streams a file: the total only on the last part.
    assert open_part(0, 29_999, -1, "large/node")["done"] is False
    assert open_part(30_000, 59_999, -1, "large/node")["done"] is False
    streamed = open_part(60_000, total - 1, total, "large/node")
    assert streamed["public_id"] == "large/node" and streamed["bytes"] == total

    first = part(0, 29_999, public_id="large/gap")
    assert first == {"done": False, "upload_id": "refusals", "bytes": 30_000, "public_id": "large/gap"}
    with pytest.raises(sdk.exceptions.BadRequest, match=f"bytes 30000-59999 of {total} never arrived"):
        part(60_000, total - 1, public_id="large/gap")
    part(30_000, 59_999, public_id="large/gap")  # the missing part, then the last again: whole
    whole = part(60_000, total - 1, public_id="large/gap")
    assert whole["public_id"] == "large/gap" and whole["bytes"] == total
    with pytest.raises(sdk.exceptions.BadRequest, match="needs the X-Unique-Upload-Id header"):
        part(0, 29_999, upload_id=None, public_id="large/x")
    with pytest.raises(sdk.exceptions.BadRequest, match="Parameter moderation is not supported"):
        part(0, 29_999, public_id="large/x", moderation="manual")  # refused at the first part
    with pytest.raises(sdk.exceptions.BadRequest, match="public_id"):
        part(0, 29_999, public_id="../escape")
    secret = sdk.config().api_secret
    with pytest.raises(sdk.exceptions.AuthorizationRequired):
        part(0, 29_999, public_id="large/x", api_secret="wrong")
    assert sdk.config().api_secret == secret
    over = httpx.post(f"{server.url}/v1_1/{CLOUD}/image/upload", headers={
        "Content-Range": "bytes 0-9/999999999", "X-Unique-Upload-Id": "big"},
        files={"file": ("a.jpg", b"x" * 10)}, data=_signed(sdk, {"public_id": "large/big"}))  # fmt: skip
    assert over.status_code == 400 and "over CUTOUT_MAX_UPLOAD_BYTES" in over.json()["error"]["message"]
    bad_header = httpx.post(f"{server.url}/v1_1/{CLOUD}/image/upload", headers={"Content-Range": "bytes x"},
                            files={"file": ("a.jpg", b"x")}, data=_signed(sdk, {}))  # fmt: skip
    assert bad_header.status_code == 400 and "Content-Range" in bad_header.json()["error"]["message"]
    # A damaged file is refused when the last part comes, and its parts go with the answer.
    part(0, 29_999, upload_id="damaged", public_id="large/damaged")
    with pytest.raises(sdk.exceptions.BadRequest, match="Invalid image file"):
        sdk.uploader.upload_large_part(("road.jpg", b"\0" * (total - 30_000)), resource_type="image",
                                       public_id="large/damaged", http_headers={
                                           "Content-Range": f"bytes 30000-{total - 1}/{total}",
                                           "X-Unique-Upload-Id": "damaged"})  # fmt: skip
    records = _originals(server) / ".cutout" / "parts"
    assert not records_in(records)  # nothing refused was kept
    with pytest.raises(sdk.exceptions.NotFound):
        sdk.api.resource("large/damaged")


def _signed(sdk: Any, params: dict[str, str]) -> dict[str, str]:
    import time

    config = sdk.config()
    signed = {**params, "timestamp": str(int(time.time()))}
    signed["signature"] = sdk.utils.api_sign_request(signed, config.api_secret)
    return {**signed, "api_key": config.api_key}


def _originals(server: ServerProcess) -> Path:
    command = server.process.args
    assert isinstance(command, list)
    return Path(command[command.index("--originals") + 1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    size=st.integers(min_value=1, max_value=400),
    cuts=st.lists(st.integers(min_value=1, max_value=399), max_size=8),
    again=st.lists(st.tuples(st.integers(0, 399), st.integers(0, 399)), max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_any_split_in_any_order_joins_to_the_file(
    tmp_path_factory: pytest.TempPathFactory,
    size: int,
    cuts: list[int],
    again: list[tuple[int, int]],
    order: Any,
) -> None:
    """However the file is cut, whatever order the middle parts come in, and whatever overlapping parts
    are sent again, the last part joins exactly the file."""
    data = os.urandom(size)
    bounds = sorted({0, size, *(c for c in cuts if c < size)})
    parts = [Range(a, b - 1, size) for a, b in zip(bounds, bounds[1:], strict=False)]
    extra = [Range(min(a, b), max(a, b), size) for a, b in again if max(a, b) < size - 1]
    kept = Parts(FolderOriginals(tmp_path_factory.mktemp("parts")), 1000)
    *middle, last = parts
    folder = kept.check("u", last, data[last.start :])
    shuffled = [*middle, *extra]
    order.shuffle(shuffled)
    for part in shuffled:
        kept.put(folder, part, data[part.start : part.end + 1])
    assert kept.join(folder, last, data[last.start :]) == data


def test_a_starting_server_sweeps_abandoned_parts(tmp_path: Path) -> None:
    import shutil
    import time

    from starlette.testclient import TestClient

    from cutout.app import create_app
    from cutout.settings import Settings

    shutil.copytree(SAMPLES, tmp_path / "originals")
    store = FolderOriginals(tmp_path / "originals")
    kept = Parts(store, 1000)
    folder = kept.check("left-behind", Range(0, 9, 20), b"x" * 10)
    store.put_record(f"{folder}/started", b'{"at": 1000.0}')  # long ago
    store.put_record(f"{folder}/0-9-20", b"x" * 10)
    config = Settings(originals=tmp_path / "originals", cache_dir=tmp_path / "cache", upload=True,
                      api_key="k", api_secret="s", background_removal=False)  # fmt: skip
    with TestClient(create_app(config, load_model=False)):
        deadline = time.monotonic() + 10
        while list(store.list_records("parts")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(store.list_records("parts")) == []
