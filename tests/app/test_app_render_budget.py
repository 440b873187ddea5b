"""The render time budget (CUTOUT_RENDER_TIMEOUT) and renders whose client leaves, through the app."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips
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
    wait_for_200,
)
from tests.app.server_process import ServerProcess


@pytest.fixture
def originals(tmp_path: Path) -> Path:
    return noisy_originals(tmp_path / "originals")


@pytest.fixture
def settings(tmp_path: Path, originals: Path) -> Settings:
    return Settings(originals=originals, cache_dir=tmp_path / "cache", render_threads=2, lease_seconds=5,
                    render_timeout=0.3)


@pytest.fixture
def make_client(settings: Settings) -> Any:
    yield from client_factory(settings, EllipseSegmenter())


def cached(client: TestClient, path: str) -> tuple[bool, Any]:
    """(whether the derivative of ``path`` is stored, the failure remembered for it)."""
    service = client.app.state.service
    prepared = service.resolver.resolve(path, None)
    return service.store.blobs.get(prepared.key) is not None, service.coordinator.failure(prepared.key)


def test_a_render_past_the_budget_answers_503_naming_it_and_the_server_goes_on(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    stopped = metric(client, "cutout_renders_stopped_total")  # (the counters are the process's)
    path = f"/demo/image/upload/{HEAVY}/big"
    response = client.get(path)
    assert response.status_code == 503
    assert response.headers["x-cld-error"].startswith("Rendering stopped at the time limit of 0.3 s")
    assert response.headers["retry-after"] == "30"  # CUTOUT_FAILURE_SECONDS: remembered that long
    assert response.headers["cache-control"] == "no-store"
    assert metric(client, "cutout_renders_stopped_total") == stopped + 1
    stored, failure = cached(client, path)
    assert not stored
    assert failure is not None and failure.status == 503  # asked again meanwhile: answered, not rendered
    again = client.get(path)
    assert again.status_code == 503 and again.headers["retry-after"] == "30"
    assert again.text == response.text
    assert metric(client, "cutout_renders_stopped_total") == stopped + 1
    # The render threads are free: ordinary renders of the same original and of others go on.
    for other in ("c_scale,w_200/big", "e_blur:300/c_crop,w_300,h_200/big", "c_fill,w_120,h_90/docs/road"):
        assert client.get(f"/demo/image/upload/{other}").status_code == 200


def test_an_animation_past_the_budget_is_stopped_too(make_client: ClientFactory, originals: Path) -> None:
    # Each frame runs its own steps (transform/frames.py): the watch owns every frame's work.
    noise = pyvips.Image.gaussnoise(600, 600, mean=128, sigma=40).cast("uchar")
    frames = [(noise.bandjoin([noise, noise]) + 20 * i).cast("uchar") for i in range(4)]  # all different
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", 600)
    strip.write_to_file(str(originals / "noisy.gif"))
    client = make_client()
    response = client.get(f"/demo/image/upload/{HEAVY}/noisy.gif")
    assert response.status_code == 503
    assert response.headers["x-cld-error"].startswith("Rendering stopped at the time limit of 0.3 s")
    assert not cached(client, f"/demo/image/upload/{HEAVY}/noisy.gif")[0]
    small = client.get("/demo/image/upload/c_scale,w_60/noisy.gif")
    assert small.status_code == 200
    assert pyvips.Image.new_from_buffer(small.content, "", n=-1).get("n-pages") == 4


def test_ordinary_renders_are_unchanged_by_the_budget(make_client: ClientFactory) -> None:
    budgeted, unlimited = make_client(render_timeout=30.0), make_client(render_timeout=0.0)
    for text in ("c_scale,w_200", "c_fill,g_auto,w_150,h_150/e_sharpen/f_png",
                 "l_docs:road/c_scale,w_50/fl_layer_apply"):
        url = f"/demo/image/upload/{text}/docs/road"
        one, two = budgeted.get(url), unlimited.get(url)
        assert one.status_code == two.status_code == 200
        assert one.content == two.content


def test_a_models_inference_is_not_counted(make_client: ClientFactory) -> None:
    """The model (here a stand-in taking twice the budget) runs outside it: the cut-out is made."""
    client = make_client(segmenter=EllipseSegmenter(delay=0.6), wait_seconds=5.0)
    response = wait_for_200(client, "/demo/image/upload/e_background_removal/c_scale,w_200/big.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"


def test_a_generation_past_the_budget_fails_for_everyone_waiting(make_client: ClientFactory) -> None:
    client = make_client()
    path = f"/demo/image/upload/e_background_removal/{HEAVY}/big.png"
    response = wait_for_200(client, path)
    assert response.status_code == 503
    assert "time limit of 0.3 s" in response.headers["x-cld-error"]
    assert not cached(client, path)[0]
    light = "/demo/image/upload/e_background_removal/c_scale,w_100/big.png"
    assert wait_for_200(client, light).status_code == 200


def leave_after(client: TestClient, path: str, seconds: float) -> list[dict[str, Any]]:
    """Call ``client``'s app as a server does for a GET of ``path`` whose client closes the connection
    after ``seconds``; the messages the app sent."""
    assert client.portal is not None
    return client.portal.call(asgi_get, client.app, path, seconds)


def test_a_render_whose_client_leaves_is_abandoned(make_client: ClientFactory) -> None:
    client = make_client(render_timeout=0.0)  # no budget: only the client's leaving stops it
    stopped = metric(client, "cutout_renders_stopped_total")
    path = f"/demo/image/upload/{HEAVY}/big"
    sent = leave_after(client, path, 0.2)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [499]
    assert metric(client, "cutout_renders_stopped_total") == stopped + 1
    assert cached(client, path) == (False, None)  # not the URL's failure: nothing remembered
    assert client.get("/demo/image/upload/c_scale,w_200/big").status_code == 200


def test_a_generation_goes_on_when_the_client_that_asked_leaves(make_client: ClientFactory) -> None:
    """Others may wait for it, and the one that asked is told to come back (423): it is never stopped."""
    model = EllipseSegmenter(delay=0.5)
    client = make_client(segmenter=model, wait_seconds=5.0, render_timeout=0.0)
    path = "/demo/image/upload/e_background_removal/c_scale,w_200/big.png"
    sent = leave_after(client, path, 0.1)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200]  # to nobody
    response = client.get(path)
    assert response.status_code == 200 and model.calls == 1


def stopped(base_url: str, reason: str) -> float:
    for line in httpx.get(base_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(f'cutout_renders_stopped_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_real_server_stops_renders_past_the_budget_and_of_clients_that_hung_up(
    servers: list[ServerProcess], tmp_path: Path, originals: Path
) -> None:
    """uvicorn reports the closed connection; the budget stops what runs past it; the server goes on."""
    noise = pyvips.Image.gaussnoise(3000, 3000, mean=128, sigma=40)
    noise.bandjoin([noise.rot90(), noise.rot180()]).cast("uchar").write_to_file(str(originals / "huge.jpg"))
    env = {"CUTOUT_BACKGROUND_REMOVAL": "0", "CUTOUT_RENDER_TIMEOUT": "0.5"}
    server = ServerProcess(originals, tmp_path / "cache", env=env)
    servers.append(server)
    server.wait_ready()
    late = httpx.get(f"{server.url}/demo/image/upload/{HEAVY}/huge", timeout=60)
    assert late.status_code == 503 and "time limit of 0.5 s" in late.headers["x-cld-error"]
    assert stopped(server.url, "time_budget") == 1
    assert httpx.get(f"{server.url}/demo/image/upload/c_scale,w_100/huge").status_code == 200

    with socket.create_connection(("127.0.0.1", server.port)) as hanging:
        hanging.sendall(f"GET /demo/image/upload/e_blur:1999/{HEAVY}/huge HTTP/1.1\r\n"
                        "Host: cutout\r\n\r\n".encode())
        time.sleep(0.1)  # the render has begun; well within its budget, the client hangs up
    deadline = time.monotonic() + 60
    while stopped(server.url, "client_gone") + stopped(server.url, "time_budget") < 2:
        assert time.monotonic() < deadline, "the render was not stopped"
        time.sleep(0.1)
    assert stopped(server.url, "client_gone") == 1  # stopped by the hang-up, not by the budget
    assert httpx.get(f"{server.url}/demo/image/upload/c_scale,w_120/huge").status_code == 200
