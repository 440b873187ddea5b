"""Chains the renderer must survive: random-access steps after shrink-on-load, and long chains."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvips
from transform_helpers import photo, run, thumb16

from grammar.errors import BadRequest
from transform.plan import MAX_COMPONENTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("suffix", ["jpg", "png"])
@pytest.mark.parametrize(
    ("transformation", "same_as", "size"),
    [
        ("c_scale,w_800/a_90", "a_90/c_scale,h_800", (600, 800)),
        ("c_scale,w_800/a_180", "a_180/c_scale,w_800", (800, 600)),
        ("c_scale,w_800/a_vflip", "a_vflip/c_scale,w_800", (800, 600)),
        ("w_300/c_fill,g_auto,w_100,h_100", "c_fill,g_auto,w_100,h_100", (100, 100)),
        ("c_limit,w_800,h_800/c_thumb,g_auto,w_50,h_50", "c_thumb,g_auto,w_50,h_50", (50, 50)),
    ],
)
def test_random_access_steps_after_shrink_on_load(
    tmp_path: Path,
    files: dict[str, Path],
    suffix: str,
    transformation: str,
    same_as: str,
    size: tuple[int, int],
) -> None:
    """A scale first decodes with shrink-on-load, which reads the file once, top to bottom; a rotation,
    flip or smart crop after it read it out of order ("damaged image data", a 422, before)."""
    source = tmp_path / f"photo.{suffix}"
    photo(2000, 1500).write_to_file(str(source))  # large enough that the decoder works in strips
    rendered = run(transformation, source, files, extension="png")
    assert (rendered.width, rendered.height) == size
    reference = run(same_as, source, files, extension="png")  # the same image by another route
    assert (reference.width, reference.height) == size
    assert np.abs(thumb16(rendered.data) - thumb16(reference.data)).mean() < 6


def test_chains_are_capped(files: dict[str, Path]) -> None:
    assert run("/".join(["e_grayscale"] * MAX_COMPONENTS), files["photo"], files).width == 320
    with pytest.raises(BadRequest, match=f"more than {MAX_COMPONENTS} chained components"):
        run("/".join(["e_grayscale"] * (MAX_COMPONENTS + 1)), files["photo"], files)
    named = {"grey": "/".join(["e_grayscale"] * 40)}
    with pytest.raises(BadRequest, match="chained components"):
        run("t_grey/t_grey", files["photo"], files, named=named)


def test_a_very_deep_pipeline_is_computed_in_stages(tmp_path: Path) -> None:
    """600 steps (past the URL cap, so with the cap lifted): as one lazy pipeline libvips overflowed its C
    stack and the process died (SIGSEGV); now the image is computed every few dozen steps. In a
    subprocess, so that a regression fails this test instead of killing the test run."""
    source = tmp_path / "photo.jpg"
    photo(640, 480).write_to_file(str(source))  # (at 200 x 150 the old pipeline survived)
    code = f"""
import sys
sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests' / 'transform')!r}]
import transform.plan
transform.plan.MAX_COMPONENTS = 10_000
from transform_helpers import run
rendered = run("/".join(["e_grayscale"] * 600), {str(source)!r}, {{}})
print(rendered.width, rendered.height)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split() == ["640", "480"]


def test_chained_wide_blurs(files: dict[str, Path]) -> None:
    """Each wide blur is computed before the next (chained lazily they cost quadratically)."""
    rendered = run("c_scale,w_300/e_blur:2000/e_blur:2000/e_blur:2000", files["photo"], files)
    image = pyvips.Image.new_from_buffer(rendered.data, "")
    assert (image.width, image.height) == (300, 225)
    assert image.deviate() < 40  # blurred flat-ish
