"""Fixtures for the server tests: the real app over the sample originals, with a deterministic
segmenter double (the real model runs in the tests marked slow)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cutout.app import create_app
from cutout.settings import Settings
from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(originals=SAMPLES, cache_dir=tmp_path / "cache", render_threads=2, lease_seconds=5)


@pytest.fixture
def stub() -> EllipseSegmenter:
    return EllipseSegmenter(delay=0.2)


@pytest.fixture
def make_client(settings: Settings, stub: EllipseSegmenter) -> Iterator[ClientFactory]:
    clients: list[TestClient] = []

    def make(segmenter: Any = stub, **changes: Any) -> TestClient:
        app = create_app(replace(settings, **changes), segmenter=segmenter, load_model=False)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()
