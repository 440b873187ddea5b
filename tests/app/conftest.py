"""Fixtures for the server tests: the real app over the sample originals, with a deterministic
segmenter double (the real model runs in the tests marked slow)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cutout.settings import Settings
from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, client_factory


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(originals=SAMPLES, cache_dir=tmp_path / "cache", render_threads=2, lease_seconds=5)


@pytest.fixture
def stub() -> EllipseSegmenter:
    return EllipseSegmenter(delay=0.2)


@pytest.fixture
def make_client(settings: Settings, stub: EllipseSegmenter) -> Iterator[ClientFactory]:
    yield from client_factory(settings, stub)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()
