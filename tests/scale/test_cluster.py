"""Three replicas and a worker on loopback behind nginx/cluster.conf, over a real SeaweedFS and Redis:
the same bytes as one machine, one inference for many variants, shared derivatives, and faults."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pyvips

from cutout.queued import MODEL_ID_SECONDS
from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess, metric
from tests.conftest import require_model
from tests.scale.cluster import (
    Nginx,
    WorkerProcess,
    cluster_env,
    start_replicas,
    until_made,
    upload_samples,
)
from tests.scale.servers import RedisServer, SeaweedS3
from tests.upload.conftest import CLOUD, KEY, SECRET

API_KEY = "cluster-api-key"

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHEAP = [
    "docs/rmv_bgd/dog_couch_orig",
    "c_scale,w_400/docs/road",
    "c_fill,h_300,w_300/f_auto/docs/rmv_bgd/router_orig",
    "c_thumb,g_auto,h_120,w_120/e_grayscale/docs/bg_beach.png",
    "l_docs:road/c_scale,w_200/fl_layer_apply,g_north_east/docs/bg_beach.webp",
]
CUTOUTS = [
    "e_background_removal/c_scale,w_300/docs/rmv_bgd/woman_orig.png",
    "e_background_removal/e_dropshadow/c_scale,h_105/docs/rmv_bgd/router_orig",
]


@dataclass
class Cluster:
    nginx: Nginx
    replicas: list[ServerProcess]
    workers: list[WorkerProcess]
    originals: str
    env: dict[str, str]
    folder: Path
    redis: RedisServer

    def inferences(self) -> float:
        live = [r.url for r in self.replicas if r.process.poll() is None]
        return sum(metric(url, "cutout_inference_total") for url in live) + sum(
            w.inferences() for w in self.workers if w.process.poll() is None
        )


@pytest.fixture(scope="module")
def cluster(
    seaweed: SeaweedS3, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    require_model()
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    folder = tmp_path_factory.mktemp("cluster")
    bucket = "cluster"
    seaweed.client().create_bucket(Bucket=bucket)
    upload_samples(seaweed, bucket)
    originals = f"s3://{bucket}/originals"
    env = cluster_env(seaweed, redis_server.url, bucket, CUTOUT_LEASE_SECONDS="4", CUTOUT_RETRY_AFTER="1",
                      CUTOUT_ORT_THREADS="2", CUTOUT_UPLOAD="1", CUTOUT_API_KEY=KEY, CUTOUT_API_SECRET=SECRET,
                      CUTOUT_CLOUD_NAME=CLOUD, CUTOUT_RESOURCE_LIST="1", CUTOUT_API_KEYS=API_KEY)  # fmt: skip
    worker = WorkerProcess(originals, folder / "worker" / "cache", env)
    replicas = start_replicas(3, originals, folder, env)
    nginx = Nginx(folder / "nginx", [f"127.0.0.1:{r.port}" for r in replicas])
    made = Cluster(nginx, replicas, [worker], originals, env, folder, redis_server)
    try:
        worker.wait_ready()
        yield made
    finally:
        nginx.stop()
        for replica in replicas:
            replica.stop()
        for w in made.workers:  # the fault tests start more
            w.kill()


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The one-machine mode: a folder of originals, the model in the server."""
    folder = tmp_path_factory.mktemp("single")
    server = ServerProcess(
        SAMPLES, folder / "cache", env={"CUTOUT_WAIT_SECONDS": "120", "CUTOUT_ORT_THREADS": "2"}
    )
    try:
        server.wait_ready(path="/readyz", timeout=300)
        yield server
    finally:
        server.stop()


def sdk_corpus() -> list[str]:
    """Paths Cloudinary's own Python SDK makes for every other option set tests/test_sdk_compat.py
    supports (all of them, twice over, would double this module's time for little more)."""
    import cloudinary
    import cloudinary.utils

    from tests.test_sdk_compat import SUPPORTED, sdk_path

    cloudinary.reset_config()
    cloudinary.config(cloud_name="demo", api_key="1234", api_secret="unused")
    try:
        return [sdk_path("docs/road", options) for options in SUPPORTED[::2]]
    finally:
        cloudinary.reset_config()


def test_the_cluster_gives_the_bytes_of_one_machine(cluster: Cluster, single: ServerProcess) -> None:
    seeds = [f"/demo/image/upload/{path}" for path in CHEAP + CUTOUTS]
    names = {httpx.get(r.url + "/healthz", timeout=10).headers["x-cutout-replica"] for r in cluster.replicas}
    assert len(names) == 3  # every replica names itself, each differently

    def both(url: str) -> tuple[str, httpx.Response, httpx.Response]:
        return url, until_made(cluster.nginx.url + url), httpx.get(single.url + url, timeout=180)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(both, seeds + sdk_corpus()))
    for url, mine, theirs in answers:
        assert mine.status_code == theirs.status_code, (url, mine.text, theirs.text)
        assert mine.content == theirs.content, url
        assert mine.headers["content-type"] == theirs.headers["content-type"]
        if url in seeds:
            assert mine.status_code == 200, url
            assert mine.headers["x-cutout-replica"] in names  # the replica that made it names itself
            assert mine.headers["x-upstream-addr"]  # and nginx says where it sent the request


def test_twenty_variants_sent_to_every_replica_at_once_cost_one_inference(cluster: Cluster) -> None:
    before = cluster.inferences()
    paths = [
        f"/demo/image/upload/e_background_removal/c_scale,w_{100 + 10 * i}/docs/rmv_bgd/dog_couch_orig"
        for i in range(20)
    ]
    answers: list[int] = []

    def ask(base: str, path: str) -> None:
        answers.append(httpx.get(base + path, timeout=60).status_code)

    threads = [threading.Thread(target=ask, args=(r.url, p)) for p in paths for r in cluster.replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(answers) <= {423, 200}, answers
    for path in paths:
        for replica in cluster.replicas:
            made = until_made(replica.url + path)
            assert made.status_code == 200 and made.headers["content-type"] == "image/png"
    assert cluster.inferences() - before == 1


def test_a_derivative_rendered_on_one_replica_is_a_storage_hit_on_another(cluster: Cluster) -> None:
    one, other = cluster.replicas[0], cluster.replicas[1]
    path = "/demo/image/upload/c_scale,w_123/e_sepia/docs/road"
    made = httpx.get(one.url + path)
    hits = metric(other.url, "cutout_shared_cache_hits_total")
    renders = metric(other.url, "cutout_render_seconds_count")
    again = httpx.get(other.url + path)
    assert again.status_code == made.status_code == 200 and again.content == made.content
    assert metric(other.url, "cutout_shared_cache_hits_total") == hits + 1
    assert metric(other.url, "cutout_render_seconds_count") == renders  # not rendered again


def test_uploads_through_nginx_are_seen_by_every_replica(cluster: Cluster) -> None:
    """The Upload API behind nginx/cluster.conf: a chunked upload, a rename and the tag index, each
    request on whichever replica nginx picks, then read from every replica (records on S3, locks in
    Redis)."""
    import cloudinary
    import cloudinary.api
    import cloudinary.uploader

    road = SAMPLES / "docs" / "road.jpg"
    cloudinary.config(cloud_name=CLOUD, api_key=KEY, api_secret=SECRET, upload_prefix=cluster.nginx.url,
                      secure=False)  # fmt: skip
    try:
        up = cloudinary.uploader.upload_large(str(road), public_id="shared/road", chunk_size=30_000,
                                              resource_type="image", tags=["cluster"])  # fmt: skip
        assert up["bytes"] == road.stat().st_size and up["url"].startswith(cluster.nginx.url)
        cloudinary.uploader.rename("shared/road", "shared/street")
        for replica in cluster.replicas:
            seen = httpx.get(f"{replica.url}/v1_1/{CLOUD}/resources/image/tags/cluster", auth=(KEY, SECRET))
            assert seen.status_code == 200, seen.text
            assert [r["public_id"] for r in seen.json()["resources"]] == ["shared/street"], replica.url
        assert httpx.get(up["url"].replace("shared/road", "shared/street"), timeout=60).status_code == 200
        # Background removal on upload: the job goes through the queue to the worker like any cut-out.
        router = SAMPLES / "docs" / "rmv_bgd" / "router_orig.jpg"
        cut = cloudinary.uploader.upload(
            str(router), public_id="shared/router", background_removal="cloudinary_ai"
        )
        deadline = time.monotonic() + 240
        while True:
            seen = httpx.get(f"{cluster.replicas[2].url}/v1_1/{CLOUD}/resources/image/upload/shared/router",
                             auth=(KEY, SECRET)).json()  # fmt: skip
            status = seen.get("info", {}).get("background_removal", {}).get("cloudinary_ai", {}).get("status")
            if status != "pending" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == "complete" and seen["format"] == "png" and seen["version"] > cut["version"], seen
    finally:
        cloudinary.reset_config()


def test_a_worker_killed_mid_job_has_its_job_finished_by_the_next(cluster: Cluster) -> None:
    [first] = [w for w in cluster.workers if w.process.poll() is None]
    before = first.inferences()
    path = "/demo/image/upload/e_background_removal/c_scale,w_222/docs/bg_beach"
    assert httpx.get(cluster.replicas[2].url + path).status_code == 423
    deadline = time.monotonic() + 60
    while cluster.redis.pending() == 0 and time.monotonic() < deadline:  # until the job is in its hands
        time.sleep(0.02)
    time.sleep(0.3)
    assert cluster.redis.pending() == 1  # taken, not finished: killed mid-job
    first.kill()
    second = WorkerProcess(cluster.originals, cluster.folder / "worker2" / "cache", cluster.env)
    cluster.workers.append(second)
    second.wait_ready()
    made = until_made(cluster.replicas[2].url + path, timeout=240)
    assert made.status_code == 200
    assert second.inferences() <= 1 and before >= 0  # the first's count died with it: at most two in all


def test_redis_down_keeps_cached_answers_and_503s_new_model_work_then_recovers(cluster: Cluster) -> None:
    replica = cluster.replicas[0]
    cached = "/demo/image/upload/c_scale,w_321/docs/road"
    cut = "/demo/image/upload/e_background_removal/c_scale,w_98/docs/road"
    assert httpx.get(replica.url + cached).status_code == 200
    assert until_made(replica.url + cut).status_code == 200
    cluster.redis.stop()
    try:
        assert httpx.get(replica.url + cached, timeout=30).status_code == 200
        # Past the time a replica trusts the model id it read from Redis, a cut-out already made is
        # still served (its key names the id announced last), and the API's task sweep fails meanwhile.
        time.sleep(MODEL_ID_SECONDS + 4.5)
        assert httpx.get(replica.url + cut, timeout=30).status_code == 200
        ready = httpx.get(replica.url + "/readyz", timeout=30)  # a load balancer keeps sending it hits
        assert ready.status_code == 200 and "degraded" in ready.text, ready.text
        fresh = httpx.get(replica.url + "/demo/image/upload/c_scale,w_77/docs/road", timeout=30)
        assert fresh.status_code == 200  # a cheap render needs no agreement
        new = httpx.get(
            replica.url + "/demo/image/upload/e_background_removal/c_scale,w_99/docs/road", timeout=30
        )
        assert new.status_code == 503 and int(new.headers["retry-after"]) >= 1, new.text
    finally:
        cluster.redis.start()
    made = until_made(replica.url + "/demo/image/upload/e_background_removal/c_scale,w_99/docs/road")
    assert made.status_code == 200, made.text
    # The HTTP API's tasks work again too (its sweep failed while Redis was away; it must not have taken
    # the replica's task group down with it).
    task = httpx.post(replica.url + "/v1/remove-background", params={"async": "true", "size": "preview"},
                      content=(SAMPLES / "docs" / "bg_beach.jpg").read_bytes(),
                      headers={"X-Api-Key": API_KEY, "Content-Type": "image/jpeg"}, timeout=30)  # fmt: skip
    assert task.status_code == 202, task.text
    deadline = time.monotonic() + 120
    while True:
        polled = httpx.get(replica.url + task.headers["location"], headers={"X-Api-Key": API_KEY}).json()
        if polled["status"] in ("success", "error") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert polled["status"] == "success", polled


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_mixed_load_through_nginx_no_5xx_bounded_memory_one_inference_per_new_original(
    cluster: Cluster, seaweed: SeaweedS3
) -> None:
    """SCALE_LOAD_SECONDS (default 60, the issue's figure) of hits, new renders, new cut-outs,
    404s and 400s from 8 clients at once."""
    seconds = float(os.environ.get("SCALE_LOAD_SECONDS", "60"))
    road = pyvips.Image.new_from_file(str(SAMPLES / "docs" / "road.jpg"))
    for i, quality in enumerate((70, 60)):  # new content: new masks (the key is the content's ETag)
        seaweed.client().put_object(
            Bucket="cluster", Key=f"originals/load/photo{i}.jpg", Body=road.jpegsave_buffer(Q=quality)
        )
    hits = [f"/demo/image/upload/{p}" for p in CHEAP]
    cutouts = [
        f"/demo/image/upload/e_background_removal/c_scale,w_{w}/load/photo{i}"
        for i in range(2)
        for w in (150, 250, 350)
    ]
    before = cluster.inferences()
    statuses: dict[int, int] = {}
    serial = iter(range(10**6))
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    peaks: dict[int, float] = {}

    def client() -> None:
        with httpx.Client(base_url=cluster.nginx.url, timeout=60) as http:
            while time.monotonic() < deadline:
                n = next(serial)
                kind = n % 5
                if kind == 0:
                    path = hits[n % len(hits)]
                elif kind == 1:
                    path = f"/demo/image/upload/c_scale,w_{20 + n % 600}/e_blur:{50 + n}/docs/bg_beach"
                elif kind == 2:
                    path = cutouts[n % len(cutouts)]
                elif kind == 3:
                    path = f"/demo/image/upload/c_scale,w_10/missing/photo{n}"
                else:
                    path = f"/demo/image/upload/w_abc{n}/docs/road"
                status = http.get(path).status_code
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

    def watch() -> None:
        processes = [r.process.pid for r in cluster.replicas] + [
            w.process.pid for w in cluster.workers if w.process.poll() is None
        ]
        while time.monotonic() < deadline:
            for pid in processes:
                peaks[pid] = max(peaks.get(pid, 0.0), rss_mb(pid))
            time.sleep(1)

    threads = [threading.Thread(target=client) for _ in range(8)] + [threading.Thread(target=watch)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"load {seconds:.0f}s: answers by status {statuses}; peak RSS MB by pid {peaks}")
    assert not {s for s in statuses if s >= 500}, statuses
    assert {200, 404, 400} <= set(statuses), statuses
    for path in cutouts:
        assert until_made(cluster.nginx.url + path).status_code == 200
    assert cluster.inferences() - before == 2  # one per new original, whatever the sizes and requests
    replica_peaks = [peaks[r.process.pid] for r in cluster.replicas]
    assert max(replica_peaks) < 1024, peaks  # MB; the model is not in the replicas
    assert max(peaks.values()) < 4096, peaks


def test_adding_a_replica_moves_about_a_quarter_of_the_urls(cluster: Cluster) -> None:
    paths = [f"/demo/image/upload/c_scale,w_{200 + i}/docs/bg_beach" for i in range(80)]
    before = {p: httpx.get(cluster.nginx.url + p, timeout=60).headers["x-cutout-replica"] for p in paths}
    fourth = start_replicas(1, cluster.originals, cluster.folder / "fourth", cluster.env)[0]
    bigger = Nginx(cluster.folder / "nginx4", [f"127.0.0.1:{r.port}" for r in [*cluster.replicas, fourth]])
    try:
        after = {p: httpx.get(bigger.url + p, timeout=60).headers["x-cutout-replica"] for p in paths}
    finally:
        bigger.stop()
        fourth.stop()
    moved = [p for p in paths if after[p] != before[p]]
    assert all(after[p] == "fourth-0" for p in moved)  # only to the new one
    assert 0.1 * len(paths) <= len(moved) <= 0.4 * len(paths), len(moved)


def test_every_url_answers_with_one_replica_of_three_killed(cluster: Cluster) -> None:
    victim = cluster.replicas[1]
    victim_name = httpx.get(victim.url + "/healthz", timeout=10).headers["x-cutout-replica"]
    victim.kill()
    for i in range(12):
        answer = httpx.get(cluster.nginx.url + f"/demo/image/upload/c_scale,w_{40 + i}/docs/road", timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-upstream-addr"].split(", ")[-1] != f"127.0.0.1:{victim.port}"
        assert answer.headers["x-cutout-replica"] != victim_name
