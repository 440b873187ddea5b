"""A request waiting on a generation in its own process wakes when the job ends, not at its next poll."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from cache import Entry
from cache.blobs import DiskBlobs
from cache.coordinator import DiskCoordinator
from cutout.generate import Generator


def test_when_done_calls_back_after_the_result_is_stored_and_the_claim_released(tmp_path: Path) -> None:
    blobs = DiskBlobs(tmp_path / "blobs", size_limit=1 << 26)
    coordinator = DiskCoordinator(tmp_path / "state")
    generator = Generator(blobs, coordinator, workers=1, queue_size=4, lease=30, failure_ttl=5)
    try:
        go = threading.Event()

        def job() -> Entry:
            go.wait(10)
            return Entry.of(b"made", format="png", width=1, height=1, has_alpha=False)

        assert generator.submit("k", job)
        seen: list[tuple[bool, bool]] = []
        woken = threading.Event()

        def wake(failed: object) -> None:
            seen.append((blobs.get("k") is not None, coordinator.claimed("k")))
            woken.set()

        assert generator.when_done("k", wake)
        assert not generator.when_done("other", wake)  # nothing of that key runs here
        started = time.monotonic()
        go.set()
        assert woken.wait(5)
        assert time.monotonic() - started < 1
        assert seen == [(True, False)]  # stored, and no longer claimed, when the waiter wakes
        assert not generator.when_done("k", wake)  # done: a later waiter polls the store instead
    finally:
        generator.close()
