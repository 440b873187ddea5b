"""A damaged original rendered many ways at once, while good originals render beside it: every render of
it is a 422 naming the damage, never a 500. libvips' error text is one buffer for the whole process, so
under concurrency a render's error had no text (or another thread's) and was answered 500 (about one in
ten through ``cutout serve``; see transform/decode.py: ``fails_alone``)."""

from __future__ import annotations

import asyncio
import collections
import shutil
from pathlib import Path
from typing import Any

import pytest

from cutout.settings import Settings
from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, asgi_get, client_factory

SHAPES = ["c_scale,w_{n}", "e_grayscale,w_{n}", "a_90,w_{n}", "e_blur:200,w_{n}", "w_{n},f_png",
          "e_sepia,w_{n}", "c_fill,w_{n},h_{n}", "w_{n},q_30"]  # fmt: skip
GOOD = {"road": "road.jpg", "beach": "bg_beach.jpg", "woman": "rmv_bgd/woman_orig.jpg"}


@pytest.fixture
def make_client(tmp_path: Path) -> Any:
    originals = tmp_path / "originals"
    originals.mkdir()
    road = (SAMPLES / "docs" / "road.jpg").read_bytes()
    (originals / "truncated.jpg").write_bytes(road[: len(road) * 2 // 3])
    for name, sample in GOOD.items():
        shutil.copy(SAMPLES / "docs" / sample, originals / f"{name}.jpg")
    settings = Settings(originals=originals, cache_dir=tmp_path / "cache", render_threads=4, queue_size=200)
    yield from client_factory(settings, EllipseSegmenter())


async def status_and_body(app: Any, path: str) -> tuple[str, int, str]:
    sent = await asgi_get(app, path, None)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return path.rsplit("/", 1)[1], status, body.decode(errors="replace").strip() if status != 200 else ""


def test_a_damaged_original_rendered_at_once_with_good_ones_is_always_a_422(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    paths = []
    for i in range(48):  # each URL once: a failure is remembered, a second request would not render
        shape = SHAPES[i % len(SHAPES)].format(n=100 + i)
        paths += [f"/demo/image/upload/{shape}/truncated.jpg",
                  f"/demo/image/upload/{shape}/{list(GOOD)[i % 3]}.jpg"]  # fmt: skip

    async def all_at_once() -> list[tuple[str, int, str]]:
        return list(await asyncio.gather(*(status_and_body(client.app, path) for path in paths)))

    assert client.portal is not None
    answers = client.portal.call(all_at_once)
    good = collections.Counter((status, body) for name, status, body in answers if name != "truncated.jpg")
    assert good == {(200, ""): 48}
    damaged = collections.Counter((status, body) for name, status, body in answers if name == "truncated.jpg")
    assert damaged == {(422, "Image cannot be decoded: damaged image data"): 48}
