"""uvicorn's httptools protocol with the two limits it lacks: a request's line and headers must arrive
within ``CUTOUT_HEADER_TIMEOUT`` seconds and within ``CUTOUT_MAX_HEADER_BYTES`` bytes.

Stock uvicorn with httptools took a 400 MB header line (llhttp buffers a header until it ends: +500 MB
of memory) and kept 19,950 connections that sent a header line every few seconds and never finished
(slowloris): its only timer is the keep-alive one, which starts after a response. h11 bounds the size
(``h11_max_incomplete_event_size``) but has no timer either, and is pure Python. This keeps httptools'
speed (bench/RESULTS.md) and adds both: 431 for headers past the limit, 408 for headers too slow, each
closing the connection. Behind nginx (the README's recipe) nginx's own limits come first; these are for
a cutout that is reached directly by mistake, or by a client on the same network.

``cutout serve`` names this class to uvicorn by its import path, so that every worker process (spawned,
with the settings in its environment) builds the same protocol and reads the same two settings.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from transform import variables

#: How ``cutout serve`` names the protocol to uvicorn (``http=``).
IMPORT_PATH = "cutout.serving:GuardedHttpToolsProtocol"
#: The servers (uvicorn's state of each) whose connections a sweep is looking over now.
_SWEPT: weakref.WeakSet[ServerState] = weakref.WeakSet()


@functools.cache
def _limits() -> tuple[int, float]:
    """(CUTOUT_MAX_HEADER_BYTES, CUTOUT_HEADER_TIMEOUT) from this process's environment, once."""
    values = variables.read("server")
    return int(values["CUTOUT_MAX_HEADER_BYTES"]), float(values["CUTOUT_HEADER_TIMEOUT"])


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes, self.header_timeout = self.limits()
        # When the current request began (the connection, or its first byte), until its headers are
        # complete; None after. Its bytes so far, and the last three (a "\r\n\r\n" may be split).
        self._headers_since: float | None = None
        self._header_bytes = 0
        self._tail = b""

    @classmethod
    def limits(cls) -> tuple[int, float]:
        """(largest request line and headers in bytes, seconds they may take); tests override it."""
        return _limits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_since = self.loop.time()  # a connection that never sends a byte is closed too
        if self.server_state not in _SWEPT:
            _SWEPT.add(self.server_state)
            self.loop.call_later(self._sweep_every(), self._sweep)

    # The overrides below run on every request: plain calls of the base class (cheaper than super()),
    # and nothing more than an attribute test once the headers are in (bench/RESULTS.md).
    def data_received(self, data: bytes) -> None:
        if self._headers_since is not None:
            budget = self.max_header_bytes - self._header_bytes
            seen, self._tail = self._tail, data[-3:]
            self._header_bytes += len(data)
            # Over the budget, the read may still hold the end of the headers and a body after it: it
            # fits when the headers do. Checked before llhttp buffers the bytes.
            if len(data) > budget and not self._ends_within(seen + data, len(seen) + budget):
                self._refuse(431, "Request Header Fields Too Large",
                             f"The request line and headers are over {self.max_header_bytes} bytes")
                return
        HttpToolsProtocol.data_received(self, data)

    @staticmethod
    def _ends_within(data: bytes, limit: int) -> bool:
        """Whether the blank line that ends the headers ends within ``data[:limit]``."""
        end = data.find(b"\r\n\r\n", 0, limit)
        return end >= 0

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        # From the request's first byte (an idle connection between requests is keep-alive's to close).
        # Its first read is not counted (it began inside it): at most one read (256 kB) more is held.
        self._headers_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._headers_since, self._header_bytes, self._tail = None, 0, b""
        HttpToolsProtocol.on_headers_complete(self)

    # One timer per server, not one per request: a sweep every second (at most) over its connections
    # costs less than a timer set and cancelled per request (2.4 us each with uvloop), and 20,000 idle
    # connections are 20,000 attribute reads a second, not 20,000 timers.
    def _sweep_every(self) -> float:
        return min(1.0, self.header_timeout / 4)

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            if not isinstance(connection, GuardedHttpToolsProtocol):  # a WebSocket, once upgraded
                continue
            since = connection._headers_since
            if since is not None and now - since > self.header_timeout:
                connection._refuse(408, "Request Timeout",
                                   f"The request line and headers took over {self.header_timeout:g} s")
        if self.connections:
            self.loop.call_later(self._sweep_every(), self._sweep)
        else:  # the next connection starts it again
            _SWEPT.discard(self.server_state)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """Answer ``status`` with a text body and close: no request reached the app."""
        self._headers_since = None
        if self.transport.is_closing():
            return
        body = (message + "\n").encode("ascii")
        head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode("ascii")  # fmt: skip
        self.transport.write(head + body)
        self.transport.close()
