"""A replica on S3 storage (SeaweedFS) that stalls (SIGSTOP) and comes back (SIGCONT): cached answers
keep serving, what needs the storage is a 503 within the configured bound, no thread is held for ever;
and an original replaced in storage is never stored under its old version."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess
from tests.scale.cluster import upload_samples
from tests.scale.servers import SeaweedS3

pytestmark = pytest.mark.integration

TIMEOUT = 1.0  # CUTOUT_S3_TIMEOUT: two tries, so at most about 2 s for a request that needs the storage


@pytest.fixture
def replica(seaweed: SeaweedS3, bucket: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    upload_samples(seaweed, bucket)
    env = {**seaweed.env(), "CUTOUT_BACKGROUND_REMOVAL": "0", "CUTOUT_SHARED_CACHE": f"s3://{bucket}/derived",
           "CUTOUT_S3_TIMEOUT": str(TIMEOUT)}
    server = ServerProcess(f"s3://{bucket}/originals", tmp_path / "cache", env=env)  # type: ignore[arg-type]
    try:
        server.wait_ready()
        yield server, bucket
    finally:
        server.stop()


def test_a_stalled_storage_is_503_within_the_bound_while_cached_answers_serve(
        replica: tuple[ServerProcess, str], seaweed: SeaweedS3) -> None:
    server, _ = replica
    cached = server.url + "/demo/image/upload/c_scale,w_150/docs/road"
    assert httpx.get(cached).status_code == 200
    time.sleep(1.2)  # the lookup is no longer fresh: a hit would look at the storage again
    seaweed.pause()
    try:
        started = time.monotonic()
        assert httpx.get(cached, timeout=30).status_code == 200  # what was located a moment ago
        assert time.monotonic() - started < 2 * TIMEOUT + 1.5  # one call's two tries (it was three)

        def new(i: int) -> tuple[int, float, str]:
            began = time.monotonic()
            path = f"/demo/image/upload/c_scale,w_{60 + i}/docs/bg_beach"
            answer = httpx.get(server.url + path, timeout=30)
            return answer.status_code, time.monotonic() - began, answer.headers.get("retry-after", "")

        with ThreadPoolExecutor(24) as pool:  # more than the render threads and the queue
            answers = list(pool.map(new, range(24)))
        assert {status for status, _, _ in answers} == {503}, answers
        assert max(took for _, took, _ in answers) < 2 * TIMEOUT * 2 + 3
        assert all(retry for _, _, retry in answers)
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200  # the loop is free
    finally:
        seaweed.resume()
    deadline = time.monotonic() + 30
    while True:  # back once the storage answers again (after the pause of 2 x the timeout)
        answer = httpx.get(server.url + "/demo/image/upload/c_scale,w_61/docs/bg_beach", timeout=30)
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer.status_code == 200


def test_a_stalled_storage_costs_a_render_one_failed_call_not_one_per_store(
        replica: tuple[ServerProcess, str], seaweed: SeaweedS3) -> None:
    """The originals and the shared cache are one endpoint: once a call got no answer, the others skip
    it (the original's HEAD, the shared cache's GET and PUT) instead of each waiting out its own timeout.
    The original is already local, so the render itself answers."""
    server, _ = replica
    assert httpx.get(server.url + "/demo/image/upload/c_scale,w_150/docs/road").status_code == 200
    time.sleep(1.2)  # the lookup is no longer fresh: the render lists, HEADs, GETs and PUTs
    seaweed.pause()
    try:
        started = time.monotonic()
        answer = httpx.get(server.url + "/demo/image/upload/c_scale,w_151/docs/road", timeout=60)
        took = time.monotonic() - started
    finally:
        seaweed.resume()
    assert answer.status_code == 200, answer.text
    assert took < 2 * TIMEOUT + 1.5, took  # one call's two tries (and botocore's backoff), no more


def test_an_original_replaced_in_storage_gets_a_new_key_and_the_old_key_keeps_old_bytes(
        replica: tuple[ServerProcess, str], seaweed: SeaweedS3) -> None:
    server, bucket = replica
    url = server.url + "/demo/image/upload/c_scale,w_90/docs/road"
    first = httpx.get(url)
    seaweed.client().put_object(Bucket=bucket, Key="originals/docs/road.jpg",
                                Body=(SAMPLES / "docs" / "bg_beach.jpg").read_bytes())
    deadline = time.monotonic() + 10
    while True:
        again = httpx.get(url)
        if again.content != first.content or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert again.status_code == 200 and again.content != first.content
    assert again.headers["etag"] != first.headers["etag"]
    keys = [o["Key"] for o in seaweed.client().list_objects_v2(Bucket=bucket, Prefix="derived/")["Contents"]]
    assert len(keys) == 2  # one per version of the original, each under its own key


def test_a_stalled_storage_is_a_503_with_retry_after_for_the_upload_and_admin_api(
        seaweed: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    """The Admin API's listing read the bucket without the storage's bound: a stalled storage was a 500
    (\"Internal error\"); and the Upload API's 503s left out the Retry-After the engine's error carries."""
    from tests.upload.conftest import CLOUD, ENV, KEY, SECRET

    upload_samples(seaweed, bucket)
    env = {**ENV, **seaweed.env(), "CUTOUT_BACKGROUND_REMOVAL": "0", "CUTOUT_S3_TIMEOUT": str(TIMEOUT)}
    server = ServerProcess(f"s3://{bucket}/originals", tmp_path / "cache", env=env)  # type: ignore[arg-type]
    api = f"{server.url}/v1_1/{CLOUD}"
    try:
        server.wait_ready()
        listed = httpx.get(f"{api}/resources/image", auth=(KEY, SECRET), timeout=30)
        assert listed.status_code == 200 and listed.json()["resources"]
        seaweed.pause()
        try:
            for call in (lambda: httpx.get(f"{api}/resources/image", auth=(KEY, SECRET), timeout=30),
                         lambda: httpx.get(f"{api}/resources/image/upload/docs/road", auth=(KEY, SECRET),
                                           timeout=30),
                         lambda: httpx.post(f"{api}/image/upload", auth=(KEY, SECRET), timeout=30,
                                            files={"file": (SAMPLES / "docs" / "road.jpg").read_bytes()},
                                            data={"public_id": "docs/stalled"})):
                began = time.monotonic()
                answer = call()
                assert answer.status_code == 503, answer.text
                assert answer.headers.get("retry-after"), answer.headers
                assert "retry later" in answer.json()["error"]["message"]
                assert time.monotonic() - began < 2 * TIMEOUT + 3
        finally:
            seaweed.resume()
        deadline = time.monotonic() + 30
        while (listed := httpx.get(f"{api}/resources/image", auth=(KEY, SECRET))).status_code != 200:
            assert time.monotonic() < deadline, listed.text
            time.sleep(0.5)
    finally:
        server.stop()
