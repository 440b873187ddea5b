"""A server killed (-9) while a background removal runs: the restarted server finishes the job and sends
its notification; nothing is left pending."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cloudinary
import cloudinary.api
import cloudinary.uploader

from tests.conftest import require_model
from tests.upload.conftest import CLOUD, KEY, SECRET, Receiver, records, start_server
from tests.upload.test_upload_sdk import ROUTER, notified, status_of


def test_a_job_killed_mid_way_finishes_after_restart(tmp_path: Path, receiver: Receiver) -> None:
    require_model()
    first = start_server(tmp_path)
    try:
        cloudinary.config(cloud_name=CLOUD, api_key=KEY, api_secret=SECRET, upload_prefix=first.url)
        up = cloudinary.uploader.upload(str(ROUTER), public_id="crash/router",
                                        background_removal="cloudinary_ai",
                                        notification_url=receiver.url)  # fmt: skip
        assert status_of(dict(cloudinary.api.resource("crash/router"))) == "pending"
    finally:
        first.kill()  # SIGKILL: no shutdown, claims left to lapse, the job mid-way
    second = start_server(tmp_path)
    try:
        cloudinary.config(upload_prefix=second.url)
        note: dict[str, Any] = notified(receiver, "crash/router", "info")
        assert note["info_status"] == "complete" and note["version"] > up["version"]
        resource = dict(cloudinary.api.resource("crash/router"))
        assert resource["format"] == "png" and status_of(resource) == "complete"
        jobs = tmp_path / "originals" / ".cutout" / "jobs"
        deadline = time.monotonic() + 20
        while records(jobs) and time.monotonic() < deadline:  # the delivery is recorded last
            time.sleep(0.1)
        assert not records(jobs)  # nothing left pending
    finally:
        second.stop()
        cloudinary.reset_config()
