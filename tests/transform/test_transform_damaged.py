"""Damaged input (a 422) told from a fault of ours (a 500) by decoding the input alone, never by the text
of libvips' error: that text comes from one buffer for the whole process, so under concurrent renders a
render's error may carry no text at all, or another thread's (transform/decode.py: ``fails_alone``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest
import pyvips
from transform_helpers import animation, run

from grammar.errors import Undecodable
from transform.decode import fails_alone

rendering = importlib.import_module("transform.render")  # the package's `render` is the function


def blank(message: str) -> pyvips.Error:
    """A pyvips.Error as a render gets it when another thread cleared libvips' buffer first: no detail
    (given empty, pyvips would read the buffer: set afterwards)."""
    error = pyvips.Error(message, "(set below)")
    error.detail = ""
    return error


def failing_encode(monkeypatch: pytest.MonkeyPatch, error: Callable[[], pyvips.Error]) -> None:
    """The render's final step (evaluating and encoding the pipeline) raises ``error()`` in place of
    libvips' own error when it fails."""
    real = rendering._finish

    def finish(*args: object, **kwargs: object) -> object:
        try:
            return real(*args, **kwargs)  # type: ignore[arg-type]
        except pyvips.Error:
            raise error() from None

    monkeypatch.setattr(rendering, "_finish", finish)


def truncated(files: dict[str, Path], tmp_path: Path) -> Path:
    data = files["photo"].read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_damaged_original_is_a_422_when_libvips_error_has_no_text(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_encode(monkeypatch, lambda: blank("unable to call jpegsave_buffer"))
    with pytest.raises(Undecodable) as caught:
        run("e_grayscale", truncated(files, tmp_path), files)
    assert caught.value.status == 422
    assert caught.value.public == "Image cannot be decoded: damaged image data"
    assert caught.value.detail.startswith("the original fails to decode on its own")


def test_a_damaged_original_is_a_422_when_libvips_error_is_another_threads(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The text of pyvips' own look-up of a method as a property, written and cleared on every call.
    stolen = "image: no property named `copy'"
    failing_encode(monkeypatch, lambda: pyvips.Error("unable to call copy", stolen))
    with pytest.raises(Undecodable):
        run("c_scale,w_100", truncated(files, tmp_path), files)


def test_a_fault_on_a_good_original_stays_a_500_whatever_the_text(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another render's decoder failure in the text (before: matched, and answered 422 for a good image)."""
    stolen = "VipsJpeg: Premature end of input file\n"

    def broken(*args: object, **kwargs: object) -> object:
        raise pyvips.Error("unable to call jpegsave_buffer", stolen)

    monkeypatch.setattr(rendering, "_finish", broken)
    with pytest.raises(pyvips.Error):
        run("e_grayscale", files["photo"], files)


def test_a_damaged_layer_is_a_422_naming_it(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_encode(monkeypatch, lambda: blank("unable to call jpegsave_buffer"))
    broken = truncated(files, tmp_path)
    with pytest.raises(Undecodable) as caught:
        run("l_broken/fl_layer_apply", files["photo"], {**files, "broken": broken})
    assert caught.value.detail.startswith(f"layer {broken} fails to decode on its own")


def test_a_damaged_frame_is_a_422_where_it_is_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    """An animated WebP whose fourth frame is damaged: the first frames decode (each drawn over the ones
    before, so reaching frame 5 decodes frames 1-5 and fails)."""
    data = bytearray(animation("webp", frames=6))
    middle = len(data) // 2
    data[middle : middle + 40] = bytes(b ^ 0x5A for b in data[middle : middle + 40])
    damaged = bytes(data)
    assert [fails_alone(damaged, [page]) for page in range(6)] == [False] * 3 + [True] * 3
    assert fails_alone(damaged, [0, 1, 4])  # an animation's chosen frames: read from the first
    failing_encode(monkeypatch, lambda: blank("unable to call gifsave_target"))
    files: dict[str, Path] = {}
    assert run("pg_2", damaged, files, extension="png").width == 160
    with pytest.raises(Undecodable):
        run("pg_5", damaged, files, extension="png")
    with pytest.raises(Undecodable):
        run("pg_1-5", damaged, files, extension="gif")


def test_fails_alone(files: dict[str, Path], tmp_path: Path) -> None:
    assert not fails_alone(files["photo"])
    assert fails_alone(truncated(files, tmp_path))
    assert fails_alone(truncated(files, tmp_path).read_bytes())
    # Gone (a destroy or rename while it rendered): not damage, the render's own error stands (a 409).
    assert not fails_alone(tmp_path / "gone.jpg")
