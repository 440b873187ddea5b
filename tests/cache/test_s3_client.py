"""The S3 client's bounds, against a storage that accepts connections and never answers (a stalled or
stopped server: the kernel still completes the handshake): what CUTOUT_S3_TIMEOUT promises."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import require


class Silent:
    """A TCP server that reads requests and never answers; counts the requests it was sent."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests = 0
        self.lock = threading.Lock()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        try:
            while data := connection.recv(65536):
                with self.lock:
                    self.requests += data.count(b" HTTP/1.1\r\n")
        except OSError:
            return

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


def test_a_storage_that_never_answers_gets_two_tries_of_the_timeout(silent: Silent,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tries in all, as the README says ("at most two tries of 5 s"): botocore's ``max_attempts``
    counts retries after the first (three tries), ``total_max_attempts`` the tries."""
    try:
        from botocore.exceptions import ReadTimeoutError

        from cache.s3 import client
    except ImportError:
        require(False, "boto3 not installed (pip install 'cutout[scale]')")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = client(silent.endpoint, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        s3.head_object(Bucket="bucket", Key="originals/road.jpg")
    took = time.monotonic() - started
    time.sleep(0.1)  # the last request's bytes reach the counter
    assert silent.requests == 2
    assert took < 2 * 0.3 + 1.5  # two timeouts and botocore's backoff between them (at most 1 s)
