"""An original replaced while its derivative waits or renders: the result is never stored under the
key of the content it replaced (that key would come back if the old file did)."""

from __future__ import annotations

import importlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
import pyvips

from cache import DerivativeCache
from cutout.service import Service
from cutout.settings import Settings
from grammar import parse_path
from grammar.errors import OriginError, StillGenerating, Undecodable
from tests.app.helpers import EllipseSegmenter


def square(path: Path, rgb: list[int]) -> Path:
    (pyvips.Image.black(64, 64) + rgb).cast("uchar").copy(interpretation="srgb").pngsave(str(path))
    return path


MakeService = Callable[..., Service]


@pytest.fixture
def origin() -> Iterator[MakeService]:
    """Services over ``tmp_path``; closed at the end (their lease threads would outlive the test)."""
    made: list[Service] = []

    def make(tmp_path: Path, segmenter: EllipseSegmenter | None = None) -> Service:
        settings = Settings(originals=tmp_path / "originals", cache_dir=tmp_path / "cache", render_threads=1)
        made.append(Service.open(settings, DerivativeCache(tmp_path / "cache"), segmenter=segmenter))
        return made[-1]

    yield make
    for service in made:
        service.close()


def colour(data: bytes) -> list[float]:
    """The colour at the centre (inside the stand-in segmenter's ellipse)."""
    image = pyvips.Image.new_from_buffer(data, "")
    return list(image(image.width // 2, image.height // 2))[:3]


def test_a_render_of_replaced_content_is_served_not_stored(tmp_path: Path, origin: MakeService) -> None:
    (tmp_path / "originals").mkdir()
    red, blue = square(tmp_path / "red.png", [255, 0, 0]), square(tmp_path / "blue.png", [0, 0, 255])
    shutil.copy(red, tmp_path / "originals" / "a.png")
    server = origin(tmp_path)
    path = parse_path("/image/upload/c_scale,w_10/a.png")
    waiting = server.resolver.prepare(path, accept=None)  # the request is prepared (key of red)...
    shutil.copy(blue, tmp_path / "originals" / "a.png")  # ...the operator replaces the original...
    entry = server.scheduler.produce(waiting)  # ...and the render runs
    assert colour(entry.data) == [0, 0, 255]  # what the file holds now
    assert server.store.lookup(waiting.key) is None  # not stored under red's key
    blue_key = server.resolver.prepare(path, accept=None).key
    assert server.store.lookup(blue_key) is None  # nor under blue's: not asked yet
    shutil.copy(red, tmp_path / "originals" / "a.png")  # red again: its key must give red
    again = origin(tmp_path)
    prepared = again.resolver.prepare(path, accept=None)
    assert prepared.key == waiting.key and again.store.lookup(prepared.key) is None
    assert colour(again.scheduler.produce(prepared).data) == [255, 0, 0]
    assert again.store.lookup(prepared.key) is not None  # unchanged files: stored as usual


def test_a_mask_of_replaced_content_is_not_stored(tmp_path: Path, origin: MakeService) -> None:
    (tmp_path / "originals").mkdir()
    red, blue = square(tmp_path / "red.png", [255, 0, 0]), square(tmp_path / "blue.png", [0, 0, 255])
    shutil.copy(red, tmp_path / "originals" / "a.png")
    segmenter = EllipseSegmenter()
    server = origin(tmp_path, segmenter)
    path = parse_path("/image/upload/e_background_removal/a.png")
    waiting = server.resolver.prepare(path, accept=None)
    shutil.copy(blue, tmp_path / "originals" / "a.png")
    assert colour(server.scheduler.render_entry(waiting).data) == [0, 0, 255]
    shutil.copy(red, tmp_path / "originals" / "a.png")
    again = origin(tmp_path, segmenter)
    prepared = again.resolver.prepare(path, accept=None)
    assert prepared.key == waiting.key
    assert colour(again.scheduler.produce(prepared).data) == [255, 0, 0]
    assert segmenter.calls == 2  # red's mask was not taken from the blue run


def test_a_generation_of_replaced_content_is_not_stored(tmp_path: Path, origin: MakeService) -> None:
    """The queued (423) path: the job renders the new file while the key names the old one."""
    (tmp_path / "originals").mkdir()
    red, blue = square(tmp_path / "red.png", [255, 0, 0]), square(tmp_path / "blue.png", [0, 0, 255])
    shutil.copy(red, tmp_path / "originals" / "a.png")
    replaced = threading.Event()  # the model does not finish before the file is replaced, however loaded
    segmenter = EllipseSegmenter(gate=replaced)
    server = origin(tmp_path, segmenter)
    url = "/image/upload/e_background_removal/a.png"
    waiting = server.resolver.prepare(parse_path(url), accept=None)

    async def first_request() -> None:
        with pytest.raises(StillGenerating):
            await server.deliver(url, None)  # claims and queues the job: 423

    anyio.run(first_request)
    shutil.copy(blue, tmp_path / "originals" / "a.png")  # while the model runs
    replaced.set()
    deadline = time.monotonic() + 10
    while server.coordinator.claimed(waiting.key) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Done, and nothing kept for red: neither a cut-out nor a failure (if the job read the file while it
    # was being rewritten in place, the decode failed; that is not red's failure either).
    assert segmenter.calls <= 1 and server.store.lookup(waiting.key) is None
    fresh = server.resolver.prepare(parse_path(url), accept=None)
    assert fresh.key != waiting.key
    server.close()


def test_a_failure_while_the_file_is_rewritten_is_not_remembered(tmp_path: Path, origin: MakeService) -> None:
    """A render that read the original while it was being rewritten fails (a half-written file); that is
    not the URL's failure, so the old key must not answer with it later."""
    (tmp_path / "originals").mkdir()
    red = square(tmp_path / "red.png", [255, 0, 0])
    shutil.copy(red, tmp_path / "originals" / "a.png")
    server = origin(tmp_path)
    waiting = server.resolver.prepare(parse_path("/image/upload/c_scale,w_10/a.png"), accept=None)
    (tmp_path / "originals" / "a.png").write_bytes(red.read_bytes()[:60])  # caught half-written
    with pytest.raises(Undecodable):
        server.scheduler.produce(waiting)
    shutil.copy(red, tmp_path / "originals" / "a.png")  # the copy completes: the same content again
    again = origin(tmp_path)
    prepared = again.resolver.prepare(parse_path("/image/upload/c_scale,w_10/a.png"), accept=None)
    assert prepared.key == waiting.key
    assert again.store.lookup(prepared.key) is None  # no remembered 422 for red
    assert colour(again.scheduler.produce(prepared).data) == [255, 0, 0]


def test_an_original_removed_while_it_renders_is_a_409_not_a_crash(
    tmp_path: Path, origin: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libvips opens the file again for its pixels: a destroy or rename of the id half way through a render
    (an upload's eager transformations race them) failed with a bare pyvips.Error, a 500 to the client."""
    rendering = importlib.import_module("transform.render")  # the package's `render` is the function
    (tmp_path / "originals").mkdir()
    original = tmp_path / "originals" / "a.jpg"
    (pyvips.Image.black(640, 480) + [200, 10, 10]).cast("uchar").copy(interpretation="srgb").jpegsave(
        str(original)
    )
    server = origin(tmp_path)
    prepared = server.resolver.prepare(parse_path("/image/upload/c_scale,w_10/a.jpg"), accept=None)
    real = rendering._finish

    def removed_half_way(*args: object, **kwargs: object) -> object:
        original.unlink()  # the header was read and the pipeline built; the pixels are not read yet
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rendering, "_finish", removed_half_way)
    with pytest.raises(OriginError) as caught:
        server.scheduler.produce(prepared)
    assert caught.value.status == 409 and "changed while it was being rendered" in caught.value.public
    assert server.store.lookup(prepared.key) is None
