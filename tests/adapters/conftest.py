"""Fixtures for the vendor adapters: the real app (stand-in ellipse segmenter) behind a TestClient for
the HTTP shapes, a live uvicorn server on loopback for the vendors' own clients (they open sockets),
and one live server with the real model shared by every adapter's pixel test (the mask is cached by
content, so every adapter's real-model run after the first is a cache hit)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.testclient import TestClient

from cutout.settings import Settings
from tests.api.conftest import answered  # noqa: F401 - the API front's spy, for test_front.py
from tests.app.helpers import SAMPLES, EllipseSegmenter
from tests.app.server_process import free_port
from tests.fetch.servers import LocalServer, RecordingHandler, send, serving

KEY = "adapter-key-1"
#: A second key of the two-key servers (``two_keys``, ``live_two_keys``): what KEY makes is not its.
OTHER_KEY = "adapter-key-2"


def settings_in(folder: Path, **changes: Any) -> Settings:
    originals = folder / "originals"
    shutil.copytree(SAMPLES, originals)
    values: dict[str, Any] = dict(
        originals=originals, cache_dir=folder / "cache", render_threads=2, lease_seconds=5,
        api_keys=(KEY,), api_wait_seconds=30,
    )  # fmt: skip
    values.update(changes)
    return Settings(**values)


@dataclass
class Live:
    url: str
    server: uvicorn.Server


def serve(app: Any) -> Iterator[Live]:
    """``app`` under uvicorn in a thread on a free loopback port, until the generator is closed."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield Live(f"http://127.0.0.1:{port}", server)
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def stub() -> EllipseSegmenter:
    return EllipseSegmenter()


@pytest.fixture(scope="module")
def origin() -> Iterator[LocalServer]:
    """A web server on 127.0.0.2 with the sample photos, allowed to the fetcher (set before the apps
    start: they read the fetch policy then)."""
    with pytest.MonkeyPatch.context() as patch, serving("127.0.0.2") as server:
        patch.setenv("CUTOUT_FETCH_ALLOW", "127.0.0.2")
        patch.setenv("CUTOUT_FETCH_ALLOW_NETWORKS", "127.0.0.2/32")
        for name, data in (("/road.jpg", road()), ("/dog.jpg", photo()), ("/bg.jpg", beach())):
            server.routes[name] = partial(_send, data=data)
        server.routes["/text.txt"] = partial(_send, data=b"not an image", kind="text/plain")
        yield server


def _send(handler: RecordingHandler, data: bytes, kind: str = "image/jpeg") -> None:
    send(handler, 200, data, kind, {})


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, stub: EllipseSegmenter, origin: LocalServer
) -> Iterator[TestClient]:
    """The app with the stand-in segmenter; no default headers (each case sends its vendor's own)."""
    from cutout.app import create_app

    app = create_app(settings_in(tmp_path_factory.mktemp("adapters")), segmenter=stub, load_model=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def limited(tmp_path: Path, stub: EllipseSegmenter) -> Iterator[TestClient]:
    """An app whose keys may make one request, then 429 (CUTOUT_API_RATE 0.05: a bucket of one)."""
    from cutout.app import create_app

    app = create_app(settings_in(tmp_path, api_rate=0.05), segmenter=stub, load_model=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def modelless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app with the API on and no segmentation model: every face answers its 5xx."""
    from cutout.app import create_app

    app = create_app(settings_in(tmp_path_factory.mktemp("modelless")), segmenter=None, load_model=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def two_keys(tmp_path_factory: pytest.TempPathFactory, stub: EllipseSegmenter) -> Iterator[TestClient]:
    """The app with two keys in CUTOUT_API_KEYS (KEY and OTHER_KEY): what one key makes, the other may
    not name."""
    from cutout.app import create_app

    settings = settings_in(tmp_path_factory.mktemp("two-keys"), api_keys=(KEY, OTHER_KEY))
    app = create_app(settings, segmenter=stub, load_model=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def live_two_keys(tmp_path_factory: pytest.TempPathFactory, stub: EllipseSegmenter) -> Iterator[Live]:
    """``two_keys`` under uvicorn, for the vendors' own clients."""
    from cutout.app import create_app

    settings = settings_in(tmp_path_factory.mktemp("live-two-keys"), api_keys=(KEY, OTHER_KEY))
    yield from serve(create_app(settings, segmenter=stub, load_model=False))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, stub: EllipseSegmenter) -> Iterator[Live]:
    from cutout.app import create_app

    app = create_app(settings_in(tmp_path_factory.mktemp("live")), segmenter=stub, load_model=False)
    yield from serve(app)


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory, segmenter: object) -> Iterator[Live]:
    """A live server with the real IS-Net model, shared by the adapters' pixel tests."""
    from cutout.app import create_app

    settings = settings_in(tmp_path_factory.mktemp("real"), api_wait_seconds=300)
    yield from serve(create_app(settings, segmenter=segmenter, load_model=False))  # type: ignore[arg-type]


def photo() -> bytes:
    """The photo of the pixel tests (451x300: small, one clear subject)."""
    return (SAMPLES / "docs" / "rmv_bgd" / "dog_couch_orig.jpg").read_bytes()


def beach() -> bytes:
    return (SAMPLES / "docs" / "bg_beach.jpg").read_bytes()


def road() -> bytes:
    return (SAMPLES / "docs" / "road.jpg").read_bytes()


def image(data: bytes) -> Any:
    import pyvips

    return pyvips.Image.new_from_buffer(data, "")


def check_mask(data: bytes, width: int, height: int) -> None:
    """The real model's matte: one band, the input's size, some foreground and some background."""
    mask = image(data)
    assert (mask.width, mask.height, mask.bands) == (width, height, 1)
    assert 0 < mask.avg() < 255 and mask.max() > 200 and mask.min() < 50


def check_composite(data: bytes, colour: tuple[int, int, int]) -> None:
    """A corner of a photo whose subject is in the middle shows the background colour."""
    out = image(data)
    corner = out.crop(0, 0, 8, 8)
    for band, expected in enumerate(colour):
        assert abs(corner[band].avg() - expected) < 8, (band, corner[band].avg(), expected)


def check_box(left: float, top: float, width: float, height: float, full_w: float, full_h: float) -> None:
    assert 0 <= left and 0 <= top and width > 0 and height > 0
    assert left + width <= full_w + 1e-6 and top + height <= full_h + 1e-6
    assert width * height < full_w * full_h


def native_has(option: str, value: str = "true") -> bool:
    """Whether the HTTP API's own parser takes ``option`` (background images, shadow and roi arrive with
    the HTTP API's growth; until then the adapters refuse them by name)."""
    from cutout.api.errors import ApiError
    from cutout.api.options import parse_options

    try:
        parse_options({option: value})
    except ApiError as exc:
        return exc.parameter != option or "not supported" not in exc.detail
    return True
