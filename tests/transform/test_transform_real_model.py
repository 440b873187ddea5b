"""The seed's four examples through the real IS-Net segmenter, on a real photograph (one inference)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import pyvips
from transform_helpers import layer_loader, write_sources

from grammar import parse_transformation
from transform import compile_plan, negotiate_format, render
from transform.seam import Mask, Segmenter

SEEDS = {
    "e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200": (4, "png"),
    "e_background_removal/c_scale,h_375/u_docs:bg_beach/c_scale,w_800/fl_layer_apply,g_south": (3, "jpg"),
    "e_background_removal/e_dropshadow/c_scale,h_105": (4, "png"),
    "e_background_removal/e_grayscale": (4, "png"),
}


class CachedMasks:
    """Equal keys share a mask, as the server's mask cache does: four renders, one inference."""

    def __init__(self, segmenter: Segmenter) -> None:
        self.segmenter = segmenter
        self.masks: dict[str, Mask] = {}

    def __call__(self, image: pyvips.Image, *, key: str, fine_edges: bool) -> Mask:
        if key not in self.masks:
            self.masks[key] = self.segmenter.segment(image, fine_edges=fine_edges)
        return self.masks[key]


@pytest.mark.slow
def test_seed_examples_with_the_real_model(segmenter: Segmenter, eval_dir: Path, tmp_path: Path) -> None:
    dog = eval_dir / "ecssd_subset64" / "image" / "0048.jpg"  # an animal, 400x300
    truth = pyvips.Image.new_from_file(str(eval_dir / "ecssd_subset64" / "mask" / "0048.png"))
    files = write_sources(tmp_path)
    masks = CachedMasks(segmenter)
    out_dir = Path(os.environ.get("SAVE_OUTPUT_DIR", tmp_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, (transformation, (bands, fmt)) in enumerate(SEEDS.items()):
        plan = compile_plan(parse_transformation(transformation))
        choice = negotiate_format(plan, extension=None, accept=None)
        rendered = render(
            plan, str(dog), source_key="dog@1", choice=choice, load_layer=layer_loader(files), masks=masks
        )
        (out_dir / f"real-seed-{index}.{rendered.format}").write_bytes(rendered.data)
        decoded = pyvips.Image.new_from_buffer(rendered.data, "")
        assert (decoded.bands, rendered.format) == (bands, fmt), transformation
    assert list(masks.masks) == ["dog@1|"]
    alpha = masks.masks["dog@1|"].alpha.numpy() > 127
    expected = truth.extract_band(0).numpy() > 127
    iou = (alpha & expected).sum() / (alpha | expected).sum()
    assert iou > 0.85, f"IoU {iou:.3f} against the ground truth"
    assert np.count_nonzero(alpha) > 0.05 * alpha.size
