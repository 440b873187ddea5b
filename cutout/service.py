"""The request flow, shared by the HTTP app and ``cutout eager``:
parse -> authorise -> plan -> key -> cache hit / render now / claim and queue (423).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread

import transform
from cache import DerivativeCache, Entry, Fingerprints, derivative_key
from cutout import metrics
from cutout.generate import Generator
from cutout.masks import CachedMasks
from cutout.memory import BoundedDict, MemoryEntries, Stamps, stamps, unchanged
from cutout.originals import Originals
from cutout.settings import Settings, SettingsError
from grammar import DeliveryPath, parse_path, parse_transformation, verify_delivery
from grammar.errors import (
    BadRequest,
    NotAvailable,
    NotFound,
    OriginError,
    Overloaded,
    StillGenerating,
    TooLarge,
    Unauthorized,
    Undecodable,
)
from transform.seam import Segmenter

log = logging.getLogger("cutout.service")

#: URL plus Accept header longer than this are not memoised (a client could fill the table with huge ones).
MAX_MEMO_TEXT = 2048

_BY_STATUS: Mapping[int, type[OriginError]] = {
    400: BadRequest, 401: Unauthorized, 404: NotFound, 413: TooLarge, 422: Undecodable, 501: NotAvailable,
}


@dataclass(frozen=True)
class Prepared:
    """Everything needed to find or make one derivative."""

    key: str
    plan: transform.Plan
    source: Path
    source_key: str
    choice: transform.FormatChoice
    public_id: str
    versioned: bool
    #: The original's and layers' file stamps, taken before their fingerprints: while they hold, the
    #: files are the ones the key names, and a result may be stored under it.
    files: Stamps

    @property
    def allow_name(self) -> str:
        return f"{self.plan.canonical}|{self.public_id}"


@dataclass(frozen=True)
class Delivered:
    entry: Entry
    vary: bool
    versioned: bool


def check_transformations(settings: Settings) -> tuple[str, ...]:
    """Compile named and allowed transformations at start-up; returns the allowed canonical forms."""
    for name, text in settings.named.items():
        try:
            transform.compile_plan(parse_transformation(text), named=settings.named)
        except OriginError as exc:
            raise SettingsError(f"CUTOUT_NAMED_TRANSFORMATIONS: t_{name} = {text!r}: {exc.public}") from None
    allowed = []
    for text in settings.allowed_transformations:
        try:
            allowed.append(transform.compile_plan(parse_transformation(text), named=settings.named).canonical)
        except OriginError as exc:
            raise SettingsError(f"CUTOUT_ALLOWED_TRANSFORMATIONS: {text!r}: {exc.public}") from None
    return tuple(allowed)


def failure_error(status: int, message: str) -> OriginError:
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls(message)
    error = OriginError(message)
    error.status = status
    return error


class Origin:
    def __init__(self, settings: Settings, cache: DerivativeCache, *, segmenter: Segmenter | None) -> None:
        originals, _ = settings.require_paths()
        self.settings = settings
        self.cache = cache
        self.originals = Originals(originals)
        self.fingerprints = Fingerprints()
        self.allowed = frozenset(check_transformations(settings))
        self.use_segmenter(segmenter)
        self.limits = transform.Limits(max_pixels=settings.max_pixels)
        self.generator = Generator(cache, workers=settings.model_workers, queue_size=settings.queue_size,
                                   lease=settings.lease_seconds, failure_ttl=settings.failure_seconds)
        self._limiter: anyio.CapacityLimiter | None = None
        self._inflight = 0
        self._hot: BoundedDict[tuple[str, str | None], tuple[Prepared, float]] = BoundedDict(4096)
        self._memory = MemoryEntries(settings.memory_cache)

    def use_segmenter(self, segmenter: Segmenter | None) -> None:
        self.segmenter = segmenter
        self.masks = CachedMasks(segmenter, self.cache) if segmenter is not None else None

    def close(self) -> None:
        self.generator.close()

    def prepare_hot(self, raw_path: str, accept: str | None) -> Prepared:
        """``prepare`` memoised for repeated URLs: a hit then costs one ``stat`` per file it uses.

        Only successful preparations are remembered, and checks depend only on the URL and the
        settings, so reuse is safe; the stamps catch changed originals and the short life catches
        a new original that would now resolve first.
        """
        known = self._known(raw_path, accept)
        if known is not None:
            return known
        prepared = self.prepare(parse_path(raw_path), accept=accept)
        if len(raw_path) + len(accept or "") <= MAX_MEMO_TEXT:  # the table bounds entries, not their size
            self._hot[(raw_path, accept)] = (prepared, time.monotonic() + 2.0)
        return prepared

    def _known(self, raw_path: str, accept: str | None) -> Prepared | None:
        known = self._hot.get((raw_path, accept))
        if known is None or known[1] <= time.monotonic() or not unchanged(known[0].files):
            return None
        return known[0]

    def memory_hit(self, raw_path: str, accept: str | None) -> Delivered | None:
        """The derivative when both its preparation and its bytes are in memory, else None."""
        prepared = self._known(raw_path, accept)
        entry = self._memory.get(prepared.key) if prepared is not None else None
        if prepared is None or entry is None:
            return None
        self._tell_disk(prepared.key)
        return Delivered(entry, prepared.choice.vary, prepared.versioned)

    def _tell_disk(self, key: str) -> None:
        # The shared disk cache evicts least recently used first; hits served from memory must count
        # there too (about once a minute), or the hottest derivatives are the first evicted.
        if self._memory.due(key):
            try:
                self.cache.mark_used(key)
            except Exception:  # noqa: BLE001 - bookkeeping: it must never fail the hit it rides on
                log.exception("recording a use of %s in the disk cache failed", key)

    # -- preparing (sync, cheap) -----------------------------------------------------------------
    def prepare(self, path: DeliveryPath, *, accept: str | None, signed_ok: bool = False) -> Prepared:
        self._check_cloud(path)
        signed = signed_ok or self._check_signature(path)
        plan = transform.compile_plan(path.components, named=self.settings.named)
        source = self.originals.find(path.public_id)
        layer_ids = sorted(plan.layer_ids)
        layer_files = [self._layer_file(lid) for lid in layer_ids]
        files = stamps([str(source), *map(str, layer_files)])  # before the fingerprints: see Prepared
        fingerprint = self.fingerprints.of(source)
        if self.settings.strict and not signed and path.components:
            self._check_strict(path, plan)
        prints = [self.fingerprints.of(f) for f in layer_files]
        layers = ",".join(f"{lid}={fp}" for lid, fp in zip(layer_ids, prints, strict=True))
        choice = transform.negotiate_format(plan, extension=path.extension, accept=accept)
        model = self.segmenter.model_id if plan.needs_segmentation and self.segmenter is not None else ""
        key = derivative_key(plan.canonical, path.public_id, fingerprint, choice.key, layers=layers,
                             model=model)
        return Prepared(
            key, plan, source, fingerprint, choice, path.public_id, path.version is not None, files
        )

    def _check_cloud(self, path: DeliveryPath) -> None:
        wanted = self.settings.cloud_name
        if wanted and path.cloud_name is not None and path.cloud_name != wanted:
            raise NotFound(f"Resource not found - unknown cloud name {path.cloud_name}")

    def _check_signature(self, path: DeliveryPath) -> bool:
        if path.signature is None:
            return False
        if self.settings.api_secret is None:
            raise Unauthorized(f"Signature s--{path.signature}-- cannot be checked: no API secret configured")
        if not verify_delivery(path, self.settings.api_secret):
            raise Unauthorized(f"Invalid signature s--{path.signature}-- for {path.raw_transformation}")
        return True

    def _check_strict(self, path: DeliveryPath, plan: transform.Plan) -> None:
        named_only = all(p.key == "t" for c in path.components for p in c.params)
        if named_only or plan.canonical in self.allowed:
            return
        if self.cache.allowed(f"{plan.canonical}|{path.public_id}"):
            return
        raise Unauthorized(f"Transformation {path.raw_transformation} is not allowed")

    def _layer_file(self, public_id: str) -> Path:
        return self.originals.find(public_id, what="Unknown or invalid referenced image {} of type upload")

    def _layer(self, public_id: str) -> tuple[Path, str]:
        found = self._layer_file(public_id)
        return found, self.fingerprints.of(found)

    # -- rendering (sync, in a worker thread) ------------------------------------------------------
    def render_entry(self, prepared: Prepared) -> Entry:
        started = time.perf_counter()
        masks = None if self.masks is None else self.masks.storing_while(lambda: unchanged(prepared.files))
        rendered = transform.render(
            prepared.plan, prepared.source, source_key=prepared.source_key, choice=prepared.choice,
            load_layer=self._layer, masks=masks, limits=self.limits,
        )
        metrics.render_seconds.observe(time.perf_counter() - started)
        return Entry.of(rendered.data, format=rendered.format, width=rendered.width, height=rendered.height,
                        has_alpha=rendered.has_alpha)

    def produce(self, prepared: Prepared) -> Entry:
        """Render and store, remembering a client-caused failure briefly (eager and cheap renders)."""
        try:
            entry = self.render_entry(prepared)
        except OriginError as exc:
            if self.current(prepared):  # a file rewritten under the render is not the URL's failure
                ttl = self.settings.failure_seconds
                self.cache.remember_failure(prepared.key, exc.status, exc.public, ttl=ttl)
            raise
        if self.current(prepared):
            self.cache.put(prepared.key, entry)
        return entry

    def _generation(self, prepared: Prepared) -> Entry | None:
        """The queued job: None (nothing stored, no failure remembered) when the files changed under it."""
        try:
            entry = self.render_entry(prepared)
        except OriginError:
            if self.current(prepared):
                raise  # remembered by the generator
            return None
        return entry if self.current(prepared) else None

    def current(self, prepared: Prepared) -> bool:
        """Whether the files are still the ones ``prepared.key`` names. An original replaced while its
        render waited or ran gave a result of other content: it is served (it is of the file as it is
        now) but never stored under the old content's key; the next request has the new key."""
        if unchanged(prepared.files):
            return True
        log.info("%s changed while rendering %s; the result is not stored", prepared.public_id, prepared.key)
        return False

    def lookup(self, prepared: Prepared) -> Entry | None:
        entry = self._memory.get(prepared.key)
        if entry is not None:
            self._tell_disk(prepared.key)
            return entry
        entry = self.cache.get(prepared.key)
        if entry is not None:
            self._memory.put(prepared.key, entry)
            return entry
        failure = self.cache.failure(prepared.key)
        if failure is not None:
            raise failure_error(failure.status, failure.message)
        return None

    # -- serving (async) ---------------------------------------------------------------------------
    async def deliver(self, raw_path: str, accept: str | None) -> Delivered:
        prepared = self.prepare_hot(raw_path, accept)
        entry = self.lookup(prepared)
        if entry is not None:
            metrics.cache_hits_total.inc()
        else:
            metrics.cache_misses_total.inc()
            if prepared.plan.needs_segmentation:
                entry = await self._generated(prepared)
            else:
                entry = await self._render_now(prepared)
        return Delivered(entry, prepared.choice.vary, prepared.versioned)

    async def _render_now(self, prepared: Prepared) -> Entry:
        if self._inflight >= self.settings.queue_size:
            raise Overloaded(public="Too many renders in progress; retry later")
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.settings.render_threads)
        self._inflight += 1
        try:
            return await anyio.to_thread.run_sync(self.produce, prepared, limiter=self._limiter)
        finally:
            self._inflight -= 1

    def generate_and_wait(self, prepared: Prepared) -> Entry:
        """A slow derivative made through the same claim the servers use, so that exactly one generation
        runs even while a server on this cache is making it too; waits for whoever holds the claim
        (``cutout eager`` straight into the cache)."""
        while True:
            entry = self.lookup(prepared)  # a remembered failure raises
            if entry is not None:
                return entry
            if not unchanged(prepared.files):
                message = f"{prepared.public_id} changed while it was being generated; run again"
                raise failure_error(409, message)
            if not self.cache.claimed(prepared.key):
                self.generator.submit(prepared.key, partial(self._generation, prepared))
            time.sleep(0.05)

    async def _generated(self, prepared: Prepared) -> Entry:
        if self.masks is None:
            raise NotAvailable("Background removal is not available: no segmentation model")
        deadline = time.monotonic() + self.settings.wait_seconds
        while True:
            # Look first: a remembered failure must be reported, not generated again.
            entry = self.lookup(prepared)
            if entry is not None:
                return entry
            if not unchanged(prepared.files):  # replaced meanwhile: the next request asks for the new key
                raise StillGenerating(self.settings.retry_after)
            if not self.cache.claimed(prepared.key):
                self.generator.submit(prepared.key, partial(self._generation, prepared))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StillGenerating(self.settings.retry_after)
            await anyio.sleep(min(0.05, remaining))
