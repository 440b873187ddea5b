"""Helpers for the server tests (importable as tests.app.helpers)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyvips
from starlette.testclient import TestClient

from transform.seam import Mask

ClientFactory = Callable[..., TestClient]


def client_factory(
    settings: Any, stub: Any, headers: dict[str, str] | None = None
) -> Iterator[ClientFactory]:
    """A fixture body: ``make(segmenter=stub, **changes)`` builds an app on ``settings`` with those
    changes and an entered TestClient sending ``headers``; every client is closed at the end."""
    from cutout.app import create_app

    clients: list[TestClient] = []

    def make(segmenter: Any = stub, **changes: Any) -> TestClient:
        app = create_app(replace(settings, **changes), segmenter=segmenter, load_model=False)
        client = TestClient(app, raise_server_exceptions=False, headers=headers)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
SAMPLES = Path(__file__).resolve().parents[2] / "cutout" / "samples"
#: Many seconds of blurring on a 1500 x 1500 original (``noisy_originals``), whatever the machine.
HEAVY = "e_blur:2000/e_blur:2000/e_blur:2000/e_blur:2000/e_blur:2000"


def noisy_originals(folder: Path) -> Path:
    """The samples' ``docs`` and ``big.jpg``, 1500 x 1500 of noise (no cheap decode, slow to blur)."""
    shutil.copytree(SAMPLES / "docs", folder / "docs")
    noise = pyvips.Image.gaussnoise(1500, 1500, mean=128, sigma=40)
    big = noise.bandjoin([noise.rot90(), noise.rot180()]).cast("uchar")
    big.write_to_file(str(folder / "big.jpg"), Q=90)
    return folder


class EllipseSegmenter:
    """Foreground = the centred ellipse. Counts its calls and can be slowed down, or held until ``gate`` is
    set (a test that must act while the model runs, whatever the machine's load)."""

    model_id = "test-ellipse-1"

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.delay = delay
        self.gate = gate
        self.calls = 0
        self._lock = threading.Lock()

    def segment(self, image: pyvips.Image, *, fine_edges: bool) -> Mask:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        if self.gate is not None:
            self.gate.wait(30)
        xy = pyvips.Image.xyz(image.width, image.height)
        dx = (xy[0] - image.width / 2) / (image.width * 0.4)
        dy = (xy[1] - image.height / 2) / (image.height * 0.4)
        inside = (dx * dx + dy * dy) < 1
        return Mask(inside.ifthenelse(255, 0).cast("uchar"), 0.9)


def wait_for_200(client: TestClient, url: str, timeout: float = 30.0, **kwargs: Any) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(url, **kwargs)
        if response.status_code != 423 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def metric(client: TestClient, name: str) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def hang_up(client: TestClient, path: str, headers: dict[str, str], part: bytes, method: str = "POST") -> int:
    """Send ``client``'s app a request whose client goes away after ``part`` of a longer body (the ASGI
    ``http.disconnect`` a server passes on); the status the app answered (None: it sent nothing). The
    app is called as a server calls it, so the ASGI front and every middleware see the request."""
    length = len(part) + 1000
    raw = [(b"host", b"testserver"), (b"content-length", str(length).encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": raw, "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip
    messages = [{"type": "http.request", "body": part, "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if len(messages) > 1 else messages[0]

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    assert client.portal is not None  # an entered client: its app's lifespan ran
    client.portal.call(client.app, scope, receive, send)
    starts = [m["status"] for m in sent if m["type"] == "http.response.start"]
    return int(starts[0]) if starts else 0


async def asgi_get(app: Any, path: str, leave_after: float | None) -> list[dict[str, Any]]:
    """A GET of ``path`` called as a server calls the app, whose client closes the connection after
    ``leave_after`` seconds (None: never); the messages the app sent."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip
    asked = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if leave_after is None:
            await asyncio.Event().wait()  # until the app stops listening (cancelled)
        await asyncio.sleep(leave_after or 0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent
