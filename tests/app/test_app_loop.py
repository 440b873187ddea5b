"""Nothing that may block runs on the event loop: while one request waits for a slow originals store
(a new original being hashed, a slow disk), cached hits of the same process are answered."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio

from cache import DerivativeCache, FolderOriginals, Located
from cutout.service import Service
from cutout.settings import Settings
from tests.app.helpers import SAMPLES

HIT = "/image/upload/c_scale,w_20/docs/road"
SLOW = "/image/upload/c_scale,w_20/docs/rmv_bgd/router_orig"


class SlowVersions(FolderOriginals):
    """The folder store, but reading the version of router_orig takes until ``gate`` opens."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def version(self, found: Located) -> str:
        if found.public_id.endswith("router_orig"):
            self.waiting.set()
            assert self.gate.wait(10)
        return super().version(found)


def test_a_slow_original_does_not_hold_up_cached_hits(tmp_path: Path) -> None:
    settings = Settings(originals=SAMPLES, cache_dir=tmp_path / "cache", render_threads=1)
    cache = DerivativeCache(tmp_path / "cache")
    originals = SlowVersions(SAMPLES)
    service = Service.over(settings, originals=originals, blobs=cache, coordinator=cache, segmenter=None)
    answered: list[float] = []

    async def main() -> None:
        await service.deliver(HIT, None)  # rendered and stored
        async with anyio.create_task_group() as group:
            group.start_soon(service.deliver, SLOW, None)
            await anyio.to_thread.run_sync(originals.waiting.wait, 10)
            for _ in range(20):  # the slow one is being "hashed" all along
                started = time.perf_counter()
                delivered = await service.deliver(HIT, None)
                answered.append(time.perf_counter() - started)
                assert delivered.entry.meta["width"] == 20
            assert not originals.gate.is_set()
            originals.gate.set()

    try:
        anyio.run(main)
    finally:
        service.close()
        cache.close()
    assert len(answered) == 20 and max(answered) < 1.0
