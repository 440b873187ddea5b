"""The derivative cache: values, claims with leases, remembered failures, eviction."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

from cache import DerivativeCache, Entry, Fingerprints, derivative_key, mask_key


def test_entry_round_trip_and_metadata(tmp_path: Path) -> None:
    cache = DerivativeCache(tmp_path)
    entry = Entry.of(b"\x89PNG" + bytes(100_000), format="png", width=3, height=2)
    cache.put("k", entry)
    got = cache.get("k")
    assert got is not None
    assert got.data == entry.data
    assert got.meta["format"] == "png" and got.meta["width"] == 3
    assert got.etag == entry.etag and len(got.etag) == 32
    assert cache.get("missing") is None


def test_truncated_or_foreign_values_are_misses(tmp_path: Path) -> None:
    packed = Entry.of(b"abcdef", format="jpg").pack()
    assert Entry.unpack(packed[:-1]) is None
    assert Entry.unpack(b"JUNKJUNKJUNK") is None
    cache = DerivativeCache(tmp_path)
    cache.blobs.set("k", packed[:-2])
    assert cache.get("k") is None


def test_a_garbled_header_is_a_miss() -> None:
    packed = Entry.of(b"abcdef", format="jpg").pack()
    head_len = int.from_bytes(packed[4:8], "big")
    for head in (b"{" * head_len, b"\xff" * head_len, b"[1]".ljust(head_len)):
        assert Entry.unpack(packed[:8] + head + packed[8 + head_len :]) is None


def test_an_unreadable_value_is_deleted(tmp_path: Path) -> None:
    """Else ``in`` and a lookup disagree, and the generation queue takes it for a stored result."""
    cache = DerivativeCache(tmp_path)
    cache.blobs.set("k", Entry.of(b"abcdef", format="jpg").pack()[:-2])
    cache.blobs.set("foreign", 42)
    assert cache.get("k") is None and cache.get("foreign") is None
    assert "k" not in cache and "foreign" not in cache


def test_keys_change_with_every_input() -> None:
    base = dict(canonical="c_scale,w_400", public_id="docs/road", fingerprint="f", format_key="jpg")
    key = derivative_key(**base)  # type: ignore[arg-type]
    assert key == derivative_key(**base)  # type: ignore[arg-type]
    for field, other in [("canonical", "c_scale,w_401"), ("public_id", "docs/x"), ("fingerprint", "g"),
                         ("format_key", "webp")]:
        assert derivative_key(**{**base, field: other}) != key  # type: ignore[arg-type]
    assert derivative_key(**base, layers="x") != key  # type: ignore[arg-type]
    assert derivative_key(**base, model="other-model") != key  # type: ignore[arg-type]
    assert derivative_key(**base, pipeline_version="999") != key  # type: ignore[arg-type]
    assert mask_key("s", "m1", True) != mask_key("s", "m1", False) != mask_key("s", "m2", False)


def test_fingerprint_follows_content(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"one")
    prints = Fingerprints()
    first = prints.of(path)
    assert prints.of(path) == first
    path.write_bytes(b"two!")
    assert prints.of(path) != first


def test_fingerprint_follows_a_copy_that_restores_size_and_mtime(tmp_path: Path) -> None:
    """``cp -p`` / ``rsync -t`` of a same-size file: size and mtime are as before, the content is not."""
    path = tmp_path / "a.jpg"
    path.write_bytes(b"one!")
    prints = Fingerprints()
    first = prints.of(path)
    before = path.stat()
    path.write_bytes(b"two!")  # same size, same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert prints.of(path) != first
    replacement = tmp_path / "b.jpg"
    replacement.write_bytes(b"one!")
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, path)  # rsync's way: a new inode under the old name
    assert prints.of(path) == first


def test_claim_is_exclusive_between_threads(tmp_path: Path) -> None:
    cache = DerivativeCache(tmp_path)
    winners: list[str] = []
    barrier = threading.Barrier(16)

    def contend(i: int) -> None:
        barrier.wait()
        if cache.claim("job", f"t{i}", lease=30):
            winners.append(f"t{i}")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def _claim_in_process(directory: str, owner: str, start: float, results: multiprocessing.Queue) -> None:
    cache = DerivativeCache(directory)
    while time.time() < start:
        time.sleep(0.001)
    results.put((owner, cache.claim("job", owner, lease=30)))


def test_claim_is_exclusive_between_processes(tmp_path: Path) -> None:
    DerivativeCache(tmp_path).close()
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = ctx.Queue()
    start = time.time() + 1.5
    procs = [ctx.Process(target=_claim_in_process, args=(str(tmp_path), f"p{i}", start, results))
             for i in range(4)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sum(won for _, won in outcomes) == 1


def test_lease_expires_renews_and_release_needs_owner(tmp_path: Path) -> None:
    cache = DerivativeCache(tmp_path)
    assert cache.claim("job", "a", lease=0.3)
    assert not cache.claim("job", "b", lease=0.3)
    cache.release("job", "b")  # not the owner: no effect
    assert cache.claimed("job")
    assert cache.renew("job", "a", lease=0.6)
    time.sleep(0.4)
    assert cache.claimed("job"), "renewal must extend the lease"
    time.sleep(0.4)
    assert not cache.claimed("job")
    assert not cache.renew("job", "a", lease=1)
    assert cache.claim("job", "b", lease=5)
    cache.release("job", "b")
    assert not cache.claimed("job")


def test_failures_are_remembered_briefly(tmp_path: Path) -> None:
    cache = DerivativeCache(tmp_path)
    cache.remember_failure("k", 422, "Image cannot be decoded", ttl=0.3)
    failure = cache.failure("k")
    assert failure is not None and failure.status == 422 and "decoded" in failure.message
    time.sleep(0.4)
    assert cache.failure("k") is None


def test_size_limit_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = DerivativeCache(tmp_path, size_limit=450_000)
    cache.blobs.reset("cull_limit", 1)  # diskcache culls in batches; one at a time makes the order visible
    for i in range(10):
        cache.put(f"k{i}", Entry.of(bytes([i]) * 100_000, format="jpg"))
        cache.get("k0")  # keep k0 hot
    assert cache.blobs.volume() < 1_000_000
    assert cache.get("k0") is not None
    assert cache.get("k1") is None
    assert cache.get("k9") is not None


def test_eager_allow_list_and_writable(tmp_path: Path) -> None:
    cache = DerivativeCache(tmp_path)
    assert not cache.allowed("c_scale,w_400|docs/road")
    cache.allow("c_scale,w_400|docs/road")
    assert DerivativeCache(tmp_path).allowed("c_scale,w_400|docs/road")
    assert cache.writable()


def test_the_cache_is_culled_down_to_its_limit_least_recently_used_first(tmp_path: Path) -> None:
    """diskcache's own cull removed 10 rows a write: 8x over the limit after a run of large entries."""
    limit = 1 << 20
    cache = DerivativeCache(tmp_path, size_limit=limit)
    for i in range(300):
        cache.put(f"small{i}", Entry.of(os.urandom(1000), format="jpg"))
    for i in range(40):
        cache.put(f"big{i}", Entry.of(os.urandom(200_000), format="png"))
        assert cache.blobs.volume() <= limit * 1.1, i
        assert cache.get(f"big{i}") is not None  # the entry just written stays
    assert cache.get("small0") is None and cache.get("big0") is None  # the oldest went first


def test_a_use_recorded_without_reading_keeps_an_entry(tmp_path: Path) -> None:
    """Hits served from a process's memory are told to the disk cache (mark_used), so what is hot there is
    not what the disk evicts first."""
    cache = DerivativeCache(tmp_path, size_limit=600_000)
    for name in ("hot", "cold"):
        cache.put(name, Entry.of(os.urandom(100_000), format="png"))
    cache.put("tiny", Entry.of(b"abc", format="png"))  # kept inline by diskcache, not as a file
    cache.mark_used("tiny")
    cache.mark_used("hot")
    cache.mark_used("missing")  # nothing to record: no error
    added = 0
    while "cold" in cache and added < 20:  # (``in`` does not count as a use)
        cache.put(f"new{added}", Entry.of(os.urandom(100_000), format="png"))
        added += 1
    assert "cold" not in cache and "hot" in cache


def test_queue_depth_counts_live_claims_of_every_process(tmp_path: Path) -> None:
    cache = DerivativeCache(tmp_path)
    other = DerivativeCache(tmp_path)  # another process's view of the same folder
    assert cache.depth() == 0
    assert cache.claim("a", "p1", lease=30) and other.claim("b", "p2", lease=0.2)
    cache.state.set("claimz", 1)  # a key that sorts after the claims is no claim
    cache.remember_failure("c", 500, "x", ttl=30)
    assert cache.depth() == 2 and other.depth() == 2
    time.sleep(0.3)
    assert cache.depth() == 1  # an expired lease is no longer a claim
    cache.release("a", "p1")
    assert other.depth() == 0
