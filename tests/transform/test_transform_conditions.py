"""Conditions (if_ ... if_else ... if_end) and user variables ($name_): what the compile folds, what the
render decides from the image, and the 400s that name what was wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
from transform_helpers import run

from grammar import parse_transformation
from grammar.errors import BadRequest, InvalidArgument
from transform import Plan, compile_plan


def plan(text: str, *, named: dict[str, str] | None = None, unbound: bool = False) -> Plan:
    return compile_plan(parse_transformation(text), named=named, unbound=unbound)


# ---- compile: what the URL alone decides is folded, the rest is left to the render ----------------------
FOLDED = [
    ("$w_300/c_scale,w_$w", "c_scale,w_300"),
    ("$w_300,c_scale,w_$w", "c_scale,w_300"),
    ("$small_150,$big_2_mul_$small/c_fill,h_$small_add_20,w_$big", "c_fill,h_170,w_300"),
    ("$s_0.5/w_$s", "w_0.5"),  # a literal keeps its form: a fraction, as w_0.5 is
    ("$w_10/$w_$w_mul_3/w_$w", "w_30"),
    ("r_10:$v:30,$v_20", "r_10:20:30"),  # a component's variables come first
    ("$e_!blur!/e_$e:300", "e_blur:300"),
    ("$a_90/a_$a", "a_90"),
    # a border's width (Cloudinary writes no "px" after the variable), its colour as written
    ("$b_15/bo_$b_solid_rgb:FFB235", "bo_15px_solid_rgb:ffb235"),
    # any other value, a whole variable the URL sets
    ("$q_50/q_$q", "q_50"),
    ("$c_!red!/co_$c,e_colorize", "co_red,e_colorize"),
    ("$hex_!00ff00!/co_rgb:$hex,e_colorize", "co_rgb:00ff00,e_colorize"),
    ("$m_!fill!,$g_!north!/c_$m,g_$g,h_10,w_10", "c_fill,g_north,h_10,w_10"),
    ("$f_!png!/c_scale,f_$f,w_10", "c_scale,f_png,w_10"),
    ("$b_!5px_solid_red!/bo_$b", "bo_5px_solid_red"),
    ("w_100_div_3", "w_33"),  # computed widths are whole pixels
    ("$r_16:9/ar_$r,c_fill,w_160", "ar_16:9,c_fill,w_160"),
    ("$w_300", ""),  # a variable nobody uses changes nothing
    # layers: a whole variable as a part of l_/u_, and $(name) in a text layer's text
    ("$img_!logo!/l_$img/fl_layer_apply", "l_logo/fl_layer_apply"),
    ("$style_!Arial_12!/l_text:$style:hi/fl_layer_apply", "l_text:Arial_12:hi/fl_layer_apply"),
    ("$name_!Jane%20Doe!/l_text:Arial_40:Hello%20$(name)/fl_layer_apply",
     "l_text:Arial_40:Hello%20Jane%20Doe/fl_layer_apply"),
    ("$n_3_mul_4/l_text:Arial_40:$(n)%20items/fl_layer_apply", "l_text:Arial_40:12%20items/fl_layer_apply"),
    ("l_w:logo/fl_layer_apply", "l_w:logo/fl_layer_apply"),  # a folder named like a name is a folder
]


@pytest.mark.parametrize(("text", "derivative"), FOLDED, ids=[f[0] for f in FOLDED])
def test_what_the_url_decides_is_folded(text: str, derivative: str) -> None:
    compiled = plan(text)
    assert compiled.derivative == derivative
    assert not compiled.reads
    if derivative:
        assert plan(derivative).derivative == derivative


LEFT = [
    ("if_w_gt_1000/c_scale,w_1000/if_end", "if_w_gt_1000/c_scale,w_1000/if_end", {"w"}),
    ("if_ar_gt_1.0,c_fill,h_300,w_500", "if_ar_gt_1.0,c_fill,h_300,w_500", {"ar"}),
    ("c_scale,w_iw_div_2", "c_scale,w_iw_div_2", {"iw"}),
    ("$w_iw_div_2/c_scale,w_$w", "$w_iw_div_2/c_scale,w_$w", {"iw", "$w"}),
    # partly folded: $foo is the URL's, fc the image's
    ("$foo_10/if_fc_gt_2/c_scale,w_$foo_mul_200_div_fc/if_end", "if_fc_gt_2/c_scale,w_2000_div_fc/if_end",
     {"fc"}),
    ("if_fc_gt_2,$z_5,$foo_$z_mul_2,c_scale,w_$foo_mul_200", "if_fc_gt_2,$z_5,$foo_10,c_scale,w_2000",
     {"fc"}),
    ("if_!sale!_in_tags/e_grayscale/if_end", "if_!sale!_in_tags/e_grayscale/if_end", {"tags"}),
    ("$w_300/if_w_gt_$w/c_scale,w_$w/if_end", "if_w_gt_300/c_scale,w_300/if_end", {"w"}),
    ("bo_w_div_50_solid_black", "bo_w_div_50_solid_black", {"w"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "derivative", "reads"), LEFT, ids=[t[0] for t in LEFT])
def test_what_the_image_decides_is_left_to_the_render(text: str, derivative: str, reads: set[str]) -> None:
    compiled = plan(text)
    assert compiled.derivative == derivative
    assert compiled.reads == reads


def test_the_same_url_gives_the_same_text_and_different_conditions_differ() -> None:
    one = plan("if_w_gt_1000/c_scale,w_1000/if_end").derivative
    assert one == plan("if_w_gt_1000/w_1000,c_scale/if_end").derivative
    assert one != plan("if_w_gt_999/c_scale,w_1000/if_end").derivative
    assert one != plan("if_w_gt_1000/c_scale,w_1000/if_else/if_end").derivative


def test_face_counts_and_tags_mark_the_plan() -> None:
    assert plan("if_fc_gt_0/e_grayscale/if_end").needs_faces
    assert not plan("if_w_gt_0/e_grayscale/if_end").needs_faces
    assert plan("if_!a!_in_tags/e_grayscale/if_end").needs_asset
    assert plan("$k_ctx:!kind!/if_$k_eq_!shoes!/e_grayscale/if_end").needs_asset
    assert not plan("if_w_gt_0/e_grayscale/if_end").needs_asset


def test_a_branch_that_removes_the_background_makes_the_plan_segment() -> None:
    assert plan("if_w_gt_0/e_background_removal/if_end").needs_segmentation
    assert plan("if_w_gt_0/if_else/e_background_removal/if_end").needs_segmentation
    assert not plan("if_w_gt_0/e_grayscale/if_end").needs_segmentation


def test_a_named_transformation_may_use_the_urls_variables() -> None:
    named = {"passport": "c_thumb,g_auto,h_$width,w_$width"}
    assert plan("$width_150/t_passport", named=named).derivative == "c_thumb,g_auto,h_150,w_150"
    assert plan("$width_20/t_passport", named=named).derivative == "c_thumb,g_auto,h_20,w_20"
    with pytest.raises(InvalidArgument):
        plan("t_passport", named=named)
    plan("c_thumb,g_auto,h_$width,w_$width", unbound=True)  # checked on its own at start-up
    # Layers too: what they show and where they go comes from the URL.
    overlay = "l_$img/c_scale,w_$w/fl_layer_apply,g_north_east,x_$pad"
    plan(overlay, unbound=True)
    plan("l_text:$style:Hi%20$(name)/fl_layer_apply", unbound=True)
    plan("co_$tint,e_colorize/q_$q", unbound=True)  # the URLs using it set them
    assert plan("$tint_!red!/t_tint", named={"tint": "co_$tint,e_colorize"}).derivative == "co_red,e_colorize"
    used = plan("$img_!logo!,$pad_5,$w_40/t_overlay", named={"overlay": overlay})
    assert used.derivative == "l_logo/c_scale,w_40/fl_layer_apply,g_north_east,x_5"
    assert used.layer_ids == {"logo"}
    with pytest.raises(BadRequest, match="a value only the image decides"):  # not a URL's variable
        plan("$s_iw/l_text:$s:Hi/fl_layer_apply", unbound=True)


ERRORS = [
    ("if_w_gt_5", "Invalid transformation: if_ without its if_end (every if_ block is closed by if_end)"),
    ("if_end", "Invalid transformation: if_end without an if_ before it"),
    ("w_10/if_else/w_5/if_end", "Invalid transformation: if_else without an if_ before it"),
    ("if_w_gt_5/if_else/if_else/if_end", "Invalid transformation: if_else given twice in one if_ block"),
    ("if_w_gt_5/if_else,w_10/if_end", "Invalid transformation: if_else must be alone in its component"),
    (
        "if_foo_gt_5/w_1/if_end",
        "Invalid transformation parameter - if_foo_gt_5: unknown name 'foo' (names are w, h, ar, iw, ih, "
        "iar, fc, pc, tags, ctx:!key!, or a $variable)",
    ),
    (
        "if_cp_gt_1/w_1/if_end",
        "Invalid transformation parameter - if_cp_gt_1: cp is not supported by this server: a condition "
        "holds for the whole image, not page by page (pg_ chooses the pages)",
    ),
    (
        "if_w_gtt_5/w_1/if_end",
        "Invalid transformation parameter - if_w_gtt_5: if_ takes a condition <name>_<operator>_<value> "
        "(w_gt_1000, ar_lt_1.0, !sale!_in_tags; operators eq, ne, lt, gt, lte, gte, in, nin; joined by _and_ "
        "or _or_), else or end: unexpected '_gtt_5' at character 2; expected a comparison (_eq_, _ne_, _lt_, "
        "_gt_, _lte_, _gte_, _in_, _nin_), an operator (_add_, _sub_, _mul_, _div_, _mod_, _pow_, _to_f, "
        "_to_i), _and_ or _or_",
    ),
    ("w_$x", "Invalid transformation parameter - w_$x: $x is not defined (set it earlier in the chain: "
             "$x_<value>)"),
    ("$z_0/w_100_div_$z", "Invalid transformation parameter - w_100_div_$z: division by zero (_div_ 0)"),
    ("$w_-20/w_$w", "Invalid transformation parameter - w_$w (= -20): width must be a positive integer up to "
                    "16384 (pixels) or a decimal fraction up to 100.0"),
    ("$w_!wide!/w_$w", "Invalid transformation parameter - w_$w (= wide): width must be a positive integer "
                       "up to 16384 (pixels) or a decimal fraction up to 100.0"),
    ("w_10_mul_!a!", "Invalid transformation parameter - w_10_mul_!a!: _mul_ needs numbers, not !a! (convert "
                     "text with _to_f)"),
    ("$x_10_pow_1000", "Invalid transformation parameter - $x_10_pow_1000: 10_pow_1000 has no finite value"),
    ("if_w_gt_5/f_png/if_end", "Invalid transformation: f_ applies to the delivered image, not inside an if_ "
                               "block"),
    ("if_w_gt_5/d_road/if_end", "Invalid transformation: d_ names the default of the delivered image; it "
                                "cannot be inside an if_ block"),
    ("if_w_gt_5/a_ignore/if_end", "Invalid transformation: a_ignore (how the original is loaded) cannot be "
                                  "inside an if_ block"),
    ("l_logo/if_w_gt_5/fl_layer_apply/if_end", "Invalid transformation: fl_layer_apply inside an if_ block "
     "applies a layer opened outside it; close the if_ block (if_end) first"),
    ("if_w_gt_5/l_logo/if_end/fl_layer_apply", "Invalid transformation: if_end without an if_ before it "
                                               "(inside a layer opened after it)"),
    ("if_w_gt_5,l_logo", "Invalid transformation: if_w_gt_5 with other parameters applies to its component "
                         "alone, which cannot open or apply a layer; use if_.../if_end"),
    ("l_logo/if_!a!_in_tags/e_grayscale/if_end/fl_layer_apply", "Invalid transformation parameter - "
     "if_!a!_in_tags: tags and ctx:!key! are the delivered asset's; they cannot be tested inside a layer"),
    ("l_logo/fl_layer_apply,x_w_mul_0.1", "Invalid transformation parameter - x_w_mul_0.1: a value only the "
     "image decides is not supported in a component with fl_layer_apply (set it from the URL, or size the "
     "layer in a component of its own)"),
    ("$e_ctx:!e!/e_$e:300", "Invalid transformation parameter - e_$e:300: the effect's name must be known "
                            "from the URL (only its arguments may depend on the image)"),
    ("if_md:!a!_eq_!b!/w_1/if_end", "Invalid transformation parameter - if_md:!a!_eq_!b!: structured "
     "metadata (md:) is not supported by this server; use ctx:!key!"),
    ("l_text:Arial_40:Hi%20$(name)/fl_layer_apply", "Invalid transformation parameter - "
     "l_text:Arial_40:Hi%20$(name): $name is not defined (set it earlier in the chain: $name_<value>)"),
    ("$n_iw/l_text:$n:Hi/fl_layer_apply", "Invalid transformation parameter - l_text:$n:Hi: a value only the "
     "image decides is not supported in a component with l_ (set it from the URL, or size the layer in a "
     "component of its own)"),
    ("$q_iw_div_10/q_$q", "Invalid transformation parameter - q_$q: a $variable here must be set from the "
     "URL, outside if_ blocks (not from the image, ctx:!key! or a branch), as only the URL's text decides "
     "this parameter"),
    ("/".join(["if_w_gt_1"] * 9 + ["if_end"] * 9),
     "Invalid transformation: if_ blocks nest more than 8 deep"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[e[0][:40] for e in ERRORS])
def test_bad_input_is_a_400_naming_it(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        plan(text)
    assert caught.value.status == 400
    assert caught.value.public == message


# ---- render: the image decides -------------------------------------------------------------------------
RENDERED = [
    # photo: 320x240
    ("if_w_gt_1000/c_scale,w_1000/if_end", (320, 240)),
    ("if_w_gt_300/c_scale,w_100/if_end", (100, 75)),
    ("if_w_lt_300/c_scale,w_100/if_else/c_scale,w_50/if_end", (50, 38)),
    ("if_ar_gt_1.0,c_fill,h_300,w_500", (500, 300)),
    ("if_ar_lt_1.0,c_fill,h_300,w_500", (320, 240)),
    ("if_ar_gt_3:4_and_w_gt_300_and_h_gt_200,c_crop,h_200,w_300", (300, 200)),
    ("if_w_gt_1000_or_h_eq_240,c_scale,w_32", (32, 24)),
    ("if_w_ne_h/c_fill,h_50,w_50/if_end", (50, 50)),
    # w and h are the current image's, iw and ih the original's
    ("c_scale,w_100/if_w_eq_100/c_scale,h_10/if_end", (13, 10)),
    ("c_scale,w_100/if_iw_eq_100/c_scale,h_10/if_end", (100, 75)),
    ("c_scale,w_100/if_iar_gt_1.3_and_iw_eq_320,c_scale,h_10", (13, 10)),
    # nested blocks
    ("if_iw_gt_300/if_ih_gt_300/w_10/if_else/w_20/if_end/if_end", (20, 15)),
    ("if_iw_lt_300/w_10/if_else/if_ih_lt_300/w_40/if_end/if_end", (40, 30)),
    # arithmetic and variables from the image
    ("c_scale,w_iw_div_2", (160, 120)),
    ("$w_iw_div_3/c_scale,w_$w", (107, 80)),
    ("c_crop,h_ih_div_2,w_w_div_2,x_w_div_4,y_0", (160, 120)),
    ("c_scale,h_ih_mul_0.5_add_10", (173, 130)),
    ("$w_iw/if_w_gt_100/$w_50/if_end/c_scale,w_$w", (50, 38)),  # set in a branch, used after it
    ("$w_40/if_w_gt_1000/$w_50/if_end/c_scale,w_$w", (40, 30)),  # the way around the branch keeps it
    ("$w_40/if_w_gt_100/$w_50/if_else/$w_60/if_end/c_scale,w_$w", (50, 38)),
    # Cloudinary's "User-defined Variables with Border": a tenth of the width, at most 15 px
    ("c_scale,w_100/$b_w_mul_0.1/if_$b_gt_15,$b_15/bo_$b_solid_rgb:FFB235", (120, 95)),
    ("$b_w_mul_0.1/if_$b_gt_15,$b_15/bo_$b_solid_rgb:FFB235", (350, 270)),
    # a condition inside a layer looks at the layer (logo: 80x60)
    ("l_logo/if_w_eq_80/c_scale,w_40/if_end/fl_layer_apply,g_north_east", (320, 240)),
    ("if_w_gt_100/l_logo/fl_layer_apply,g_north_east/if_end", (320, 240)),
    ("l_logo/c_scale,w_iw_mul_2/fl_layer_apply,g_north_west,x_-100", (420, 240)),  # 160 wide, not 640
]


@pytest.mark.parametrize(("text", "size"), RENDERED, ids=[r[0] for r in RENDERED])
def test_the_image_decides(files: dict[str, Path], text: str, size: tuple[int, int]) -> None:
    rendered = run(text, files["photo"], files)
    assert (rendered.width, rendered.height) == size


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(pyvips.Image.new_from_buffer(data, "").numpy(), dtype=np.int16)


def test_a_branch_changes_the_pixels_only_when_it_is_taken(files: dict[str, Path]) -> None:
    plain = _pixels(run("c_scale,w_64", files["photo"], files).data)
    grey = _pixels(run("c_scale,w_64/if_iw_gt_100/e_grayscale/if_end", files["photo"], files).data)
    kept = _pixels(run("c_scale,w_64/if_iw_gt_1000/e_grayscale/if_end", files["photo"], files).data)
    assert np.abs(plain - kept).max() <= 2  # the same image (JPEG noise at most)
    assert grey.ndim == 2 or np.abs(grey[..., 0] - grey[..., 2]).max() <= 2  # grey: its channels agree
    assert np.abs(plain[..., 0] - plain[..., 2]).max() > 50  # and the photo is not


def test_a_layer_in_a_branch_is_placed_only_when_it_is_taken(files: dict[str, Path]) -> None:
    logo = "l_logo/fl_layer_apply,g_north_east"
    with_logo = _pixels(run(f"if_iw_gt_100/{logo}/if_end", files["photo"], files).data)
    without = _pixels(run(f"if_iw_gt_1000/{logo}/if_end", files["photo"], files).data)
    plain = _pixels(run("c_scale,w_320", files["photo"], files).data)
    corner = (slice(10, 40), slice(250, 300))  # where the yellow logo goes
    assert np.abs(with_logo[corner] - plain[corner]).mean() > 40
    assert np.abs(without[corner] - plain[corner]).mean() < 3


def test_a_value_out_of_range_for_this_image_is_a_400_naming_it(files: dict[str, Path]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        run("w_iw_sub_400", files["photo"], files)
    assert caught.value.public == (
        "Invalid transformation parameter - w_iw_sub_400 (= -80 here): width must be a positive integer up "
        "to 16384 (pixels) or a decimal fraction up to 100.0"
    )
    with pytest.raises(InvalidArgument) as caught:
        run("$d_iw_sub_320/w_100_div_$d", files["photo"], files)
    assert caught.value.public == (
        "Invalid transformation parameter - w_100_div_$d: division by zero (_div_ 0)"
    )


def test_a_variable_set_only_in_a_branch_not_taken_is_undefined_after_it(files: dict[str, Path]) -> None:
    assert run("if_iw_gt_100/$w_50/if_end/c_scale,w_$w", files["photo"], files).width == 50
    with pytest.raises(InvalidArgument) as caught:
        run("if_iw_gt_1000/$w_50/if_end/c_scale,w_$w", files["photo"], files)
    assert "$w is not defined" in caught.value.public


def test_page_count(files: dict[str, Path], tmp_path: Path) -> None:
    frame = (pyvips.Image.black(40, 30, bands=3) + 90).cast("uchar")
    pages = pyvips.Image.arrayjoin([frame, frame, frame], across=1).copy()
    pages.set_type(pyvips.GValue.gint_type, "page-height", 30)
    path = tmp_path / "pages.tif"
    pages.write_to_file(str(path))
    assert run("if_pc_eq_3/c_scale,w_10/if_end", path, files).width == 10
    assert run("if_pc_eq_3/c_scale,w_10/if_end", files["photo"], files).width == 320


def test_a_text_layer_shows_a_variable_the_image_decides(files: dict[str, Path]) -> None:
    """The same pixels as the text written out: iw of the photo is 320."""
    shown = run("$n_iw/l_text:Arial_30:Width%20$(n)/fl_layer_apply,g_south", files["photo"], files)
    written = run("l_text:Arial_30:Width%20320/fl_layer_apply,g_south", files["photo"], files)
    other = run("l_text:Arial_30:Width%20321/fl_layer_apply,g_south", files["photo"], files)
    assert shown.data == written.data != other.data
    with pytest.raises(InvalidArgument) as caught:
        run("if_iw_gt_1000/$n_1/if_end/l_text:Arial_30:$(n)/fl_layer_apply", files["photo"], files)
    assert "$n is not defined here" in caught.value.public
