"""Background removal over HTTP: 423 then 200, one inference per source, leases, failures, back-pressure.

The segmenter is a deterministic double here; tests/app/test_app_server.py runs the real model.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import pyvips

from cache import DerivativeCache, Entry
from cutout.generate import Generator
from grammar import parse_path
from grammar.errors import Overloaded
from tests.app.helpers import ClientFactory, EllipseSegmenter, metric, wait_for_200
from transform.seam import Mask

CUTOUT = "/demo/image/upload/e_background_removal/docs/rmv_bgd/dog_couch_orig"


def test_423_then_200_with_transparency(client: Any, stub: EllipseSegmenter) -> None:
    first = client.get(CUTOUT)
    assert first.status_code == 423
    assert first.headers["retry-after"].isdigit()
    assert first.headers["cache-control"] == "no-store"
    assert "generated" in first.headers["x-cld-error"]
    done = wait_for_200(client, CUTOUT)
    assert done.status_code == 200
    # A cut-out of a JPEG has transparency, so it comes back as PNG.
    assert done.headers["content-type"] == "image/png"
    image = pyvips.Image.new_from_buffer(done.content, "")
    assert (image.width, image.height, image.bands) == (451, 300, 4)
    assert image.extract_band(3).getpoint(5, 5) == [0.0]
    assert image.extract_band(3).getpoint(225, 150) == [255.0]
    assert stub.calls == 1


def test_one_mask_serves_every_size(client: Any, stub: EllipseSegmenter) -> None:
    for width in (400, 200, 100):
        url = f"/demo/image/upload/e_background_removal/c_scale,w_{width}/docs/rmv_bgd/dog_couch_orig.png"
        response = wait_for_200(client, url)
        assert response.status_code == 200
        assert pyvips.Image.new_from_buffer(response.content, "").width == width
    assert stub.calls == 1


class OtherModel(EllipseSegmenter):
    """Another model (or another pre/post-processing version): a circle of half the size."""

    model_id = "test-circle-2"

    def segment(self, image: pyvips.Image, *, fine_edges: bool) -> Mask:
        self.calls += 1
        xy = pyvips.Image.xyz(image.width, image.height)
        r = ((xy[0] - image.width / 2) ** 2 + (xy[1] - image.height / 2) ** 2) ** 0.5
        return Mask((r < image.height * 0.2).ifthenelse(255, 0).cast("uchar"), 0.9)


def test_another_model_makes_new_cutouts(make_client: ClientFactory, stub: EllipseSegmenter) -> None:
    """A derivative that removed the background depends on the model: after a model change (same
    cache) it is generated again, while derivatives without background removal stay cached."""
    plain = "/demo/image/upload/c_scale,w_100/docs/rmv_bgd/dog_couch_orig"
    first = make_client()
    before = wait_for_200(first, CUTOUT)
    assert first.get(plain).status_code == 200 and stub.calls == 1
    other = OtherModel()
    second = make_client(segmenter=other)
    assert second.get(CUTOUT).status_code == 423
    after = wait_for_200(second, CUTOUT)
    assert after.status_code == 200 and other.calls == 1 and after.content != before.content
    alpha = pyvips.Image.new_from_buffer(after.content, "").extract_band(3)
    assert alpha.getpoint(225 + 80, 150) == [0.0]  # outside the circle, inside the old ellipse
    hits = metric(second, "cutout_cache_hits_total")
    assert second.get(plain).status_code == 200
    assert metric(second, "cutout_cache_hits_total") == hits + 1


def test_burst_of_50_requests_runs_the_model_once(make_client: ClientFactory, stub: EllipseSegmenter) -> None:
    client = make_client()
    before = metric(client, "cutout_inference_total")
    app = client.app
    statuses: list[int] = []

    async def burst() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            async def one() -> None:
                statuses.append((await http.get(CUTOUT)).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(50):
                    group.start_soon(one)

    anyio.run(burst)
    assert len(statuses) == 50 and set(statuses) <= {200, 423}
    assert wait_for_200(client, CUTOUT).status_code == 200
    assert stub.calls == 1
    assert metric(client, "cutout_inference_total") == before + 1


def test_a_dead_owners_claim_expires(client: Any, stub: EllipseSegmenter) -> None:
    service = client.app.state.service
    key = service.resolver.prepare(parse_path(CUTOUT), accept=None).key
    assert service.coordinator.claim(key, "a-worker-that-was-killed", lease=1.0)
    assert metric(client, "cutout_claims_active") == 1, "the coordinator's depth is in /metrics"
    assert client.get(CUTOUT).status_code == 423
    time.sleep(0.3)
    assert client.get(CUTOUT).status_code == 423
    assert stub.calls == 0, "nobody may generate while the lease holds"
    time.sleep(1.0)
    assert wait_for_200(client, CUTOUT).status_code == 200
    assert stub.calls == 1


def test_failures_are_reported_and_not_retried(make_client: ClientFactory, tmp_path: Any) -> None:
    root = tmp_path / "originals"
    root.mkdir()
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG" * 20)
    client = make_client(originals=root)
    scheduler = client.app.state.service.scheduler
    calls = []
    real = scheduler.render_entry

    def counting(prepared: Any) -> Any:
        calls.append(prepared.key)
        return real(prepared)

    scheduler.render_entry = counting
    url = "/demo/image/upload/e_background_removal/broken"
    first = client.get(url)
    assert first.status_code in (423, 422)
    response = wait_for_200(client, url)
    assert response.status_code == 422
    for _ in range(3):
        again = client.get(url)
        assert again.status_code == 422 and again.headers["x-cld-error"] == response.headers["x-cld-error"]
    assert len(calls) == 1


def test_full_queue_answers_503_at_once(make_client: ClientFactory) -> None:
    client = make_client(segmenter=EllipseSegmenter(delay=1.5), queue_size=1)
    assert client.get(CUTOUT).status_code == 423
    router = "/demo/image/upload/e_background_removal/docs/rmv_bgd/router_orig"
    other = client.get(router)
    assert other.status_code == 503
    assert other.headers["retry-after"].isdigit()
    assert other.headers["cache-control"] == "no-store"
    assert wait_for_200(client, CUTOUT).status_code == 200
    assert wait_for_200(client, router).status_code == 200


def test_wait_seconds_answers_200_on_the_first_request(make_client: ClientFactory) -> None:
    client = make_client(wait_seconds=20)
    assert client.get(CUTOUT).status_code == 200


def test_an_unreadable_stored_cut_out_is_generated_again(make_client: ClientFactory) -> None:
    """A value cut short (crash, full disk) is a miss to lookups; the claim must not take it for a
    result, or every request answers 423 for ever."""
    first = make_client()
    good = wait_for_200(first, CUTOUT)
    assert good.status_code == 200
    cache = DerivativeCache(first.app.state.service.settings.cache_dir)
    key = first.app.state.service.resolver.prepare(parse_path(CUTOUT), accept=None).key
    raw = cache.blobs.get(key)
    cache.blobs.set(key, raw[: len(raw) // 2])
    restarted = make_client()  # a fresh process: nothing in memory
    again = wait_for_200(restarted, CUTOUT, timeout=10)
    assert again.status_code == 200 and again.content == good.content
    assert cache.get(key) is not None


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[DerivativeCache]:
    store = DerivativeCache(tmp_path / "cache")
    yield store
    store.close()


@pytest.fixture
def make_generator(cache: DerivativeCache) -> Iterator[Callable[..., Generator]]:
    made: list[Generator] = []

    def make(**changes: Any) -> Generator:
        options: dict[str, Any] = {"workers": 1, "queue_size": 4, "lease": 30.0, "failure_ttl": 30.0}
        made.append(Generator(cache, cache, **{**options, **changes}))
        return made[-1]

    yield make
    for generator in made:
        generator.close()


def _png(data: bytes) -> Callable[[], Entry]:
    return lambda: Entry.of(data, format="png")


def _blocked(gate: threading.Event) -> Callable[[], Entry]:
    def job() -> Entry:
        assert gate.wait(10)
        return Entry.of(b"slow", format="png")

    return job


def test_submit_generates_over_an_unreadable_value(
    cache: DerivativeCache, make_generator: Callable[..., Generator]
) -> None:
    cache.blobs.set("k", Entry.of(b"abcdef", format="png").pack()[:-2])
    assert make_generator().submit("k", _png(b"abcdef"))


def test_a_job_that_just_failed_is_not_run_again(
    cache: DerivativeCache, make_generator: Callable[..., Generator]
) -> None:
    """A request that looked before the failure was remembered, and claims after the job released its
    claim, must not run the model again: the remembered failure is the answer."""
    cache.remember_failure("k", 422, "Image cannot be decoded", ttl=30)
    assert not make_generator().submit("k", _png(b"abcdef"))
    assert not cache.claimed("k") and cache.get("k") is None


def test_close_gives_back_the_claims_of_queued_and_running_jobs(
    cache: DerivativeCache, make_generator: Callable[..., Generator]
) -> None:
    """Shutdown cancels queued jobs and abandons running ones; the claims of both must go with them, or
    after a restart (or on another process) their URLs answer 423 until the lease runs out. A running
    job that ends afterwards stores nothing: its claim is somebody else's to take now."""
    gate, started = threading.Event(), threading.Event()

    def running() -> Entry:
        started.set()
        return _blocked(gate)()

    generator = make_generator(queue_size=2)
    try:
        assert generator.submit("running", running)
        assert generator.submit("queued", _png(b"q"))
        assert started.wait(10)
        generator.close()
        assert not cache.claimed("queued")
        assert not cache.claimed("running"), "a running job's claim must be given back at close"
        restarted = make_generator()
        assert restarted.submit("running", _blocked(gate)), "another process generates it at once"
    finally:
        gate.set()
    deadline = time.monotonic() + 10
    while cache.get("running") is None:  # the restarted one's job
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert make_generator().submit("queued", _png(b"q")), "a restarted process can generate it"


def test_a_job_ending_after_close_keeps_nothing(
    cache: DerivativeCache, make_generator: Callable[..., Generator]
) -> None:
    gate, ended = threading.Event(), threading.Event()
    generator = make_generator()
    assert generator.submit("k", _blocked(gate))
    assert generator.when_done("k", lambda failed: ended.set())
    generator.close()
    gate.set()
    assert ended.wait(10)
    assert cache.get("k") is None and not cache.claimed("k") and cache.failure("k") is None


class StorageDownOnce(EllipseSegmenter):
    """The model's run fails as a job does when the shared storage stops answering meanwhile (a 503 with
    Retry-After, ``StorageUnavailable``), then works."""

    def segment(self, image: pyvips.Image, *, fine_edges: bool) -> Mask:
        if self.calls == 0:
            self.calls += 1
            from cache.s3 import StorageUnavailable

            raise StorageUnavailable()
        return super().segment(image, fine_edges=fine_edges)


def test_a_generation_failed_by_the_storage_is_told_to_its_waiters_and_only_backed_off_from(
    make_client: ClientFactory,
) -> None:
    """Not the image's failure: remembered, it answered 503 for CUTOUT_FAILURE_SECONDS (30 s here) after
    the storage was back. The request that waited hears it; the back-off (1 s) answers it meanwhile, with
    that Retry-After; the next request after it generates."""
    model = StorageDownOnce()
    client = make_client(segmenter=model, wait_seconds=20, failure_seconds=30)
    failed = client.get(CUTOUT)
    assert failed.status_code == 503, failed.text
    assert failed.headers["retry-after"] == "2"  # the storage's, not the 30 s of a remembered failure
    assert "Storage is unavailable" in failed.headers["x-cld-error"]
    service = client.app.state.service
    key = service.resolver.prepare(parse_path(CUTOUT), accept=None).key
    assert not service.coordinator.claimed(key)
    meanwhile = client.get(CUTOUT)
    assert meanwhile.status_code == 503 and meanwhile.headers["retry-after"] == "1"
    time.sleep(1.1)
    again = client.get(CUTOUT)
    assert again.status_code == 200 and again.headers["content-type"] == "image/png"
    assert model.calls == 2


def test_a_crashing_generation_backs_off_and_runs_again_after_it(make_client: ClientFactory) -> None:
    """A pipeline that crashes every time runs the model once per back-off (1 s, then 2 s...), not once
    per request: meanwhile the crash is answered again (500, nothing stored). Its waiters hear it too."""

    class Crashing(EllipseSegmenter):
        crashing = True

        def segment(self, image: pyvips.Image, *, fine_edges: bool) -> Mask:
            if self.crashing:
                self.calls += 1
                raise RuntimeError("out of device memory")
            return super().segment(image, fine_edges=fine_edges)

    model = Crashing()
    client = make_client(segmenter=model, wait_seconds=20)
    for runs, backoff in ((1, 1.0), (2, 2.0)):
        crashed = client.get(CUTOUT)  # waits for the run, which crashes: told to its waiter
        assert crashed.status_code == 500 and crashed.headers["x-cld-error"] == "Internal error"
        again = client.get(CUTOUT)  # within the back-off: answered again, the model not run
        assert again.status_code == 500 and again.headers["x-cld-error"] == "Internal error"
        assert model.calls == runs
        time.sleep(backoff + 0.1)
    model.crashing = False
    assert client.get(CUTOUT).status_code == 200 and model.calls == 3


def test_a_success_ends_the_back_off_of_a_generation(
    cache: DerivativeCache, make_generator: Callable[..., Generator]
) -> None:
    """Crashes in a row back off 1 s, 2 s, 4 s...; one success and the next crash backs off 1 s again."""
    generator = make_generator()
    runs: list[str] = []

    def crash() -> Entry:
        runs.append("crash")
        raise RuntimeError("segfault in a native library")

    def ran(job: Callable[[], Entry]) -> bool:
        """Whether ``job`` ran (it is not remembered as failing); waits for its end."""
        before = len(runs)
        if not generator.submit("k", job):
            return False
        deadline = time.monotonic() + 10
        while cache.claimed("k"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return len(runs) > before

    def succeed() -> Entry:
        runs.append("ok")
        return Entry.of(b"ok", format="png")

    assert ran(crash) and not ran(crash)  # backs off 1 s
    failure = cache.failure("k")
    assert failure is not None and failure.status == 500
    time.sleep(1.1)
    assert ran(crash) and not ran(crash)  # 2 s now
    time.sleep(2.1)
    assert ran(succeed) and cache.get("k") is not None and cache.failure("k") is None
    cache.blobs.delete("k")  # evicted: made again, and this time it crashes
    assert ran(crash) and not ran(crash)
    time.sleep(1.1)  # 1 s again, not 4 s
    assert ran(crash)
    assert runs == ["crash", "crash", "ok", "crash", "crash"]


def _submit_until_queued(generator: Generator, key: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return generator.submit(key, _png(b"ok"))
        except Overloaded:
            time.sleep(0.02)
    return False


def test_a_failed_release_gives_the_queue_slot_back(
    cache: DerivativeCache, make_generator: Callable[..., Generator], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = cache.release

    def full_disk(key: str, owner: str) -> None:
        if key == "bad":
            raise sqlite3.OperationalError("database or disk is full")
        real(key, owner)

    monkeypatch.setattr(cache, "release", full_disk)
    generator = make_generator(queue_size=1)
    assert generator.submit("bad", _png(b"bad"))
    assert _submit_until_queued(generator, "good"), "the slot of the failed release never came back"


def test_renewal_survives_a_database_error(
    cache: DerivativeCache, make_generator: Callable[..., Generator], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = cache.renew
    calls: list[str] = []
    renewed_after_error = threading.Event()

    def locked_once(key: str, owner: str, *, lease: float) -> bool:
        calls.append(key)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        renewed = real(key, owner, lease=lease)
        renewed_after_error.set()
        return renewed

    monkeypatch.setattr(cache, "renew", locked_once)
    gate = threading.Event()
    generator = make_generator(lease=0.6)
    try:
        assert generator.submit("k", _blocked(gate))
        assert renewed_after_error.wait(5), "the renewer thread died with the first error"
        assert cache.claimed("k")
    finally:
        gate.set()
