"""Requests for the same uncached URL at once share one render in the process (a CDN's miss storm): one
render, the same bytes to all, each client's leaving ends only its own wait, the last one's stops it."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cutout.settings import Settings
from tests.app.helpers import (
    HEAVY,
    ClientFactory,
    EllipseSegmenter,
    asgi_get,
    client_factory,
    metric,
    noisy_originals,
)
from tests.conftest import live_images

#: A render of a few tenths of a second: long enough for a client to leave while it runs.
MEDIUM = "e_blur:2000/e_blur:2000/c_scale,w_600"


@pytest.fixture
def originals(tmp_path: Path) -> Path:
    return noisy_originals(tmp_path / "originals")


@pytest.fixture
def make_client(tmp_path: Path, originals: Path) -> Any:
    settings = Settings(originals=originals, cache_dir=tmp_path / "cache", render_threads=2,
                        render_timeout=0.0)
    yield from client_factory(settings, EllipseSegmenter())


async def get(app: Any, path: str, leave_after: float | None) -> tuple[int, bytes]:
    """``asgi_get``'s answer as (status, body); status 0 when nothing was sent."""
    sent = await asgi_get(app, path, leave_after)
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), 0)
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def at_once(client: TestClient, path: str, leave_after: list[float | None]) -> list[tuple[int, bytes]]:
    """One request of ``path`` per item of ``leave_after``, all at once."""

    async def all_of_them() -> list[tuple[int, bytes]]:
        return list(await asyncio.gather(*(get(client.app, path, after) for after in leave_after)))

    assert client.portal is not None
    return client.portal.call(all_of_them)


def images_left(before: int, seconds: float = 10.0) -> int:
    """``live_images()`` over ``before`` once the render's thread has let go of its frames (just after it
    handed back the error), or when ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while (left := live_images() - before) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def renders(client: TestClient) -> float:
    return metric(client, "cutout_render_seconds_count")


def test_identical_requests_at_once_share_one_render_and_get_the_same_bytes(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    before, shared = renders(client), metric(client, "cutout_renders_shared_total")
    answers = at_once(client, "/demo/image/upload/c_scale,w_300/e_sharpen/big.jpg", [None] * 8)
    assert [status for status, _ in answers] == [200] * 8
    assert len({body for _, body in answers}) == 1 and answers[0][1][:2] == b"\xff\xd8"
    assert renders(client) == before + 1
    assert metric(client, "cutout_renders_shared_total") == shared + 7
    # Stored once: asked again, it is a hit (no render).
    assert client.get("/demo/image/upload/c_scale,w_300/e_sharpen/big.jpg").content == answers[0][1]
    assert renders(client) == before + 1


def test_different_urls_at_once_are_rendered_each(make_client: ClientFactory) -> None:
    client = make_client()
    before = renders(client)

    async def both() -> list[tuple[int, bytes]]:
        return list(await asyncio.gather(get(client.app, "/demo/image/upload/c_scale,w_200/big.jpg", None),
                                         get(client.app, "/demo/image/upload/c_scale,w_201/big.jpg", None)))

    assert client.portal is not None
    assert [status for status, _ in client.portal.call(both)] == [200, 200]
    assert renders(client) == before + 2


def test_one_client_leaving_does_not_stop_the_render_others_wait_for(make_client: ClientFactory) -> None:
    client = make_client()
    shared = metric(client, "cutout_renders_shared_total")
    stopped = metric(client, "cutout_renders_stopped_total")
    (left, _), (stayed, body) = at_once(client, f"/demo/image/upload/{MEDIUM}/big.jpg", [0.05, None])
    assert left == 499  # its own wait ended at once (the client will not read the answer anyway)
    assert stayed == 200 and body[:2] == b"\xff\xd8"
    assert metric(client, "cutout_renders_stopped_total") == stopped
    # One render, which the second request joined. (Not cutout_render_seconds_count: the metrics are the
    # process's, and a render an earlier test left running may finish meanwhile.)
    assert metric(client, "cutout_renders_shared_total") == shared + 1


def test_the_render_stops_when_every_client_waiting_for_it_has_left(make_client: ClientFactory) -> None:
    client = make_client()
    path = f"/demo/image/upload/{HEAVY}/big.jpg"
    stopped = metric(client, "cutout_renders_stopped_total")
    answers = at_once(client, path, [0.1, 0.3, 0.2])
    assert [status for status, _ in answers] == [499, 499, 499]
    assert metric(client, "cutout_renders_stopped_total") == stopped + 1  # one render, stopped once
    service = client.app.state.service
    key = service.resolver.resolve(path, None).key
    assert service.store.blobs.get(key) is None and service.coordinator.failure(key) is None
    # A later request renders afresh (it does not join the stopped render); its client leaves too.
    assert [status for status, _ in at_once(client, path, [0.1])] == [499]
    assert metric(client, "cutout_renders_stopped_total") == stopped + 2


def test_an_error_reaches_every_request_and_is_remembered_once(make_client: ClientFactory) -> None:
    client = make_client(render_timeout=0.3)
    before = metric(client, "cutout_renders_stopped_total")
    answers = at_once(client, f"/demo/image/upload/{HEAVY}/big.jpg", [None] * 4)
    assert [status for status, _ in answers] == [503] * 4
    assert len({body for _, body in answers}) == 1
    assert metric(client, "cutout_renders_stopped_total") == before + 1


def test_a_shared_render_past_its_budget_leaves_no_image_for_the_garbage_collector(
    make_client: ClientFactory,
) -> None:
    """The error every waiter raises holds the render's frames: nothing may close a cycle through them
    (the images of a stopped 27 MP render with 30 layers were GBs, held until a full collection)."""
    client = make_client(render_timeout=0.3)
    at_once(client, "/demo/image/upload/c_scale,w_50/big.jpg", [None])  # the app's own first-use objects
    gc.collect()
    before = live_images()
    gc.disable()
    try:
        answers = at_once(client, f"/demo/image/upload/l_big/{HEAVY}/fl_layer_apply/big.jpg", [None] * 3)
        left = images_left(before)
    finally:
        gc.enable()
    assert [status for status, _ in answers] == [503] * 3
    assert left <= 0


def test_a_render_every_client_left_leaves_no_image_for_the_garbage_collector(
    make_client: ClientFactory,
) -> None:
    """No waiter re-raises the error of a render stopped because its clients left (ClientGone): anyio's
    frame that awaited the render thread held that error's future while the error's traceback held the
    frame, a cycle that kept the stopped render's images (QA soak: 144 MB of libvips memory on an idle
    server) until a full collection."""
    client = make_client()
    at_once(client, "/demo/image/upload/c_scale,w_50/big.jpg", [None])  # the app's own first-use objects
    gc.collect()
    before = live_images()
    gc.disable()
    try:
        answers = at_once(client, f"/demo/image/upload/l_big/{HEAVY}/fl_layer_apply/big.jpg", [0.2, 0.3])
        left = images_left(before)
    finally:
        gc.enable()
    assert [status for status, _ in answers] == [499, 499]
    assert left <= 0
