"""Fixtures for the HTTP API tests: the real app over a copy of the sample originals (the API writes the
images it is sent there), with the deterministic ellipse segmenter."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pyvips
from starlette.testclient import TestClient

from cutout.api import front
from cutout.settings import Settings
from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, client_factory

KEY = "test-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    originals = tmp_path / "originals"
    shutil.copytree(SAMPLES, originals)
    return Settings(
        originals=originals,
        cache_dir=tmp_path / "cache",
        render_threads=2,
        lease_seconds=5,
        api_keys=(KEY,),
        api_wait_seconds=10,
    )


@pytest.fixture
def stub() -> EllipseSegmenter:
    return EllipseSegmenter(delay=0.05)


@pytest.fixture
def make_api(api_settings: Settings, stub: EllipseSegmenter) -> Iterator[ClientFactory]:
    yield from client_factory(api_settings, stub, AUTH)


@pytest.fixture
def api(make_api: ClientFactory) -> TestClient:
    return make_api()


def road() -> bytes:
    return (SAMPLES / "docs" / "road.jpg").read_bytes()


def noise_png(seed: int) -> bytes:
    """About 690 KB that no compression shrinks: two of them do not fit in 1 MB."""
    grey = [pyvips.Image.gaussnoise(480, 480, mean=128, sigma=60, seed=seed + n) for n in range(3)]
    data: bytes = grey[0].bandjoin(grey[1:]).cast("uchar").pngsave_buffer(compression=0)
    return data


def damaged_png() -> bytes:
    """The road as a PNG damaged inside but complete to the check before storing (it ends with IEND):
    stored, then refused by the decoder (a task that fails)."""
    png = bytearray(pyvips.Image.new_from_buffer(road(), "").pngsave_buffer())
    middle = len(png) // 2
    png[middle : middle + 200] = bytes(b ^ 0x55 for b in png[middle : middle + 200])
    return bytes(png)


def finished(client: TestClient, location: str, timeout: float = 20.0) -> dict[str, Any]:
    """The task at ``location`` once it has ended (or as it is at ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = client.get(location).json()
        if task["status"] in ("success", "error") or time.monotonic() > deadline:
            return task
        time.sleep(0.05)


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Whether each POST to one of the API front's faces (``cutout.api.front``) was answered by the front
    (True) or handed to the route (False), in order. Used by tests/adapters too."""
    seen: list[bool] = []
    real = front.RepeatFront.answer

    async def spy(*args: Any) -> Any:
        replay = await real(*args)
        seen.append(replay is None)
        return replay

    monkeypatch.setattr(front.RepeatFront, "answer", spy)
    yield seen
