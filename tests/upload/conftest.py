"""Fixtures for the Upload API tests: a real `cutout serve` on loopback with the Upload API on and the
real model, Cloudinary's own SDK pointed at it, and a local webhook receiver."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess
from tests.conftest import require_model

CLOUD, KEY, SECRET = "demo", "123456789012345", "upload-test-secret"
ENV = {
    "CUTOUT_UPLOAD": "1", "CUTOUT_API_KEY": KEY, "CUTOUT_API_SECRET": SECRET, "CUTOUT_CLOUD_NAME": CLOUD,
    "CUTOUT_FETCH_ALLOW_PRIVATE": "1", "CUTOUT_LEASE_SECONDS": "3", "CUTOUT_MAX_UPLOAD_BYTES": "3M",
    "CUTOUT_MAX_PIXELS": "30000000", "CUTOUT_ORT_THREADS": "2", "CUTOUT_FETCH_ALLOW": "127.0.0.1",
    "CUTOUT_RESOURCE_LIST": "1",
}  # fmt: skip


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A webhook receiver on loopback; ``fail_first`` answers 503 to that many posts first."""

    url: str = ""
    posts: list[Received] = field(default_factory=list)
    fail_first: int = 0
    condition: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, match: Any, timeout: float = 120.0) -> Received:
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                for post in self.posts:
                    if match(post):
                        return post
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching notification; got {[p.body[:200] for p in self.posts]}")
                self.condition.wait(left)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:
                # The sender died mid-post (the restart tests SIGKILL a server): no delivery, as for any
                # receiver that reads whole bodies; the restarted server sends it again.
                self.close_connection = True
                return
            with state.condition:
                failing = state.fail_first > 0
                state.fail_first -= 1 if failing else 0
                if not failing:
                    state.posts.append(Received(body, {k.lower(): v for k, v in self.headers.items()}))
                    state.condition.notify_all()
            self.send_response(503 if failing else 200)
            self.send_header("Content-Length", "0")
            if failing:
                self.send_header("Retry-After", "1")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802 - an image to upload by URL
            data = (SAMPLES / "docs" / "road.jpg").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def start_server(root: Path, env: dict[str, str] | None = None) -> ServerProcess:
    originals, cache = root / "originals", root / "cache"
    if not originals.exists():
        shutil.copytree(SAMPLES, originals)
    server = ServerProcess(originals, cache, env={**ENV, **(env or {})})
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_model()
    process = start_server(tmp_path_factory.mktemp("upload"))
    yield process
    process.stop()


@pytest.fixture
def sdk(server: ServerProcess) -> Iterator[Any]:
    import cloudinary
    import cloudinary.api
    import cloudinary.exceptions
    import cloudinary.uploader
    import cloudinary.utils

    cloudinary.config(cloud_name=CLOUD, api_key=KEY, api_secret=SECRET, upload_prefix=server.url,
                      secure=False)  # fmt: skip
    yield cloudinary
    cloudinary.reset_config()


def records(folder: Path) -> list[Path]:
    """The ``.record`` files under ``folder`` (none when it is gone), read with os.walk, which passes over a
    folder removed while it walks (the server prunes empty record folders; rglob fails on them)."""
    return sorted(Path(parent) / name for parent, _, files in os.walk(folder) for name in files
                  if name.endswith(".record"))  # fmt: skip
