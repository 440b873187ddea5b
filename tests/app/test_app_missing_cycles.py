"""A missing original or layer leaves nothing for the garbage collector (its 404 held a render's images).

The NotFound raised for it was kept in a local of a frame its own traceback holds (the store's ``locate``,
``locate_either_form``, the resolver's default-image fallback): a reference cycle that kept every frame of
the traceback, with the images a render had made before it looked the layer up, until the collector's
next full pass, which an idle server may not run for hours. Style of tests/transform/test_transform_watch.py:
the collector off, objects counted after the request.
"""

from __future__ import annotations

import gc
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
import pyvips
from starlette.testclient import TestClient

from cache.folder import FolderOriginals
from cutout.resolve import LAYER_MISSING, locate_either_form
from grammar import parse_transformation
from grammar.errors import NotFound
from tests.conftest import live_images
from transform import FormatChoice, Watch, compile_plan, render


@pytest.mark.parametrize("layer", ["docs:nothere", "docs:cafe%CC%81"])  # (decomposed: both forms looked up)
def test_a_render_whose_layer_is_missing_leaves_no_image_for_the_garbage_collector(
    tmp_path: Path, layer: str
) -> None:
    """A layer removed after the URL was resolved (the resolver's own check answers 404 before any
    render): the render looks it up as the scheduler does, after its first steps made images."""
    noise = pyvips.Image.gaussnoise(600, 400, mean=128, sigma=40)
    noise.cast("uchar").write_to_file(str(tmp_path / "big.jpg"))
    originals = FolderOriginals(tmp_path)

    def load_layer(public_id: str) -> tuple[str, str]:  # as cutout.schedule.Scheduler._layer
        found = locate_either_form(originals, public_id, what=LAYER_MISSING)
        return str(originals.local(found)), "1"

    plan = compile_plan(parse_transformation(f"e_blur:50/c_scale,w_300/l_{layer}/fl_layer_apply"))
    gc.collect()
    before = live_images()
    gc.disable()
    try:
        with pytest.raises(NotFound, match="referenced image"):
            render(plan, str(tmp_path / "big.jpg"), source_key="big", choice=FormatChoice("jpg"),
                   watch=Watch(), load_layer=load_layer)
        left = live_images() - before
    finally:
        gc.enable()
    assert left == 0


def cyclic_garbage(action: Callable[[], object]) -> int:
    """Objects only the collector would free after ``action()`` raised NotFound."""
    gc.collect()
    gc.disable()
    try:
        with pytest.raises(NotFound):
            action()
        return gc.collect()
    finally:
        gc.enable()


@pytest.mark.parametrize("public_id", ["docs/nothere", "../outside", unicodedata.normalize("NFD", "café")])
def test_a_missing_original_is_no_reference_cycle(tmp_path: Path, public_id: str) -> None:
    (tmp_path / "docs").mkdir()
    originals = FolderOriginals(tmp_path)
    assert cyclic_garbage(lambda: originals.locate(public_id)) == 0
    assert cyclic_garbage(lambda: locate_either_form(originals, public_id)) == 0


@pytest.mark.parametrize("path", [
    "/image/upload/c_scale,w_200/docs/nothere.jpg",
    "/image/upload/d_docs:nodefault,c_scale,w_200/docs/nothere.jpg",  # the default missing too
])
def test_a_missing_originals_404_is_no_reference_cycle(client: TestClient, path: str) -> None:
    """The resolver the app runs for every URL (its own first use made before counting)."""
    resolver = client.app.state.service.resolver  # type: ignore[attr-defined]
    assert client.get(path).status_code == 404
    assert cyclic_garbage(lambda: resolver.resolve(path.replace("w_200", "w_201"), None)) == 0
