"""Blend modes and layer shapes in fl_layer_apply (transform/ops/blends.py): known colours in, the blend's
formula out, pixel by pixel; and the 400s where a blend has no layer to blend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
from transform_helpers import run

from grammar.errors import BadRequest
from grammar.parse import parse_transformation
from transform.ops.blends import anti_removal
from transform.plan import compile_plan

BASE = (200, 100, 50)
GREY = 64  # the layer's grey: dark enough that overlay's two halves differ from the base


def _png(path: Path, image: pyvips.Image) -> Path:
    image.copy(interpretation="srgb").pngsave(str(path))
    return path


def _solid(width: int, height: int, colour: list[int]) -> pyvips.Image:
    return (pyvips.Image.black(width, height) + colour).cast("uchar")


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``base``: 40x30 of BASE; ``grey``: 20x10 opaque GREY; ``half``: 20x20, its left half opaque red
    and its right half transparent; ``tile``: 10x10, the same halves."""
    folder = tmp_path_factory.mktemp("blends")
    half = _solid(20, 20, [255, 0, 0, 255]).insert(_solid(10, 20, [0, 0, 0, 0]), 10, 0)
    tile = _solid(10, 10, [255, 0, 0, 255]).insert(_solid(5, 10, [0, 0, 0, 0]), 5, 0)
    return {
        "base": _png(folder / "base.png", _solid(40, 30, list(BASE))),
        "grey": _png(folder / "grey.png", _solid(20, 10, [GREY] * 3)),
        "half": _png(folder / "half.png", half),
        "tile": _png(folder / "tile.png", tile),
    }


def pixels_of(transformation: str, sources: dict[str, Path]) -> np.ndarray:
    rendered = run(f"{transformation}/f_png", sources["base"], sources)
    image = pyvips.Image.new_from_buffer(rendered.data, "")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                      shape=(image.height, image.width, image.bands))  # fmt: skip


def _multiply(b: float, s: float) -> float:
    return b * s


def _screen(b: float, s: float) -> float:
    return 1 - (1 - b) * (1 - s)


def _overlay(b: float, s: float) -> float:
    # The PDF overlay: the base (backdrop) chooses multiply or screen.
    return 2 * b * s if b <= 0.5 else 1 - 2 * (1 - b) * (1 - s)


@pytest.mark.parametrize(("mode", "formula"), [("multiply", _multiply), ("screen", _screen),
                                               ("overlay", _overlay)])  # fmt: skip
def test_separable_blends_follow_their_formula(mode: str, formula: object, sources: dict[str, Path]) -> None:
    out = pixels_of(f"l_grey/fl_layer_apply,e_{mode}", sources)
    assert out.shape == (30, 40, 3)  # the base's size: the layer is inside it
    expected = [round(255 * formula(b / 255, GREY / 255)) for b in BASE]  # type: ignore[operator]
    assert np.abs(out[15, 20].astype(int) - expected).max() <= 1, (out[15, 20], expected)
    assert tuple(out[2, 2]) == BASE  # outside the layer: the base as it was
    plain = pixels_of("l_grey/fl_layer_apply", sources)
    assert tuple(plain[15, 20]) == (GREY,) * 3  # without the blend: the layer covers the base


def test_the_three_blends_differ(sources: dict[str, Path]) -> None:
    centres = {tuple(pixels_of(f"l_grey/fl_layer_apply,e_{mode}", sources)[15, 20])
               for mode in ("multiply", "screen", "overlay")}  # fmt: skip
    assert len(centres) == 3


def test_mask_keeps_the_base_only_under_the_layers_opaque_pixels(sources: dict[str, Path]) -> None:
    out = pixels_of("l_half/fl_layer_apply,e_mask", sources)  # the layer at 10..30 x 5..25
    assert out.shape == (30, 40, 4)
    assert tuple(out[15, 12]) == (*BASE, 255)  # under the opaque half: the base, opaque
    assert out[15, 25, 3] == 0  # under the transparent half: nothing
    assert out[2, 2, 3] == 0 and out[28, 38, 3] == 0  # beyond the layer: nothing


def test_cut_out_removes_the_layers_opaque_pixels(sources: dict[str, Path]) -> None:
    out = pixels_of("l_half/fl_layer_apply,e_cut_out", sources)
    assert out.shape == (30, 40, 4)
    assert out[15, 12, 3] == 0  # under the opaque half: cut out
    assert tuple(out[15, 25]) == (*BASE, 255)  # under the transparent half: the base
    assert tuple(out[2, 2]) == (*BASE, 255)


def test_cut_out_and_mask_never_grow_the_canvas(sources: dict[str, Path]) -> None:
    """A layer beyond the base has nothing there to take away: the canvas stays the base's."""
    for mode in ("mask", "cut_out"):
        out = pixels_of(f"l_half/fl_layer_apply,e_{mode},g_north_west,x_-5,y_-5", sources)
        assert out.shape == (30, 40, 4), mode
    assert pixels_of("l_half/fl_layer_apply,g_north_west,x_-5,y_-5", sources).shape == (35, 45, 4)


def test_cutter_trims_the_base_to_the_layers_shape(sources: dict[str, Path]) -> None:
    out = pixels_of("l_half/fl_layer_apply,fl_cutter", sources)
    assert out.shape == (20, 20, 4)  # the layer's box
    assert tuple(out[10, 2]) == (*BASE, 255)
    assert out[10, 15, 3] == 0
    # Partly beyond the base: only what lies on the base is left.
    out = pixels_of("l_half/fl_layer_apply,fl_cutter,g_north_west,x_-4", sources)
    assert out.shape == (20, 16, 4)
    assert tuple(out[10, 0]) == (*BASE, 255) and out[10, 10, 3] == 0


def test_tiled_repeats_the_layer_over_the_whole_base(sources: dict[str, Path]) -> None:
    out = pixels_of("l_tile/fl_layer_apply,fl_tiled", sources)
    assert out.shape == (30, 40, 3)
    for x in (2, 12, 22, 32):
        for y in (2, 12, 22):
            assert tuple(out[y, x]) == (255, 0, 0), (x, y)  # each tile's opaque half
            assert tuple(out[y, x + 5]) == BASE, (x, y)  # its transparent half: the base
    # With a blend: every tile multiplies.
    out = pixels_of("l_tile/fl_layer_apply,e_multiply,fl_tiled", sources)
    assert tuple(out[22, 32]) == (200, 0, 0) and tuple(out[22, 37]) == BASE


def test_anti_removal_distorts_the_layer_and_is_repeatable(sources: dict[str, Path]) -> None:
    plain = pixels_of("l_half/fl_layer_apply", sources)
    marked = pixels_of("l_half/fl_layer_apply,e_anti_removal", sources)
    assert marked.shape == plain.shape
    assert np.array_equal(marked, pixels_of("l_half/fl_layer_apply,e_anti_removal:50", sources))
    assert np.array_equal(plain, pixels_of("l_half/fl_layer_apply,e_anti_removal:0", sources))
    layer_area = (slice(5, 25), slice(10, 30))
    changed = np.abs(marked[layer_area].astype(int) - plain[layer_area]).max(axis=2) > 8
    assert changed.mean() > 0.2  # grain and warp over the layer
    assert np.array_equal(marked[:3], plain[:3])  # away from it, the base as it was
    strong = pixels_of("l_half/fl_layer_apply,e_anti_removal:100", sources)
    assert (
        np.abs(strong[layer_area].astype(int) - plain[layer_area]).mean()
        > np.abs(marked[layer_area].astype(int) - plain[layer_area]).mean()
    )


def test_anti_removal_at_a_ratio_is_an_enlargement_of_it_at_one() -> None:
    """Its warp and grain are lengths in the layer's pixels: at scale 2 (dpr_2.0), a layer twice the size is
    warped and grained as the 2x of the layer at scale 1 (each 2x2 block averaged: 0.9 from resampling;
    19 when the scale was left at 1, a finer warp and a grain averaged away). The size is kept at any
    ratio (1.5: rounding)."""
    xy = pyvips.Image.xyz(48, 32)
    layer = ((xy[0] * 5 + xy[1] * 3) % 256).bandjoin([xy[1] * 7 % 256, 128, 255])
    layer = layer.cast("uchar").copy(interpretation="srgb")
    one = np.asarray(anti_removal(layer, 100).numpy(), dtype=float)
    for scale, most in ((2.0, 1.5), (1.0, None)):
        two = anti_removal(layer.resize(2, kernel="nearest"), 100, scale)
        assert (two.width, two.height) == (96, 64)
        difference = np.abs(np.asarray(two.shrink(2, 2).numpy(), dtype=float) - one).mean()
        assert difference < most if most is not None else difference > 10, (scale, difference)
    odd = anti_removal(layer.resize(1.5, kernel="nearest"), 100, 1.5)
    assert (odd.width, odd.height) == (72, 48)


def test_the_one_component_form_blends_too(sources: dict[str, Path]) -> None:
    """Cloudinary's older form puts the blend in the component that opens the layer; any other e_ there
    still transforms the layer."""
    out = pixels_of("e_cut_out,l_half", sources)
    assert out[15, 12, 3] == 0 and tuple(out[15, 25]) == (*BASE, 255)
    grey = pixels_of("e_grayscale,l_half", sources)
    assert grey[15, 12, 0] == grey[15, 12, 1] == grey[15, 12, 2]


def test_a_blend_is_part_of_the_key() -> None:
    def plan(text: str) -> tuple[str, str]:
        compiled = compile_plan(parse_transformation(text))
        return compiled.canonical, compiled.derivative

    keys = {plan(text) for text in ("l_a/fl_layer_apply", "l_a/fl_layer_apply,e_multiply",
                                    "l_a/fl_layer_apply,e_screen", "l_a/fl_layer_apply,e_anti_removal",
                                    "l_a/fl_layer_apply,e_anti_removal:80", "l_a/fl_layer_apply,fl_cutter",
                                    "l_a/fl_layer_apply,fl_tiled", "e_cut_out,l_a", "l_a")}  # fmt: skip
    assert len(keys) == 9
    assert plan("l_a/fl_layer_apply,e_anti_removal:50") == plan("l_a/fl_layer_apply,e_anti_removal")


@pytest.mark.parametrize(
    ("transformation", "named"),
    [
        ("e_multiply", "e_multiply"),  # no layer to blend
        ("c_scale,e_screen,w_100", "e_screen"),
        ("l_a/e_overlay/fl_layer_apply", "e_overlay"),  # a step of the layer's own
        ("l_a/fl_layer_apply,e_grayscale", "e_grayscale"),  # not a blend mode
        ("u_a/fl_layer_apply,e_multiply", "e_multiply"),  # an underlay is covered by the image
        ("l_a/fl_layer_apply,e_multiply:2", "e_multiply:2"),
        ("l_a/fl_layer_apply,e_anti_removal:101", "e_anti_removal:101"),
        ("l_a/fl_layer_apply,e_anti_removal:-1", "e_anti_removal:-1"),
        ("l_a/fl_layer_apply,e_anti_removal:strong", "e_anti_removal:strong"),
        ("l_a/fl_layer_apply,e_mask,fl_cutter", "fl_cutter"),
        ("u_a/fl_layer_apply,fl_cutter", "fl_cutter"),
        ("l_a/fl_layer_apply,fl_tiled,g_north", "fl_tiled"),
        ("l_a/fl_layer_apply,fl_tiled,x_10", "fl_tiled"),
        ("fl_cutter", "fl_cutter"),  # outside fl_layer_apply
        ("l_a/c_scale,fl_tiled,w_10/fl_layer_apply", "fl_tiled"),
    ],
)
def test_blends_where_they_mean_nothing_are_a_400_naming_them(transformation: str, named: str) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_plan(parse_transformation(transformation))
    assert caught.value.status == 400
    assert named in caught.value.public, caught.value.public


def test_cutter_with_nothing_under_the_layer_is_a_400(sources: dict[str, Path]) -> None:
    with pytest.raises(BadRequest, match="fl_cutter"):
        pixels_of("l_half/fl_layer_apply,fl_cutter,fl_no_overflow,g_north_west,x_100", sources)
