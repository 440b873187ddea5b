"""Every registered op renders: one row per op (at least), checked for size, bands, format and a golden."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
import pyvips
from transform_helpers import (
    CornerSegmenter,
    check_golden,
    golden_distance,
    golden_pixels,
    load_golden,
    run,
    slug,
    within_tolerance,
)

from tests.conftest import require_face_model
from transform.ops import op_names


class Row(NamedTuple):
    op: str
    transformation: str
    source: (
        str  # photo (320x240 JPEG), cutout (200x160 PNG with alpha), product, oriented, anim (GIF)
    )
    size: tuple[int, int]
    bands: int
    fmt: str


ROWS = [
    Row("c_scale", "c_scale,w_160", "photo", (160, 120), 3, "jpg"),
    Row("c_fit", "c_fit,h_100,w_100", "photo", (100, 75), 3, "jpg"),
    Row("c_limit", "c_limit,h_100,w_500", "photo", (133, 100), 3, "jpg"),
    Row("c_mfit", "c_mfit,h_640,w_640", "photo", (640, 480), 3, "jpg"),
    Row("c_fill", "c_fill,g_east,h_100,w_100", "photo", (100, 100), 3, "jpg"),
    Row("c_lfill", "c_lfill,h_400,w_100", "photo", (100, 240), 3, "jpg"),
    Row("c_pad", "b_blue,c_pad,h_200,w_200", "photo", (200, 200), 3, "jpg"),
    Row("c_lpad", "c_lpad,g_north,h_400,w_400", "photo", (400, 400), 3, "jpg"),
    Row("c_mpad", "c_mpad,h_300,w_400", "cutout", (400, 300), 4, "png"),
    Row("c_crop", "c_crop,h_80,w_100,x_20,y_30", "photo", (100, 80), 3, "jpg"),
    Row("c_thumb", "c_thumb,g_auto,h_90,w_90", "photo", (90, 90), 3, "jpg"),
    Row("w_", "w_0.5", "photo", (160, 120), 3, "jpg"),
    Row("h_", "h_60", "photo", (80, 60), 3, "jpg"),
    Row("ar_", "ar_1:1,c_fill,w_100", "photo", (100, 100), 3, "jpg"),
    Row("dpr_", "c_scale,dpr_2.0,w_50", "photo", (100, 75), 3, "jpg"),
    Row("g_", "c_fill,g_north_west,h_100,w_100", "photo", (100, 100), 3, "jpg"),
    Row("g_", "c_crop,g_south_east,h_100,w_100,x_10,y_20", "photo", (100, 100), 3, "jpg"),
    Row("x_", "c_crop,h_100,w_100,x_0.5,y_0.1", "photo", (100, 100), 3, "jpg"),
    Row("y_", "l_logo/fl_layer_apply,g_south_east,x_10,y_10", "photo", (320, 240), 3, "jpg"),
    Row("a_", "a_hflip.45", "photo", (396, 396), 4, "png"),
    Row("a_", "a_90", "photo", (240, 320), 3, "jpg"),
    Row("a_", "a_vflip", "photo", (320, 240), 3, "jpg"),
    Row("a_", "a_ignore", "oriented", (120, 80), 3, "jpg"),
    Row("a_", "a_ignore,c_scale,w_60", "oriented", (60, 40), 3, "jpg"),  # shrink-on-load path
    # The third frame of the animated GIF (its blue disc), as a still (test_transform_animation: more).
    Row("pg_", "c_scale,f_png,pg_3,w_120", "anim", (120, 75), 3, "png"),
    # Timing (the golden is the first frame; test_transform_animation checks delays, loops and frames).
    # Rounded corners: an animated WebP decodes with alpha, so the rows make it transparent.
    Row("dl_", "c_scale,dl_200,w_120/r_max/f_webp", "anim", (120, 75), 4, "webp"),
    Row("vs_", "c_scale,vs_2,w_120/r_max/f_webp", "anim", (120, 75), 4, "webp"),
    Row("e_loop", "c_scale,w_120/r_max/e_loop:2/f_webp", "anim", (120, 75), 4, "webp"),
    Row("a_", "a_ignore.90", "oriented", (80, 120), 3, "jpg"),
    Row("r_", "r_20", "photo", (320, 240), 4, "png"),
    Row("r_", "r_10:20:40:60", "photo", (320, 240), 4, "png"),
    Row("r_", "r_max", "photo", (320, 240), 4, "png"),
    Row("bo_", "bo_4px_solid_red", "photo", (328, 248), 3, "jpg"),
    Row("bo_", "bo_3px_solid_black,r_20", "photo", (326, 246), 4, "png"),
    Row("o_", "o_50", "photo", (320, 240), 4, "png"),
    Row("b_", "b_yellow", "cutout", (200, 160), 3, "png"),
    Row("f_", "c_scale,w_100/f_webp", "cutout", (100, 80), 4, "webp"),
    Row("f_", "c_scale,w_100/f_avif", "photo", (100, 75), 3, "avif"),
    Row("f_", "c_scale,w_100/f_jpg", "cutout", (100, 80), 3, "jpg"),
    Row("q_", "c_scale,w_100/q_30", "photo", (100, 75), 3, "jpg"),
    Row("cs_", "c_scale,cs_srgb,w_100", "photo", (100, 75), 3, "jpg"),
    Row("l_", "l_logo/c_scale,w_40/fl_layer_apply,g_north_east,x_5,y_5", "photo", (320, 240), 3, "jpg"),
    Row("l_", "l_logo/fl_layer_apply,g_north_west,x_-30,y_-20", "photo", (350, 260), 4, "png"),
    Row("l_", "g_north_east,l_logo", "photo", (320, 240), 3, "jpg"),
    Row("u_", "u_road/fl_layer_apply,y_-40", "photo", (480, 360), 3, "jpg"),
    Row("u_", "u_road/c_scale,w_240/fl_layer_apply,g_south", "cutout", (240, 180), 3, "png"),
    Row("fl_", "l_road/fl_layer_apply,fl_no_overflow,g_south,y_-30", "photo", (320, 240), 3, "jpg"),
    Row("fl_", "l_logo/c_scale,fl_layer_apply,fl_relative,w_0.5", "photo", (320, 240), 3, "jpg"),
    Row("fl_", "l_road/c_scale,fl_relative,w_0.3/fl_layer_apply,g_north_east", "photo", (320, 240), 3, "jpg"),
    Row("fl_", "r_20/f_jpg,fl_preserve_transparency", "photo", (320, 240), 4, "png"),
    Row("fl_", "c_scale,w_100/fl_progressive", "photo", (100, 75), 3, "jpg"),
    # Blending a layer (tests/transform/test_transform_blends.py checks the formulas pixel by pixel).
    Row("e_multiply", "l_road/c_scale,w_200/fl_layer_apply,e_multiply", "photo", (320, 240), 3, "jpg"),
    Row("e_screen", "l_road/c_scale,w_200/fl_layer_apply,e_screen", "photo", (320, 240), 3, "jpg"),
    Row("e_overlay", "l_road/c_scale,w_200/fl_layer_apply,e_overlay", "photo", (320, 240), 3, "jpg"),
    Row("e_mask", "l_logo/c_scale,w_200/fl_layer_apply,e_mask", "photo", (320, 240), 4, "png"),
    Row("e_cut_out", "l_logo/c_scale,w_200/fl_layer_apply,e_cut_out", "photo", (320, 240), 4, "png"),
    Row("e_cut_out", "c_scale,e_cut_out,g_south_west,l_logo,w_120,x_20,y_20", "photo", (320, 240), 4, "png"),
    Row("e_anti_removal", "l_logo/c_scale,w_200/fl_layer_apply,e_anti_removal:80", "photo", (320, 240), 3,
        "jpg"),  # fmt: skip
    Row("fl_", "l_logo/c_scale,w_200/fl_layer_apply,fl_cutter", "photo", (200, 150), 4, "png"),
    Row("fl_", "l_logo/c_scale,w_60/fl_layer_apply,fl_tiled", "photo", (320, 240), 3, "jpg"),
    Row("fl_", "c_scale,w_100/fl_progressive", "cutout", (100, 80), 4, "png"),
    Row("t_", "t_badge", "photo", (50, 50), 4, "png"),
    # The original is there: the default image is not used (what it stands in for is tests/app's).
    Row("d_", "d_road.png/c_scale,w_160", "photo", (160, 120), 3, "jpg"),
    Row("e_grayscale", "e_grayscale", "photo", (320, 240), 3, "jpg"),
    Row("e_blur", "e_blur:400", "photo", (320, 240), 3, "jpg"),
    Row("e_blur", "e_blur", "cutout", (200, 160), 4, "png"),
    Row("e_sharpen", "e_sharpen:300", "photo", (320, 240), 3, "jpg"),
    Row("e_dropshadow", "e_dropshadow:azimuth_90;spread_20", "cutout", (200, 160), 4, "png"),
    Row("e_dropshadow", "e_dropshadow", "cutout", (200, 160), 4, "png"),
    Row("e_background_removal", "e_background_removal", "photo", (320, 240), 4, "png"),
    Row("e_trim", "e_trim", "product", (100, 80), 3, "jpg"),
    Row("e_trim", "e_trim", "cutout", (139, 111), 4, "png"),
    Row("e_trim", "e_trim:5:rgb:b0bad2", "photo", (266, 200), 3, "jpg"),  # backdrop colour, not the corner's
    Row("e_trim", "e_background_removal/e_trim/b_white,c_pad,h_500,w_500", "photo", (500, 500), 3, "jpg"),
    Row("co_", "co_red,e_colorize:40", "photo", (320, 240), 3, "jpg"),
    Row("e_colorize", "e_colorize", "cutout", (200, 160), 4, "png"),
    Row("e_negate", "e_negate", "photo", (320, 240), 3, "jpg"),
    Row("e_sepia", "e_sepia", "photo", (320, 240), 3, "jpg"),
    Row("e_brightness", "e_brightness:30", "photo", (320, 240), 3, "jpg"),
    Row("e_brightness", "e_brightness:-50", "cutout", (200, 160), 4, "png"),
    Row("e_contrast", "e_contrast:50", "photo", (320, 240), 3, "jpg"),
    Row("e_contrast", "e_contrast:level_-70", "photo", (320, 240), 3, "jpg"),
    Row("e_saturation", "e_saturation:-60", "cutout", (200, 160), 4, "png"),
    Row("e_saturation", "e_saturation", "photo", (320, 240), 3, "jpg"),
    Row("e_blackwhite", "e_blackwhite", "photo", (320, 240), 3, "jpg"),
    Row("e_hue", "e_hue:50", "photo", (320, 240), 3, "jpg"),
    Row("e_hue", "e_hue", "cutout", (200, 160), 4, "png"),
    Row("e_gamma", "e_gamma:80", "photo", (320, 240), 3, "jpg"),
    Row("e_vibrance", "e_vibrance:80", "photo", (320, 240), 3, "jpg"),
    Row("e_vibrance", "e_vibrance", "cutout", (200, 160), 4, "png"),
    Row("e_auto_contrast", "e_auto_contrast", "photo", (320, 240), 3, "jpg"),
    Row("e_auto_brightness", "e_auto_brightness:70", "photo", (320, 240), 3, "jpg"),
    Row("e_auto_color", "e_auto_color", "photo", (320, 240), 3, "jpg"),
    Row("e_auto_color", "e_auto_color", "cutout", (200, 160), 4, "png"),
    Row("e_improve", "e_improve", "photo", (320, 240), 3, "jpg"),
    Row("e_improve", "e_improve:indoor:60", "cutout", (200, 160), 4, "png"),
    Row("e_tint", "e_tint:100:black:red:yellow", "photo", (320, 240), 3, "jpg"),
    Row("e_tint", "e_tint:equalize:50:blue", "cutout", (200, 160), 4, "png"),
    Row("e_red", "e_red:60", "photo", (320, 240), 3, "jpg"),
    Row("e_green", "e_green:-50", "photo", (320, 240), 3, "jpg"),
    Row("e_blue", "e_blue:80", "cutout", (200, 160), 4, "png"),
    Row("e_gradient_fade", "e_gradient_fade", "photo", (320, 240), 4, "png"),
    Row("e_gradient_fade", "b_black,e_gradient_fade:symmetric:40,x_0.3", "photo", (320, 240), 3, "jpg"),
    Row(
        "e_gradient_fade",
        "b_auto,c_pad,e_gradient_fade:symmetric_pad,h_240,w_480,x_0.2",
        "photo",
        (480, 240),
        3,
        "jpg",
    ),
    Row("e_vignette", "e_vignette:60", "photo", (320, 240), 3, "jpg"),
    Row("e_cartoonify", "e_cartoonify", "photo", (320, 240), 3, "jpg"),
    Row("e_cartoonify", "e_cartoonify:70:bw", "cutout", (200, 160), 4, "png"),
    Row("e_pixelate", "e_pixelate:12", "photo", (320, 240), 3, "jpg"),
    Row("e_pixelate", "e_pixelate", "cutout", (200, 160), 4, "png"),
    Row("e_pixelate_region", "e_pixelate_region:10,h_100,w_120,x_150,y_60", "photo", (320, 240), 3, "jpg"),
    Row("e_unsharp_mask", "e_unsharp_mask:300", "photo", (320, 240), 3, "jpg"),
    Row("e_make_transparent", "e_make_transparent", "product", (240, 180), 4, "png"),
    Row("e_make_transparent", "co_rgb:d2281e,e_make_transparent:5", "photo", (320, 240), 4, "png"),
    Row("e_replace_color", "e_replace_color:blue:40:d2281e", "photo", (320, 240), 3, "jpg"),
    Row("e_replace_color", "e_replace_color:orange", "photo", (320, 240), 3, "jpg"),  # the backdrop
    Row("e_opacity_threshold", "e_blur:300/e_opacity_threshold:80", "cutout", (200, 160), 4, "png"),
    Row("e_alpha_mask", "e_alpha_mask", "cutout", (200, 160), 1, "png"),
    Row("e_alpha_mask", "e_background_removal/e_alpha_mask/c_scale,w_160", "photo", (160, 120), 1, "jpg"),
    Row("e_margin", "e_margin:10", "cutout", (220, 180), 4, "png"),
    Row("e_margin", "e_margin:10p:5/b_white", "photo", (330, 288), 3, "jpg"),
    Row("e_roi", "e_roi:20:10:120:100", "cutout", (200, 160), 4, "png"),
    Row("e_roi", "e_background_removal/e_roi:0:0:50p:100p/b_white", "photo", (320, 240), 3, "jpg"),
    # Outlines: modes reaching outside the shape grow the canvas by width (+ 2 sigma of blur) a side.
    Row("e_outline", "co_blue,e_outline", "cutout", (210, 170), 4, "png"),
    Row("e_outline", "co_red,e_outline:inner:8", "cutout", (200, 160), 4, "png"),
    Row("e_outline", "co_orange,e_outline:outer:15:200", "cutout", (310, 270), 4, "png"),
    Row("e_outline", "e_outline:fill:10", "logo", (100, 80), 4, "png"),
    Row("e_outline", "co_green,e_outline:inner_fill", "cutout", (200, 160), 4, "png"),
    Row("e_outline", "co_red,e_outline:6", "photo", (332, 252), 4, "png"),
    # Shadows: the canvas holds the moved shape plus 3 sigma of blur (strength x 0.125 px).
    Row("e_shadow", "co_red,e_shadow:60,x_10,y_12", "photo", (366, 286), 4, "png"),
    Row("e_shadow", "e_shadow", "cutout", (230, 190), 4, "png"),
    Row("e_shadow", "co_rgb:1a8502,e_shadow:0,x_-15,y_15", "logo", (95, 75), 4, "png"),
    # Content-aware padding.
    Row("c_fill_pad", "c_fill_pad,g_auto,h_300,w_100", "photo", (100, 300), 3, "jpg"),
    Row("c_fill_pad", "b_auto:predominant,c_fill_pad,g_auto,h_100,w_300", "photo", (300, 100), 3, "jpg"),
    Row("c_fill_pad", "c_fill_pad,g_auto,h_120,w_300", "product", (300, 120), 3, "jpg"),
    Row("b_", "b_auto,c_pad,h_200,w_200", "photo", (200, 200), 3, "jpg"),
    Row("b_", "b_auto:border_contrast,c_pad,h_200,w_200", "photo", (200, 200), 3, "jpg"),
    Row("b_", "b_auto:predominant_contrast,c_pad,h_200,w_200", "product", (200, 200), 3, "jpg"),
    # b_auto gradients: the reference's example as written, 4 corners, contrasts limited to a palette.
    Row("b_", "b_auto:predominant_gradient:2:diagonal_desc,c_pad,h_150,w_150", "photo", (150, 150), 3, "jpg"),
    Row("b_", "b_auto:border_gradient:4,c_pad,h_300,w_200", "photo", (200, 300), 3, "jpg"),
    Row("b_", "b_auto:predominant_gradient_contrast:2:vertical:palette_red_blue_orange,c_pad,h_300,w_300",
        "photo", (300, 300), 3, "jpg"),  # fmt: skip
    Row("c_fill_pad", "b_auto:border_gradient,c_fill_pad,g_auto,h_300,w_100", "photo", (100, 300), 3, "jpg"),
    # The image itself, blurred, as the pad (tests/transform/test_transform_blurred_pad.py: more).
    Row("b_", "b_blurred,c_pad,h_300,w_200", "photo", (200, 300), 3, "jpg"),
    Row("b_", "b_blurred:400:-60,c_lpad,h_240,w_480", "photo", (480, 240), 3, "jpg"),
    # Face gravities on a real photograph (the astronaut, 512x512), with the real detector.
    Row("c_thumb", "c_thumb,g_face,h_150,w_150", "face", (150, 150), 3, "jpg"),
    Row("z_", "c_thumb,g_face,h_150,w_150,z_0.5", "face", (150, 150), 3, "jpg"),
    Row("z_", "c_thumb,g_face,h_100,w_200,z_1.5", "face", (200, 100), 3, "jpg"),
    Row("g_", "c_fill,g_face,h_300,w_100", "face", (100, 300), 3, "jpg"),
    Row("g_", "c_fill,g_auto:faces,h_100,w_300", "face", (300, 100), 3, "jpg"),
    Row("g_", "c_crop,g_face,h_150,w_150", "face", (150, 150), 3, "jpg"),
    Row("g_", "ar_1,c_crop,g_face", "face", (289, 289), 3, "jpg"),  # the thumbnail's region, unscaled
    Row("g_", "c_thumb,g_face,h_90,w_90", "photo", (90, 90), 3, "jpg"),  # no face: north
    Row("e_blur_faces", "e_blur_faces", "face", (512, 512), 3, "jpg"),
    Row("e_pixelate_faces", "e_pixelate_faces:12", "face", (512, 512), 3, "jpg"),
    Row("e_pixelate_faces", "e_pixelate_faces", "photo", (320, 240), 3, "jpg"),  # no face: unchanged
    # The subject (the stand-in segmenter's foreground: the red disc and the dark square).
    Row("c_auto", "c_auto,h_100,w_100", "photo", (100, 100), 3, "jpg"),
    Row("c_auto", "c_auto,g_auto:face,h_120,w_90", "face", (90, 120), 3, "jpg"),
    Row("g_", "c_fill,g_auto:subject,h_240,w_100", "photo", (100, 240), 3, "jpg"),
    Row("g_", "c_thumb,g_auto:object,h_100,w_100", "product", (100, 100), 3, "jpg"),
    # Conditions and variables: the branch taken, and a size from the original's.
    Row("if_", "if_ar_gt_1.0/c_fill,h_100,w_100/if_else/c_scale,w_50/if_end", "photo", (100, 100), 3, "jpg"),
    Row("if_", "if_w_gt_300,e_grayscale", "cutout", (200, 160), 4, "png"),  # not taken: the cut-out
    Row("$_", "$w_iw_div_4/c_scale,w_$w/e_blur:$w_mul_2", "photo", (80, 60), 3, "jpg"),
]
NAMED = {"badge": "c_fill,h_50,w_50/r_max"}
NO_FACE = "e_pixelate_faces"  # on the photo, which has no face: the one effect row that changes nothing
TIMING = "e_loop"  # an effect on the file's loop count, not on the pixels


@pytest.mark.parametrize(
    "extra", ["d_road.png", "fl_attachment", "fl_attachment:photo", "d_road,fl_attachment"]
)
def test_default_image_and_attachment_leave_the_bytes_alone(extra: str, files: dict[str, Path]) -> None:
    """They choose the source (when the original is missing) and the headers, never the pixels: the bytes
    are those of the transformation without them, so the cache may share one entry."""
    plain = run("c_scale,w_90/e_grayscale", files["photo"], files)
    for transformation in (f"{extra}/c_scale,w_90/e_grayscale", f"c_scale,w_90/e_grayscale,{extra}"):
        assert run(transformation, files["photo"], files).data == plain.data, transformation


def test_every_registered_op_has_a_pixel_test() -> None:
    missing = set(op_names()) - {row.op for row in ROWS}
    assert not missing, f"ops without a row in ROWS: {sorted(missing)}"


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.source}-{slug(r.transformation)}" for r in ROWS])
def test_op_renders(row: Row, files: dict[str, Path]) -> None:
    if "face" in row.transformation:
        require_face_model()
    rendered = run(row.transformation, files[row.source], files, segmenter=CornerSegmenter(), named=NAMED)
    decoded = pyvips.Image.new_from_buffer(rendered.data, "")
    assert (rendered.width, rendered.height) == row.size == (decoded.width, decoded.height)
    assert decoded.bands == row.bands
    assert rendered.format == row.fmt
    assert rendered.has_alpha == (row.bands == 4)
    check_golden(f"{row.source}-{slug(row.transformation)}", rendered)


#: Rows whose golden must differ from the unchanged image: every effect, and the new paddings (a resize
#: or a crop is measured by its size; an effect that does nothing keeps the size).
CHANGING = [
    r for r in ROWS
    if (r.op.startswith(("e_", "co_")) or "b_auto" in r.transformation or "b_blurred" in r.transformation)
    and r.transformation != NO_FACE
    and r.op != TIMING
]  # fmt: skip


@pytest.mark.parametrize("row", CHANGING, ids=[f"{r.source}-{slug(r.transformation)}" for r in CHANGING])
def test_goldens_are_not_the_identity(row: Row, files: dict[str, Path]) -> None:
    """The golden comparison would catch an effect that does nothing: the unchanged image, brought to the
    output's size, is outside the tolerance of each effect's golden."""
    golden = load_golden(f"{row.source}-{slug(row.transformation)}")
    unchanged = pyvips.Image.new_from_file(str(files[row.source]))
    unchanged = unchanged.thumbnail_image(row.size[0], height=row.size[1], size="force")
    distance = golden_distance(golden, golden_pixels(unchanged))
    assert not within_tolerance(distance), f"{row.transformation}: golden is the unchanged image {distance}"
