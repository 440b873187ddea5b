"""The origin's core, assembled: the resolver, the store facade and the scheduler over the three
storage seams. Every face uses these three parts and nothing else:

    prepared = resolver.resolve(...)      # path + Accept -> plan and key     (checks, versions)
    entry = store.lookup(prepared.key)    # hit or miss, memory then disk     (remembered failures)
    entry = scheduler.make(prepared)      # a miss: render now, or claim and queue (423)

``deliver`` is that sequence for the HTTP app; ``hot`` the part of it that never blocks (fast hits).
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread

from cache import BlobStore, Coordinator, DerivativeCache, Entry, OriginalsStore
from cutout import metrics
from cutout.backends import open_stores, queued_model
from cutout.client import Client
from cutout.masks import Segmentation
from cutout.resolve import MAX_MEMO_TEXT, Parsed, Prepared, Resolver, check_transformations
from cutout.responses import Delivered
from cutout.schedule import Scheduler
from cutout.settings import Settings
from cutout.store import Store, failure_error
from transform.hints import NO_HINTS, Hints
from transform.seam import Segmenter

__all__ = [
    "MAX_MEMO_TEXT", "Delivered", "Parsed", "Prepared", "Service", "check_transformations", "failure_error",
]


@dataclass
class Service:
    settings: Settings
    originals: OriginalsStore
    coordinator: Coordinator
    models: Segmentation
    resolver: Resolver
    store: Store
    scheduler: Scheduler

    @classmethod
    def over(
        cls,
        settings: Settings,
        *,
        originals: OriginalsStore,
        blobs: BlobStore,
        coordinator: Coordinator,
        segmenter: Segmenter | None,
    ) -> Service:
        models = Segmentation(segmenter, blobs)
        store = Store(blobs, coordinator, memory_budget=settings.memory_cache,
                      failure_seconds=settings.failure_seconds)
        return cls(
            settings, originals, coordinator, models,
            Resolver(settings, originals, coordinator, models),
            store,
            Scheduler(settings, originals, store, coordinator, models),
        )

    @classmethod
    def open(cls, settings: Settings, cache: DerivativeCache, *, segmenter: Segmenter | None) -> Service:
        """The stores settings choose (``cutout.backends``): by default the originals folder, and one
        diskcache folder as blobs and coordinator."""
        stores = open_stores(settings, cache)
        if settings.queued and segmenter is None:
            segmenter = queued_model(settings)
        return cls.over(settings, originals=stores.originals, blobs=stores.blobs,
                        coordinator=stores.coordinator, segmenter=segmenter)

    def close(self) -> None:
        self.scheduler.close()

    async def deliver(
        self,
        raw_path: str,
        accept: str | None,
        *,
        vouched: bool = False,
        parsed: Parsed | None = None,
        client: Client | None = None,
        hints: Hints = NO_HINTS,
    ) -> Delivered:
        """``vouched``: the caller checked the path's ``s--SIG--`` against what it signs (a fetch URL's);
        ``parsed``: ``raw_path`` already parsed and compiled (a fetch URL's, see ``Resolver.check_fetch``).
        ``client``: a render made for this request is abandoned if it leaves (``Scheduler.make``).
        ``hints``: its Client Hints, when the URL may use them (cutout/hinting.py)."""
        known = self.resolver.memoised(raw_path, accept, hints)
        if known is not None:
            prepared, entry = known, await self.store.fetch(known.key)
        else:  # one trip to the thread pool for both: each costs the event loop some work too
            prepared, entry = await anyio.to_thread.run_sync(
                self._resolve_and_look_up, raw_path, accept, vouched, parsed, hints
            )
        if parsed is not None:
            prepared = parsed.named(prepared)  # not in the memo: URLs of one fetched image share it
        if entry is not None:
            metrics.cache_hits_total.inc()
        else:
            metrics.cache_misses_total.inc()
            entry = await self.scheduler.make(prepared, client)
        return delivered(prepared, entry)

    def _resolve_and_look_up(
        self,
        raw_path: str,
        accept: str | None,
        vouched: bool = False,
        parsed: Parsed | None = None,
        hints: Hints = NO_HINTS,
    ) -> tuple[Prepared, Entry | None]:
        prepared = self.resolver.resolve(raw_path, accept, signed_ok=vouched, parsed=parsed, hints=hints)
        return prepared, self.store.lookup(prepared.key)

    def hot(self, raw_path: str, accept: str | None, hints: Hints = NO_HINTS) -> Delivered | None:
        """The derivative when both its preparation and its bytes are in this process's memory, else None
        (then ``deliver``). Never blocks; the caller runs ``store.record_uses`` in a thread when
        ``store.uses_pending``, after answering."""
        prepared = self.resolver.memoised(raw_path, accept, hints)
        entry = self.store.cached(prepared.key) if prepared is not None else None
        if prepared is None or entry is None:
            return None
        return delivered(prepared, entry)


def delivered(prepared: Prepared, entry: Entry) -> Delivered:
    """How ``entry`` answers the request ``prepared`` stands for."""
    # A default image standing in for a missing original: Cloudinary warns in X-Cld-Error on such a
    # success too (prepared.warning).
    # Vary names what chose among this URL's answers: Accept for f_auto, the Client Hints that settled
    # w_auto and dpr_auto.
    vary = ", ".join((*(("Accept",) if prepared.choice.vary else ()), *prepared.hinted)) or None
    return Delivered(entry, vary, prepared.versioned, prepared.warning, prepared.attachment,
                     bool(prepared.hinted))  # fmt: skip
