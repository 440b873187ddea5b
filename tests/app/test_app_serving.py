"""The HTTP protocol `cutout serve` runs (cutout/serving.py): httptools with a request-header size limit
(431) and a header timeout (408), each closing the connection; before, uvicorn took a 400 MB header line
and kept slowloris connections for ever. Served by a real uvicorn on loopback, as `cutout serve` does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from cutout.serving import GuardedHttpToolsProtocol
from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess, free_port

MAX_BYTES, TIMEOUT = 8192, 0.6


class Limited(GuardedHttpToolsProtocol):
    @classmethod
    def limits(cls) -> tuple[int, float]:
        return MAX_BYTES, TIMEOUT


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    size = 0
    while True:  # the whole body, counted
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = f"ok {size}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    chosen = free_port()
    config = uvicorn.Config(hello, host="127.0.0.1", port=chosen, http=Limited, log_level="warning",
                            lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield chosen
    server.should_exit = True
    thread.join(20)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (a reset, when it closed with bytes of ours
    unread, ends it too: the kernel may then drop what it had sent)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        chunks.append(b"<reset>")
    return b"".join(chunks)


def test_an_ordinary_request_with_a_large_body_passes(port: int) -> None:
    body = b"x" * 300_000  # in the same reads as the headers: never counted against their limit
    with connect(port) as sock:
        head = b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 300000\r\n\r\n"
        sock.sendall(head + body)
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"ok 300000\n")


def test_headers_past_the_limit_are_a_431(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
    assert b"over 8192 bytes" in reply


@pytest.mark.parametrize(("extra", "status"), [(0, b"200"), (1, b"431")])
def test_the_limit_is_exact_with_a_body_in_the_same_read(port: int, extra: int, status: bytes) -> None:
    start = b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 5\r\nX-Pad: "
    head = start + b"p" * (MAX_BYTES - len(start) - 4 + extra) + b"\r\n\r\n"
    assert len(head) == MAX_BYTES + extra
    with connect(port) as sock:
        sock.sendall(head + b"hello")
        assert answer(sock).startswith(b"HTTP/1.1 " + status)


def test_a_header_that_never_ends_is_cut_off(port: int) -> None:
    """Sent on and on (it was buffered whole: +500 MB for a 400 MB line): the server stops reading at
    the limit and closes, and goes on serving others."""
    sent = 0
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ")
        try:
            while sent < 50_000_000:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        reply = answer(sock)
    assert sent < 50_000_000 and (reply.startswith(b"HTTP/1.1 431") or reply == b"<reset>")
    test_an_ordinary_request_with_a_large_body_passes(port)


def test_a_long_url_is_counted_too(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 431")


def test_slow_headers_are_a_408(port: int) -> None:
    """Slowloris: a header line now and then, never the blank line that ends them."""
    with connect(port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        for _ in range(20):
            try:
                sock.sendall(b"X-A: b\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            if time.monotonic() - started > TIMEOUT + 0.5:
                break
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout")
    assert time.monotonic() - started < TIMEOUT + 2


def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    with connect(port) as sock:
        started = time.monotonic()
        assert answer(sock).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < TIMEOUT + 2


def test_the_next_request_on_a_kept_alive_connection_is_timed_too(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(TIMEOUT + 0.2)  # idle between requests: uvicorn's keep-alive timer (5 s), not ours
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # then a request that never ends its headers
        assert answer(sock).startswith(b"HTTP/1.1 408")


def test_cutout_serve_runs_it_with_its_settings(servers: list[ServerProcess], tmp_path: Path) -> None:
    server = ServerProcess(SAMPLES, tmp_path / "cache", env={
        "CUTOUT_BACKGROUND_REMOVAL": "0", "CUTOUT_MAX_HEADER_BYTES": "4K", "CUTOUT_HEADER_TIMEOUT": "1",
        "CUTOUT_MAX_CONNECTIONS": "2",
    })  # fmt: skip
    servers.append(server)
    server.wait_ready()
    with connect(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 431")
    with connect(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 408")
    with connect(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 200")
    with connect(server.port), connect(server.port) as sock:  # one connection held open: 2 with this
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 503")  # CUTOUT_MAX_CONNECTIONS
