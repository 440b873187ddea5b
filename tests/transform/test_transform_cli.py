"""`cutout render` end to end on generated files (layers from --originals)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips
from transform_helpers import write_sources

from cutout.cli import main


def test_render_with_a_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    originals = tmp_path / "originals"
    (originals / "docs").mkdir(parents=True)
    files = write_sources(originals / "docs")
    out = tmp_path / "out.webp"
    code = main(
        [
            "render",
            "c_scale,w_160/l_docs:logo/fl_layer_apply,g_south_east",
            str(files["photo"]),
            "-o",
            str(out),
            "--originals",
            str(originals),
        ]
    )
    assert code == 0, capsys.readouterr().err
    image = pyvips.Image.new_from_file(str(out))
    assert (image.width, image.height, image.get("vips-loader")) == (160, 120, "webpload")
    assert "out.webp: webp 160x120" in capsys.readouterr().out


def test_render_reports_client_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "a.png"
    pyvips.Image.black(8, 8).write_to_file(str(source))
    assert main(["render", "w_-3", str(source), "-o", str(tmp_path / "o.png")]) == 1
    assert "400 Invalid transformation parameter - w_-3" in capsys.readouterr().err
    assert main(["render", "l_x/fl_layer_apply", str(source), "-o", str(tmp_path / "o.png")]) == 1
    assert "404 Layer x: pass --originals DIR" in capsys.readouterr().err


def test_render_an_animation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = write_sources(tmp_path)
    out = tmp_path / "out.webp"
    assert main(["render", "c_scale,w_80", str(files["anim"]), "-o", str(out)]) == 0, capsys.readouterr().err
    assert f"{out}: webp 80x50, 4 frames" in capsys.readouterr().out
    assert pyvips.Image.new_from_file(str(out)).get("n-pages") == 4
