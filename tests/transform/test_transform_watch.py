"""Stopping a render from another thread (transform.Watch): the time budget and a departed client use it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import pyvips
from transform_helpers import animation

from grammar import parse_transformation
from tests.conftest import live_images
from transform import FormatChoice, Limits, Rendered, Watch, compile_plan, frames, render
from transform.watch import UNWATCHED

#: Seconds of blurring (each e_blur:2000 is computed in full before the next): stopped well before its end.
HEAVY = "e_blur:2000/e_blur:2000/e_blur:2000/e_blur:2000/e_blur:2000"


class Stopped(Exception):
    """What the tests stop renders with (the server uses RenderTimeout and ClientGone)."""


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1500 x 1500 JPEG of noise: blurring it is real work for libvips."""
    path = tmp_path_factory.mktemp("watch") / "big.jpg"
    noise = pyvips.Image.gaussnoise(1500, 1500, mean=128, sigma=40)
    noise.bandjoin([noise.rot90(), noise.rot180()]).cast("uchar").write_to_file(str(path), Q=90)
    return path


def draw(text: str, source: Path, watch: Watch = UNWATCHED) -> Rendered:
    plan = compile_plan(parse_transformation(text))
    return render(plan, str(source), source_key=source.name, choice=FormatChoice("jpg"), watch=watch,
                  load_layer=lambda public_id: (str(source), "1"))


@contextmanager
def stopped_after(seconds: float) -> Iterator[Watch]:
    """A watch that another thread stops ``seconds`` from now."""
    watch = Watch()
    timer = threading.Timer(seconds, watch.stop, (Stopped("over budget"),))
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()


@pytest.mark.parametrize("text", [
    HEAVY,  # the original decoded in full, blurs computed one after the other
    f"c_scale,w_1400/{HEAVY}",  # shrink-on-load (thumbnail) first
    f"l_big/{HEAVY}/fl_layer_apply",  # in a layer's own steps
    "e_blur:2000/a_90/e_blur:2000/o_50/e_sharpen/e_blur:2000/e_blur:2000/e_blur:2000/f_png",
])
def test_a_render_stopped_from_another_thread_raises_the_stop_error(big: Path, text: str) -> None:
    with stopped_after(0.2) as watch, pytest.raises(Stopped, match="over budget") as caught:
        draw(text, big, watch)
    assert watch.stopped
    # What libvips said is kept as the cause: the kill reached the render's work.
    assert isinstance(caught.value.__cause__, pyvips.Error) or caught.value.__cause__ is None


def test_a_render_stopped_before_it_starts_does_nothing(big: Path) -> None:
    watch = Watch()
    assert watch.stop(Stopped("client gone"))
    assert not watch.stop(Stopped("again"))  # the first reason stays
    with pytest.raises(Stopped, match="client gone"):
        draw(HEAVY, big, watch)


def test_an_ordinary_render_with_a_watch_is_the_same_image(big: Path) -> None:
    for text in ("c_scale,w_300", "c_crop,w_400,h_300/e_blur:300/a_45", "l_big/c_scale,w_100/fl_layer_apply"):
        watched, plain = draw(text, big, Watch()), draw(text, big)
        assert (watched.width, watched.height, watched.format) == (plain.width, plain.height, plain.format)
        assert watched.data == plain.data


def test_a_render_stopped_while_libvips_is_idle_leaves_no_killed_image_behind(big: Path) -> None:
    """Stopped while it computes nothing (here while a layer is looked up; in the server during a model's
    inference): libvips clears a kill flag only when it sees it, a kill also flags the image an image
    reports progress to (a file's loader, once the loader has read its pixels), and the operation cache
    shares that loader between renders: a flag left there fails the next render of the file."""
    assert pyvips.cache_get_max() > 0  # the server runs with libvips' operation cache on
    assert draw("l_big/c_scale,w_100/fl_layer_apply", big).width == 1500  # the loader reads its pixels
    watch = Watch()

    def load_layer(public_id: str) -> tuple[str, str]:
        watch.stop(Stopped("client gone"))
        return str(big), "1"

    plan = compile_plan(parse_transformation("a_ignore/l_big/c_scale,w_10/fl_layer_apply"))
    with pytest.raises(Stopped):
        render(plan, str(big), source_key="big", choice=FormatChoice("jpg"), watch=watch,
               load_layer=load_layer)
    assert draw("e_blur:5", big).width == 1500  # the same file, through the same cached loader


def test_stopping_one_render_leaves_the_others_of_the_same_original(big: Path) -> None:
    """libvips' operation cache shares a file's loader (and any operation on the same input) between
    renders: the kill must reach only the stopped render's own images."""
    with ThreadPoolExecutor(2) as pool, stopped_after(0.3) as watch:
        stopped = pool.submit(draw, HEAVY, big, watch)
        other = pool.submit(draw, "e_blur:2000/c_crop,w_500,h_500", big, Watch())
        with pytest.raises(Stopped):
            stopped.result()
        assert other.result().width == 500
    # The same steps again, on the same cached loader: nothing was left killed.
    assert draw("e_blur:2000/c_crop,w_600,h_500", big, Watch()).width == 600


def test_the_command_lines_render_cannot_be_stopped() -> None:
    assert not UNWATCHED.stop(Stopped("no"))
    assert not UNWATCHED.stopped


def test_an_animations_frames_are_owned_before_they_are_decoded() -> None:
    """frames.load computes the frames into memory at once: the strip it decodes is the watch's before
    that, so a stopped render decodes nothing (libvips stops at the first tile)."""
    source = animation("gif", frames=3)
    watch = Watch()
    watch.stop(Stopped("over budget"))
    for size in (None, (80, 50)):  # decoded in full, and with shrink-on-load
        with pytest.raises(pyvips.Error):
            frames.load(source, [0, 1, 2], Limits(), size, watch)
    assert len(frames.load(source, [0, 1, 2], Limits(), None, Watch())) == 3


@pytest.mark.parametrize("text", [HEAVY, f"l_big/l_big/{HEAVY}/fl_layer_apply/fl_layer_apply"])
def test_a_stopped_render_leaves_no_image_for_the_garbage_collector(big: Path, text: str) -> None:
    """The stop error's traceback holds the render's frames, and they the watch that holds the error: left
    as a cycle, every image the render made (GBs for a large original) lived until a full collection,
    which an idle server may not run for hours. They must go with the last reference to the error."""
    gc.collect()
    before = live_images()
    gc.disable()
    try:
        with stopped_after(0.2) as watch, pytest.raises(Stopped) as caught:
            draw(text, big, watch)
        del watch, caught
        left = live_images() - before
    finally:
        gc.enable()
    assert left == 0
