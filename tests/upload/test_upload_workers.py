"""The Upload API on `cutout serve --workers 2`: uploads with background removal reach both worker
processes, and every job completes exactly once: one model run per original (the summed /metrics), one
`complete` notification per asset, and records that agree with what is stored."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess, metric
from tests.conftest import require_model
from tests.upload.conftest import CLOUD, ENV, KEY, SECRET, Receiver, records
from tests.upload.test_upload_sdk import notified, status_of, wait_status

pytestmark = pytest.mark.slow

PHOTOS = sorted((SAMPLES / "docs" / "rmv_bgd").glob("*.jpg"))


def originals(batch: int = 0) -> dict[str, bytes]:
    """Six originals of different content: the three sample photos, and each mirrored; a later batch
    turns them a quarter (``batch`` times), so its content, and its masks, are new too."""
    found = {}
    for photo in PHOTOS:
        image = pyvips.Image.new_from_file(str(photo))
        suffix = f"-b{batch}" if batch else ""
        if batch:
            image = image.rot(("d90", "d180", "d270")[(batch - 1) % 3])
        found[f"two/{photo.stem}{suffix}"] = image.jpegsave_buffer(Q=90) if batch else photo.read_bytes()
        found[f"two/{photo.stem}-mirrored{suffix}"] = image.fliphor().jpegsave_buffer(Q=90)
    return found


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_model()
    root = tmp_path_factory.mktemp("workers")
    shutil.copytree(SAMPLES, root / "originals")
    server = ServerProcess(root / "originals", root / "cache", workers=2, env=ENV)
    server.wait_ready(path="/readyz", timeout=300)
    yield server
    server.stop()


def inference_by_process(server: ServerProcess) -> dict[str, float]:
    """cutout_inference_total per worker process, from the per-process metric files."""
    from prometheus_client.mmap_dict import MmapedDict

    command = server.process.args
    assert isinstance(command, list)
    folder = Path(command[command.index("--cache-dir") + 1]) / "metrics" / str(server.process.pid)
    counts: dict[str, float] = {}
    for path in folder.glob("counter_*.db"):
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == "cutout_inference_total":
                counts[path.stem.removeprefix("counter_")] = value
    return counts


def test_jobs_on_two_workers_complete_exactly_once(two_workers: ServerProcess, receiver: Receiver) -> None:
    import cloudinary
    import cloudinary.api
    import cloudinary.uploader

    # One connection per upload (no pool), so that the kernel hands them to either process.
    cloudinary.config(cloud_name=CLOUD, api_key=KEY, api_secret=SECRET, upload_prefix=two_workers.url,
                      secure=False, disable_tcp_keep_alive=True)  # fmt: skip
    command = two_workers.process.args
    assert isinstance(command, list)
    folder = Path(command[command.index("--originals") + 1])
    try:
        # Both workers must take part, but which process accepts a connection is the kernel's choice (one
        # may take all six at once): further batches of new content until both have run some jobs.
        done = 0
        for batch in range(4):
            _one_batch(originals(batch), folder, receiver)
            done += 6
            assert metric(two_workers.url, "cutout_inference_total") == done
            by_process = inference_by_process(two_workers)
            assert sum(by_process.values()) == done, by_process
            if len([n for n in by_process.values() if n]) == 2:
                break
        else:
            pytest.fail(f"one process took every job of four batches: {by_process}")
    finally:
        cloudinary.reset_config()


def _one_batch(wanted: dict[str, bytes], folder: Path, receiver: Receiver) -> None:
    """Six uploads with background removal at once; each completes exactly once."""
    import cloudinary
    import cloudinary.api
    import cloudinary.uploader

    assert len(wanted) == 6

    def upload(item: tuple[str, bytes]) -> dict[str, Any]:
        public_id, data = item
        return dict(cloudinary.uploader.upload(data, public_id=public_id,
                                               background_removal="cloudinary_ai",
                                               notification_url=receiver.url))  # fmt: skip

    with ThreadPoolExecutor(len(wanted)) as pool:
        answers = dict(zip(wanted, pool.map(upload, wanted.items()), strict=True))
    assert all(status_of(a) == "pending" for a in answers.values()), answers

    for public_id, answer in answers.items():
        info = notified(receiver, public_id, "info")
        assert info["info_status"] == "complete" and info["version"] > answer["version"], info
        resource = wait_status(cloudinary, public_id)
        assert status_of(resource) == "complete" and resource["format"] == "png", resource
        assert resource["version"] == info["version"] and resource["backup"] is True
        assert resource["secure_url"] == info["secure_url"]
        kept = dict(cloudinary.api.resource(public_id, versions=True))["versions"]
        assert [v["format"] for v in kept] == ["jpg", "png"], kept  # the upload, then the cut-out
        stored = sorted(p.name for p in (folder / "two").glob(public_id.removeprefix("two/") + ".*"))
        assert stored == [public_id.removeprefix("two/") + ".png"], stored
        served = httpx.get(resource["secure_url"], timeout=60)
        assert served.headers["content-type"] == "image/png"
        assert pyvips.Image.new_from_buffer(served.content, "").bands == 4
    # Exactly once: one `complete` notification per asset, one model run per original.
    for public_id in wanted:
        infos = [p for p in receiver.posts if json.loads(p.body).get("public_id") == public_id
                 and json.loads(p.body).get("notification_type") == "info"]  # fmt: skip
        assert len(infos) == 1, [p.body[:200] for p in infos]
    # The driver clears an asset's marker of unfinished work once its notification is delivered.
    deadline = time.monotonic() + 30
    while records(folder / ".cutout" / "jobs") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not records(folder / ".cutout" / "jobs"), "unfinished work left behind"


def test_one_photo_under_two_ids_at_once_runs_the_model_once(two_workers: ServerProcess) -> None:
    """The mask is keyed by content, the generations by derivative (so by public id): the same bytes
    uploaded under two ids at the same moment, each job in its own process, are one model run. The
    second waits for the first's claim on the content (the scheduler's ``_segmenting``) and finds the
    mask cached."""
    import cloudinary
    import cloudinary.api
    import cloudinary.uploader

    cloudinary.config(cloud_name=CLOUD, api_key=KEY, api_secret=SECRET, upload_prefix=two_workers.url,
                      secure=False, disable_tcp_keep_alive=True)  # fmt: skip
    try:
        photo = pyvips.Image.new_from_file(str(PHOTOS[0])).flipver().jpegsave_buffer(Q=90)  # new content
        before = metric(two_workers.url, "cutout_inference_total")
        ids = ["same/one", "same/two", "same/three", "same/four"]

        def upload(public_id: str) -> dict[str, Any]:
            return dict(cloudinary.uploader.upload(photo, public_id=public_id,
                                                   background_removal="cloudinary_ai"))  # fmt: skip

        with ThreadPoolExecutor(len(ids)) as pool:
            assert all(status_of(a) == "pending" for a in pool.map(upload, ids))
        for public_id in ids:
            resource = wait_status(cloudinary, public_id)
            assert status_of(resource) == "complete" and resource["format"] == "png", resource
        assert metric(two_workers.url, "cutout_inference_total") == before + 1
    finally:
        cloudinary.reset_config()
