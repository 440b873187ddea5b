"""Per-process memory stays within its bounds: the hot-derivative budget counts what entries really
cost, and the URL memo does not keep arbitrarily long keys."""

from __future__ import annotations

from typing import Any

from cache import Entry
from cutout.memory import ENTRY_OVERHEAD, MemoryEntries
from cutout.resolve import MAX_MEMO_TEXT


def test_tiny_entries_are_charged_their_overhead() -> None:
    memory = MemoryEntries(100_000)
    for i in range(1000):
        memory.put(f"d:{i:064d}", Entry.of(b"x" * 70, format="gif"))
    held = sum(1 for i in range(1000) if memory.get(f"d:{i:064d}") is not None)
    assert held <= 100_000 // ENTRY_OVERHEAD  # it held 1000 (counting 70 bytes each) before
    assert memory.get(f"d:{999:064d}") is not None  # the newest stay


def test_use_is_due_once_per_period() -> None:
    memory = MemoryEntries(1 << 20)
    memory.put("k", Entry.of(b"abc", format="png"))
    assert not memory.due("k")  # just stored: the disk knows
    assert memory.due("k", every=0.0)
    assert not memory.due("missing", every=0.0)


def test_hits_from_memory_tell_the_disk_cache(client: Any) -> None:
    """Once due, a memory hit records a use on disk; a small (inline) value must not break the hit."""
    path = "/demo/image/upload/c_scale,w_30/docs/road"
    for _ in range(2):  # rendered and stored; then read from disk into memory
        assert client.get(path, headers={"Accept": "*/*"}).status_code == 200
    service = client.app.state.service
    key = service.resolver.memoised(path, "*/*").key
    told: list[str] = []
    service.store.use_period = 0.0  # every hit is due
    real = service.store.blobs.mark_used
    service.store.blobs.mark_used = lambda k: (told.append(k), real(k))  # type: ignore[method-assign]
    for _ in range(3):
        assert client.get(path, headers={"Accept": "*/*"}).status_code == 200
    assert told == [key] * 3


def test_long_urls_and_accept_headers_are_not_memoised(client: Any) -> None:
    resolver = client.app.state.service.resolver
    path = "/demo/image/upload/c_scale,w_40/docs/road"
    long_accept = "image/webp," + "x" * MAX_MEMO_TEXT
    assert client.get(path, headers={"Accept": long_accept}).status_code == 200
    assert client.get(path, headers={"Accept": "image/webp"}).status_code == 200
    assert resolver.memoised(path, long_accept) is None
    assert resolver.memoised(path, "image/webp") is not None
