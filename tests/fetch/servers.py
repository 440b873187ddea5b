"""Real HTTP servers on loopback for the fetcher and webhook tests: each path answers with a handler
function, and every request is recorded (so a test can show that a refused address got nothing)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[["RecordingHandler"], None]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: LocalServer


class RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    body: bytes = b""  # the request's body, read before the route runs

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.body = self.rfile.read(length) if length else b""
        owner = self.server.owner
        with owner.lock:
            owner.seen.append(
                Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
        route = owner.routes.get(self.path.split("?")[0])
        try:
            if route is None:
                send(self, 404, b"no such route", "text/plain")
            else:
                route(self)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: that is the point of some tests
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalServer:
    def __init__(self, host: str, tls: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.scheme = "https" if tls else "http"
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        server_class = (
            type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
        )
        self._server = server_class((host, 0), RecordingHandler)
        self._server.owner = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        # A short poll, or every fixture's shutdown waits half a second.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def paths(self) -> list[str]:
        with self.lock:
            return [seen.path for seen in self.seen]


@contextmanager
def serving(host: str, tls: ssl.SSLContext | None = None) -> Iterator[LocalServer]:
    server = LocalServer(host, tls)
    server._thread.start()
    try:
        yield server
    finally:
        server._server.shutdown()
        server._server.server_close()


# -- handlers ---------------------------------------------------------------------------------------------


def send(
    handler: RecordingHandler,
    status: int,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    if content_type is not None:
        handler.send_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def answer(
    status: int, body: bytes, content_type: str | None, headers: dict[str, str] | None = None
) -> Route:
    return lambda handler: send(handler, status, body, content_type, headers)


def redirect(location: str, status: int = 302) -> Route:
    return answer(status, b"", "text/plain", {"Location": location})


def chunked(body: bytes, content_type: str, chunk: int = 16384) -> Route:
    def route(handler: RecordingHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for start in range(0, len(body), chunk):
            part = body[start : start + chunk]
            handler.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    return route


def until_close(body: bytes, content_type: str) -> Route:
    """No Content-Length, no chunking: the body ends when the connection does (HTTP/1.0 style)."""

    def route(handler: RecordingHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True

    return route


def trickle(head: bytes, content_type: str, every: float = 0.1, for_seconds: float = 8.0) -> Route:
    """A slow-loris server: a valid start, then one byte every ``every`` seconds, never finishing in time."""

    def route(handler: RecordingHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(head) + 100_000))
        handler.end_headers()
        handler.wfile.write(head)
        handler.wfile.flush()
        end = time.monotonic() + for_seconds
        while time.monotonic() < end:
            time.sleep(every)
            handler.wfile.write(b"\0")
            handler.wfile.flush()
        handler.close_connection = True

    return route


def stall(seconds: float) -> Route:
    """Accepts the request and says nothing for ``seconds``."""

    def route(handler: RecordingHandler) -> None:
        time.sleep(seconds)
        handler.close_connection = True

    return route
