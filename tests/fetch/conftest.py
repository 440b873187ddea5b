"""Fixtures of the fetcher tests: an image server on 127.0.0.2 (the one non-public address the policy
allows) and a "victim" on 127.0.0.1 that no refused fetch may reach."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pyvips

from cutout.fetch import FetchPolicy
from tests.fetch.servers import LocalServer, serving

ORIGIN_HOST = "127.0.0.2"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def origin() -> Iterator[LocalServer]:
    with serving(ORIGIN_HOST) as server:
        yield server


@pytest.fixture
def victim() -> Iterator[LocalServer]:
    with serving("127.0.0.1") as server:
        yield server


@pytest.fixture
def policy() -> FetchPolicy:
    """Any host, no private address but the origin's, short timeouts."""
    return FetchPolicy(
        allow=("*",),
        allow_networks=(f"{ORIGIN_HOST}/32",),
        max_bytes=1 << 20,
        connect_timeout=1.0,
        timeout=2.0,
    )


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    data: bytes = pyvips.Image.black(32, 24).jpegsave_buffer()
    return data


@pytest.fixture(scope="session")
def png() -> bytes:
    data: bytes = pyvips.Image.black(8, 8).pngsave_buffer()
    return data
