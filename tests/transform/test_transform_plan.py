"""Transformation text -> Plan: canonical strings, plan facts, and exact messages for bad transformations."""

from __future__ import annotations

import pytest

from grammar import parse_transformation
from grammar.errors import BadRequest, InvalidArgument, UnknownParameter
from transform import Plan, compile_plan
from transform.ops import EFFECTS, PARAMS

NAMED = {"thumb": "c_fill,h_100,w_100", "round": "r_max", "both": "t_thumb/t_round", "loop": "t_loop"}


def plan(text: str) -> Plan:
    return compile_plan(parse_transformation(text), named=NAMED)


CANONICAL = [
    ("w_400,c_scale", "c_scale,w_400"),
    ("c_scale,w_400", "c_scale,w_400"),
    ("h_300,w_400,c_fill,g_auto", "c_fill,g_auto,h_300,w_400"),
    ("w_0.50", "w_0.5"),
    ("w_1.0", "w_1.0"),
    ("w_1", "w_1"),
    ("dpr_2,w_100", "dpr_2.0,w_100"),
    ("ar_16:9,c_fill,w_400", "ar_16:9,c_fill,w_400"),
    ("ar_1.50,c_fill,w_400", "ar_1.5,c_fill,w_400"),
    ("c_crop,h_20,w_10,x_-5,y_0.25", "c_crop,h_20,w_10,x_-5,y_0.25"),
    ("b_RGB:FFF,c_pad,h_10,w_10", "b_rgb:ffffff,c_pad,h_10,w_10"),
    ("b_Blue", "b_blue"),
    ("bo_5px_solid_rgb:00390B60", "bo_5px_solid_rgb:00390b60"),
    ("e_blur:100", "e_blur"),
    ("e_blur:300", "e_blur:300"),
    ("e_dropshadow:azimuth_215;elevation_45;spread_50", "e_dropshadow"),
    ("e_dropshadow:spread_20;azimuth_220", "e_dropshadow:azimuth_220;spread_20"),
    ("e_background_removal:fineedges_n", "e_background_removal"),
    ("e_background_removal:fineedges_y", "e_background_removal:fineedges_y"),
    ("e_background_removal:fullsize_y;fineedges_y", "e_background_removal:fineedges_y;fullsize_y"),
    ("e_background_removal:fullsize_n", "e_background_removal"),
    # url-gen's trim() leaves the arguments it was not given empty
    ("e_trim::", "e_trim"),
    ("e_trim:20:", "e_trim:20"),
    ("e_trim::white", "e_trim:10:white"),
    ("a_hflip.45", "a_hflip.45"),
    ("a_090", "a_90"),
    ("r_10:20", "r_10:20"),
    ("r_max,o_50", "o_50,r_max"),
    ("f_jpeg", "f_jpg"),
    ("q_auto:good", "q_auto"),
    ("q_auto:eco", "q_auto:eco"),
    ("fl_relative,fl_layer_apply,u_docs:road", "fl_layer_apply.relative,u_docs:road"),
    ("u_docs:road.jpg/fl_layer_apply", "u_docs:road/fl_layer_apply"),
    (
        "l_docs:logo,w_100,c_scale/fl_layer_apply,y_10,x_10,g_south_east",
        "c_scale,l_docs:logo,w_100/fl_layer_apply,g_south_east,x_10,y_10",
    ),
    # A layer no fl_layer_apply closes is whole in its component (older SDKs and tutorials).
    ("u_docs:road", "u_docs:road"),
    ("l_docs:logo,g_north_east", "g_north_east,l_docs:logo"),
    ("l_a,w_0.2,fl_relative,c_scale,x_10", "c_scale,fl_relative,l_a,w_0.2,x_10"),
    (
        "l_docs:logo/w_0.3,fl_relative,c_scale/fl_layer_apply,g_north_east",
        "l_docs:logo/c_scale,fl_relative,w_0.3/fl_layer_apply,g_north_east",
    ),
    ("e_trim:10", "e_trim"),
    ("e_margin:10:10:10:10", "e_margin:10"),
    ("e_margin:5:10:5:10", "e_margin:5:10"),
    ("e_margin:10p:0", "e_margin:10p:0"),
    ("e_margin:1:2:3:4", "e_margin:1:2:3:4"),
    ("e_alpha_mask", "e_alpha_mask"),
    ("e_roi:0:0:50p:100%", "e_roi:0:0:50p:100p"),
    ("co_red,e_shadow:60,x_1,y_2", "co_red,e_shadow:60,x_1,y_2"),
    ("e_shadow:40", "e_shadow"),
    ("e_shadow:strength_50", "e_shadow:50"),
    ("co_blue,e_outline:fill:10:25", "co_blue,e_outline:fill:10:25"),
    ("e_outline:outer:5", "e_outline:outer"),
    ("e_outline:5:0", "e_outline"),
    ("e_outline:inner:8", "e_outline:inner:8"),
    ("b_auto:border,c_pad,h_10,w_10", "b_auto,c_pad,h_10,w_10"),
    ("b_auto:predominant,c_fill_pad,g_auto,h_10,w_10", "b_auto:predominant,c_fill_pad,g_auto,h_10,w_10"),
    ("e_trim:0", "e_trim:0"),
    ("e_trim:50:Yellow", "e_trim:50:yellow"),
    ("e_trim:10:RGB:FF0", "e_trim:10:rgb:ffff00"),
    ("e_colorize:100,co_RGB:F00", "co_rgb:ff0000,e_colorize"),
    ("co_red,e_colorize:40", "co_red,e_colorize:40"),
    ("e_negate", "e_negate"),
    ("e_sepia:80", "e_sepia"),
    ("e_brightness:80", "e_brightness"),
    ("e_contrast:0", "e_contrast"),
    ("e_contrast:-30", "e_contrast:-30"),
    ("e_saturation:80", "e_saturation"),
    # The reference's verbose level_ form; a linear contrast level n is the default scale's n - 100.
    ("e_contrast:level_-70", "e_contrast:-70"),
    ("e_contrast:level_150;type_linear", "e_contrast:50"),
    ("e_contrast:type_linear;level_150", "e_contrast:50"),
    ("e_contrast:150:linear", "e_contrast:50"),
    ("e_contrast:150:type_linear", "e_contrast:50"),
    ("e_contrast:level_20;type_sigmoidal", "e_contrast:20"),
    ("e_contrast:type_linear", "e_contrast"),
    ("e_brightness:level_30", "e_brightness:30"),
    ("e_saturation:level_-50", "e_saturation:-50"),
    ("e_sepia:level_100", "e_sepia:100"),
    ("co_red,e_colorize:level_40", "co_red,e_colorize:40"),
    ("a_ignore", "a_ignore"),
    ("a_90.ignore", "a_ignore.90"),
    ("fl_progressive.preserve_transparency", "fl_preserve_transparency.progressive"),
    ("fl_preserve_transparency,f_auto", "f_auto,fl_preserve_transparency"),
    ("fl_progressive:none", "fl_progressive:none"),
    ("t_thumb", "c_fill,h_100,w_100"),
    # A default image's extension is dropped (it is found by public id, as originals are).
    ("d_docs:placeholders:avatar.png/c_scale,w_100", "d_docs:placeholders:avatar/c_scale,w_100"),
    ("w_100,d_avatar.PNG,c_scale", "c_scale,d_avatar,w_100"),
    ("fl_attachment:my%20photo", "fl_attachment:my%20photo"),
    ("fl_progressive.attachment", "fl_attachment.progressive"),
    ("t_thumb.round/e_grayscale", "c_fill,h_100,w_100/r_max/e_grayscale"),
    ("t_both", "c_fill,h_100,w_100/r_max"),
    (
        "e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200",
        "e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200",
    ),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_canonical(text: str, canonical: str) -> None:
    assert plan(text).canonical == canonical
    assert plan(canonical).canonical == canonical  # a fixed point


def test_plan_facts() -> None:
    p = plan(
        "e_background_removal/c_scale,w_400/u_docs:road/c_scale,w_800/fl_layer_apply,g_south/f_auto/q_70"
    )
    assert p.needs_segmentation
    assert p.layer_ids == frozenset({"docs/road"})
    assert p.requested_format == "auto"
    assert str(p.quality) == "70"
    assert len(p.steps) == 3  # removal, scale, the layer block


def test_output_flags_and_a_ignore() -> None:
    p = plan("a_ignore/c_scale,w_10/f_jpg,fl_preserve_transparency/fl_progressive")
    assert (p.autorotate, p.preserve_transparency, p.progressive) == (False, True, True)
    assert [s.canonical for s in p.steps] == ["c_scale,w_10"]  # neither a_ignore nor fl_ is a step
    q = plan("c_scale,w_10/fl_progressive:none")
    assert (q.autorotate, q.preserve_transparency, q.progressive) == (True, False, False)
    layered = plan("l_logo,a_ignore/fl_layer_apply")  # a_ignore in a layer: only the layer's source
    assert layered.autorotate


# (transformation, derivative: what its bytes are keyed by, default image, attachment name)
NOT_STEPS = [
    ("d_docs:avatar.png/c_scale,w_100", "c_scale,w_100", "docs/avatar", None),
    ("c_scale,d_avatar,w_100", "c_scale,w_100", "avatar", None),
    ("c_scale,w_100/d_avatar", "c_scale,w_100", "avatar", None),
    ("d_avatar", "", "avatar", None),
    ("d_x/e_background_removal/c_scale,w_10", "e_background_removal/c_scale,w_10", "x", None),
    ("dpr_2.0,d_x/c_scale,w_10", "dpr_2.0/c_scale,w_10", "x", None),
    ("d_a:b/d_a:b.jpg", "", "a/b", None),  # the same default twice is no contradiction
    ("fl_attachment", "", None, ""),
    ("fl_attachment:my%20photo/c_scale,w_10", "c_scale,w_10", None, "my photo"),
    ("fl_attachment:caf%C3%A9%22;x", "", None, 'café";x'),
    ("fl_attachment:report%2Efinal", "", None, "report.final"),  # '.' separates flags: %2E in a name
    ("fl_attachment.progressive/f_png", "fl_progressive/f_png", None, ""),
    ("c_scale,fl_attachment,w_10", "c_scale,w_10", None, ""),
    ("t_thumb/d_x,fl_attachment:a", "c_fill,h_100,w_100", "x", "a"),
    ("u_docs:road/fl_layer_apply/fl_attachment", "u_docs:road/fl_layer_apply", None, ""),
]


@pytest.mark.parametrize(("text", "derivative", "default", "attachment"), NOT_STEPS)
def test_default_image_and_attachment_are_not_steps(
    text: str, derivative: str, default: str | None, attachment: str | None
) -> None:
    """d_ picks the source and fl_attachment the headers: the plan's steps are those of the
    transformation without them, and so is the text the derivative is cached under."""
    p, bare = plan(text), plan(derivative)
    assert (p.derivative, p.default_image, p.attachment) == (derivative, default, attachment)
    assert [s.canonical for s in p.steps] == [s.canonical for s in bare.steps]
    assert (p.needs_segmentation, p.progressive, p.requested_format) == (
        bare.needs_segmentation, bare.progressive, bare.requested_format
    )
    assert p.canonical != derivative  # the full text keeps them (strict mode's and the console's)
    assert plan(p.canonical).derivative == derivative


@pytest.mark.parametrize(
    ("text", "derivative"),
    [
        ("o_0", "o_0"),
        ("o_0,w_100", "o_0,w_100"),
        ("l_docs:road/fl_layer_apply,o_0", "l_docs:road/fl_layer_apply,o_0"),
        ("l_docs:road,o_0/fl_layer_apply", "l_docs:road,o_0/fl_layer_apply"),
        # (was a 500: a conditional component with nothing in the derivative had no text to prefix)
        ("if_w_gt_100,o_0/e_sharpen", "if_w_gt_100,o_0/e_sharpen"),
    ],
)
def test_a_zero_value_is_keyed(text: str, derivative: str) -> None:
    """o_0 (fully transparent) changes every byte: it is in the derivative's key, or ``o_0,w_100`` is
    served ``w_100``'s cached bytes and ``o_0`` alone the original's."""
    assert plan(text).derivative == derivative


def test_segmentation_inside_a_layer_counts() -> None:
    p = plan("l_a:b/e_background_removal/fl_layer_apply/l_c/fl_layer_apply")
    assert p.needs_segmentation
    assert p.layer_ids == frozenset({"a/b", "c"})
    assert not plan("c_scale,w_10").needs_segmentation


WIDTH = "must be a positive integer up to 16384 (pixels) or a decimal fraction up to 100.0"
OFFSET = "must be an integer from -16384 to 16384 (pixels) or a decimal fraction from -100.0 to 100.0"
RATIO = "aspect ratio must be a ratio like 16:9 or a positive decimal like 1.5, from 1:1000 to 1000:1"
NEEDS_X = "x_ needs c_crop, e_shadow, e_gradient_fade or a fl_layer_apply component"
ERRORS = [
    # Cloudinary runs only the last effect of a component and drops the others without a word: a 400
    # names both (an e_roi before another effect was dropped so, and the cut-out went unbounded).
    (
        "e_sharpen,e_blur:50",
        BadRequest,
        "Invalid transformation: e_sharpen and e_blur:50 in one component ('e_sharpen,e_blur:50'); only one "
        "effect applies per component: chain them, e_sharpen/e_blur:50",
    ),
    (
        "e_background_removal/e_roi:0:0:50p:100p,e_blur",
        BadRequest,
        "Invalid transformation: e_roi:0:0:50p:100p and e_blur in one component ('e_roi:0:0:50p:100p,"
        "e_blur'); only one effect applies per component: chain them, e_roi:0:0:50p:100p/e_blur",
    ),
    (
        "if_w_gt_10,e_blur,w_5,e_negate",
        BadRequest,
        "Invalid transformation: e_blur and e_negate in one component ('if_w_gt_10,e_blur,w_5,e_negate'); "
        "only one effect applies per component: chain them, e_blur/e_negate",
    ),
    (
        "e_background_removal:fineedges_y;fineedges_n",
        InvalidArgument,
        "Invalid transformation parameter - e_background_removal:fineedges_y;fineedges_n: "
        "e_background_removal's fineedges is given twice",
    ),
    (  # two fl_ of one component, or two components: the check of one fl_ did not see both
        "fl_progressive,fl_progressive:none",
        BadRequest,
        "Invalid transformation: fl_progressive and fl_progressive:none ask for opposite things; keep one",
    ),
    (
        "c_scale,w_10/fl_progressive/fl_progressive:none",
        BadRequest,
        "Invalid transformation: fl_progressive and fl_progressive:none ask for opposite things; keep one",
    ),
    # A plus sign is no number of Cloudinary's (its reference writes x_-20, never x_+20): refused, named
    # as written, by every parameter sharing the number parsers.
    ("w_+100", InvalidArgument, "Invalid transformation parameter - w_+100: width " + WIDTH),
    ("h_+0.5", InvalidArgument, "Invalid transformation parameter - h_+0.5: height " + WIDTH),
    (
        "c_crop,w_10,x_+5",
        InvalidArgument,
        "Invalid transformation parameter - x_+5: x must be an integer from -16384 to 16384 (pixels) or a "
        "decimal fraction from -100.0 to 100.0",
    ),
    ("c_fill,ar_+16:9,w_10", InvalidArgument, "Invalid transformation parameter - ar_+16:9: " + RATIO),
    ("c_fill,ar_16:+9,w_10", InvalidArgument, "Invalid transformation parameter - ar_16:+9: " + RATIO),
    (
        "dpr_+2.0,w_10",
        InvalidArgument,
        "Invalid transformation parameter - dpr_+2.0: device pixel ratio must be a number from 0.1 to 10.0",
    ),
    (
        "o_+50",
        InvalidArgument,
        "Invalid transformation parameter - o_+50: opacity must be an integer from 0 to 100",
    ),
    (
        "e_blur:+50",
        InvalidArgument,
        "Invalid transformation parameter - e_blur:+50: blur strength must be an integer from 1 to 2000 "
        "(larger ones up to 100000 are 2000)",
    ),
    (
        "e_brightness:+20",
        InvalidArgument,
        "Invalid transformation parameter - e_brightness:+20: brightness level must be an integer from -99 "
        "to 100 (bare or level_<n>)",
    ),
    (
        "a_+45",
        InvalidArgument,
        "Invalid transformation parameter - a_+45: angle must be degrees (-3600 to 3600), hflip, vflip, "
        "ignore, auto_right or auto_left, joined by '.'",
    ),
    # A check after parsing names the parameter as the client wrote it, not as it was normalised.
    (
        "co_RGB:999,w_100",
        BadRequest,
        "Invalid transformation parameter - co_RGB:999: co_ needs e_colorize, e_make_transparent, "
        "e_outline or e_shadow in the same component",
    ),
    (
        "x_05",
        BadRequest,
        "Invalid transformation parameter - x_05: x_ needs c_crop, e_shadow, e_gradient_fade "
        "or a fl_layer_apply component",
    ),
    (  # the same colour written two ways: named as the failing component writes it
        "co_RGB:999,e_colorize/co_rgb:999999",
        BadRequest,
        "Invalid transformation parameter - co_rgb:999999: co_ needs e_colorize, e_make_transparent, "
        "e_outline or e_shadow in the same component",
    ),
    (  # checked at its device pixel ratio (x_10), named as written
        "w_100,x_05/dpr_2.0",
        BadRequest,
        "Invalid transformation parameter - x_05: x_ needs c_crop, e_shadow, e_gradient_fade "
        "or a fl_layer_apply component",
    ),
    (
        "l_a/fl_layer_apply,fl_tiled,x_05",
        BadRequest,
        "Invalid transformation parameter - fl_tiled: the tiles cover the whole image from its top-left "
        "corner; x_05 cannot place them",
    ),
    (
        "co_rgb:999,e_colorize/co_rgb:999",
        BadRequest,
        "Invalid transformation parameter - co_rgb:999: co_ needs e_colorize, e_make_transparent, "
        "e_outline or e_shadow in the same component",
    ),
    # A value with arithmetic is checked with 1 standing in for it: the message names what was written.
    ("x_w_add_20", BadRequest, "Invalid transformation parameter - x_w_add_20: " + NEEDS_X),
    ("w_100,y_ih_div_2", BadRequest, "Invalid transformation parameter - y_ih_div_2: y" + NEEDS_X[1:]),
    ("w_-3", InvalidArgument, "Invalid transformation parameter - w_-3: width " + WIDTH),
    ("w_0", InvalidArgument, "Invalid transformation parameter - w_0: width " + WIDTH),
    # Numbers that do not fit libvips' 32-bit arguments (found by tests/test_app_fuzz.py).
    (
        "c_scale,w_2147483648",
        InvalidArgument,
        "Invalid transformation parameter - w_2147483648: width " + WIDTH,
    ),
    ("w_2147483647", InvalidArgument, "Invalid transformation parameter - w_2147483647: width " + WIDTH),
    ("w_16385", InvalidArgument, "Invalid transformation parameter - w_16385: width " + WIDTH),
    ("w_100.5", InvalidArgument, "Invalid transformation parameter - w_100.5: width " + WIDTH),
    (
        "w_auto",
        InvalidArgument,
        "Invalid transformation parameter - w_auto: width " + WIDTH
        + "; w_auto (a width from Client Hints) works only in the URL's own components, not in a named "
        "transformation",
    ),
    (
        "c_scale,h_auto",  # not "works only as w_auto ... not in a named transformation": there is none
        InvalidArgument,
        "Invalid transformation parameter - h_auto: height " + WIDTH
        + "; h_auto does not exist: only the width has a size from Client Hints (w_auto)",
    ),
    (
        "h_$small",
        InvalidArgument,
        "Invalid transformation parameter - h_$small: $small is not defined (set it earlier in the chain: "
        "$small_<value>)",
    ),
    ("$w_0/h_$w", InvalidArgument, "Invalid transformation parameter - h_$w (= 0): height " + WIDTH),
    ("h_4294967296", InvalidArgument, "Invalid transformation parameter - h_4294967296: height " + WIDTH),
    (
        "w_" + "9" * 5000,
        InvalidArgument,
        "Invalid transformation parameter - w_" + "9" * 5000 + ": width " + WIDTH,
    ),
    (
        "c_pad,ar_1:2147483648,w_64",
        InvalidArgument,
        "Invalid transformation parameter - ar_1:2147483648: " + RATIO,
    ),
    ("ar_1001", InvalidArgument, "Invalid transformation parameter - ar_1001: " + RATIO),
    ("ar_0:1", InvalidArgument, "Invalid transformation parameter - ar_0:1: " + RATIO),
    ("ar_1:0", InvalidArgument, "Invalid transformation parameter - ar_1:0: " + RATIO),
    (
        "l_docs:logo/fl_layer_apply,x_-2147483649",
        InvalidArgument,
        "Invalid transformation parameter - x_-2147483649: x " + OFFSET,
    ),
    (
        "l_docs:logo/fl_layer_apply,y_4294967296",
        InvalidArgument,
        "Invalid transformation parameter - y_4294967296: y " + OFFSET,
    ),
    ("c_crop,w_10,x_100.5", InvalidArgument, "Invalid transformation parameter - x_100.5: x " + OFFSET),
    (
        "r_16385",
        InvalidArgument,
        "Invalid transformation parameter - r_16385: radius must be max, or 1 to 4 pixel values "
        "from 0 to 16384 joined by ':'",
    ),
    (
        "bo_4294967296px_solid_red",
        InvalidArgument,
        "Invalid transformation parameter - bo_4294967296px_solid_red: border must be "
        "<width>px_solid_<colour>, width 0 to 1000 (bo_5px_solid_black)",
    ),
    (
        "a_2147483648",
        InvalidArgument,
        "Invalid transformation parameter - a_2147483648: angle must be degrees (-3600 to 3600), "
        "hflip, vflip, ignore, auto_right or auto_left, joined by '.'",
    ),
    (
        "e_sharpen:4294967296",
        InvalidArgument,
        "Invalid transformation parameter - e_sharpen:4294967296: sharpen strength must be an integer "
        "from 1 to 2000",
    ),
    (
        "dpr_10.5,w_100",
        InvalidArgument,
        "Invalid transformation parameter - dpr_10.5: device pixel ratio must be a number from 0.1 to 10.0",
    ),
    (
        "q_" + "1" * 5000,
        InvalidArgument,
        "Invalid transformation parameter - q_" + "1" * 5000 + ": quality must be 1-100, auto, or "
        "auto:best|good|eco|low",
    ),
    ("i_auto", UnknownParameter, "Invalid transformation parameter - i"),
    ("z_1.5", BadRequest, "Invalid transformation parameter - z_1.5: z_ needs c_thumb, c_crop or c_auto"),
    (
        "co_red",
        BadRequest,
        "Invalid transformation parameter - co_red: co_ needs e_colorize, e_make_transparent, e_outline or "
        "e_shadow in the same component",
    ),
    (
        "co_red,e_blur",
        BadRequest,
        "Invalid transformation parameter - co_red: co_ needs e_colorize, e_make_transparent, e_outline or "
        "e_shadow in the same component",
    ),
    (
        "co_reddish,e_colorize",
        InvalidArgument,
        "Invalid transformation parameter - co_reddish: colour must be a colour name or rgb:RRGGBB[AA]",
    ),
    (
        "e_colorize:101",
        InvalidArgument,
        "Invalid transformation parameter - e_colorize:101: colorize level must be an integer from 0 to 100 "
        "(bare or level_<n>)",
    ),
    (
        "e_sepia:0",
        InvalidArgument,
        "Invalid transformation parameter - e_sepia:0: sepia level must be an integer from 1 to 100 "
        "(bare or level_<n>)",
    ),
    (
        "e_brightness:-100",
        InvalidArgument,
        "Invalid transformation parameter - e_brightness:-100: brightness level must be an integer "
        "from -99 to 100 (bare or level_<n>)",
    ),
    (
        "e_contrast:high",
        InvalidArgument,
        "Invalid transformation parameter - e_contrast:high: contrast level must be an integer "
        "from -100 to 100 (bare or level_<n>)",
    ),
    (
        "e_saturation:101",
        InvalidArgument,
        "Invalid transformation parameter - e_saturation:101: saturation level must be an integer "
        "from -100 to 100 (bare or level_<n>)",
    ),
    (
        "e_negate:5",
        InvalidArgument,
        "Invalid transformation parameter - e_negate:5: e_negate takes no arguments",
    ),
    (
        "e_alpha_mask:5",
        InvalidArgument,
        "Invalid transformation parameter - e_alpha_mask:5: e_alpha_mask takes no arguments",
    ),
    (
        "e_margin:1:2:3",
        BadRequest,
        "Invalid transformation parameter - e_margin:1:2:3: e_margin takes 1, 2 or 4 values "
        "(pixels, or percent with p: e_margin:10p)",
    ),
    (
        "e_roi:1:2:3",
        InvalidArgument,
        "Invalid transformation parameter - e_roi:1:2:3: e_roi takes 4 values x1:y1:x2:y2, the corners of "
        "the region (pixels 0-16384, or percent 0-100 with p: e_roi:10p:0:90p:100p)",
    ),
    (
        "e_roi:50:0:10:10",
        BadRequest,
        "Invalid transformation parameter - e_roi:50:0:10:10: e_roi's x2 must be greater than x1",
    ),
    (
        "e_roi:0:0:101p:10",
        InvalidArgument,
        "Invalid transformation parameter - e_roi:0:0:101p:10: "
        "region percentage must be an integer from 0 to 100",
    ),
    (
        "e_margin:5000",
        InvalidArgument,
        "Invalid transformation parameter - e_margin:5000: margin must be an integer from 0 to 4096",
    ),
    (
        "e_trim:101",
        InvalidArgument,
        "Invalid transformation parameter - e_trim:101: trim tolerance must be an integer from 0 to 100",
    ),
    (
        "e_trim:10:reddish",
        InvalidArgument,
        "Invalid transformation parameter - e_trim:10:reddish: trim colour must be a colour name "
        "or rgb:RRGGBB[AA]",
    ),
    (
        "a_auto_right",
        BadRequest,
        "Invalid transformation parameter - a_auto_right: it qualifies a resize in its component (c_ with "
        "w_ and h_, or ar_): it turns the image when the box's orientation is not the image's",
    ),
    (
        "a_auto_left,c_fill,w_20",
        BadRequest,
        "Invalid transformation parameter - a_auto_left: it needs a box with an aspect ratio, w_ and h_ "
        "or ar_ (with one side the box takes the image's own shape, which always matches)",
    ),
    (
        "a_auto_left.auto_right,c_fill,h_10,w_20",
        InvalidArgument,
        "Invalid transformation parameter - a_auto_left.auto_right: angle takes one of auto_right and "
        "auto_left, once",
    ),
    (
        "fl_keep_iptc/q_auto",
        BadRequest,
        "Invalid transformation parameter - fl_keep_iptc: cannot be combined with q_auto (automatic "
        "quality strips metadata, as Cloudinary's); give a number (q_80) or leave q_ out",
    ),
    (
        "fl_keep_iptc.strip_profile",
        InvalidArgument,
        "Invalid transformation parameter - fl_keep_iptc.strip_profile: flags must not ask for "
        "strip_profile and keep_iptc together (no metadata, and the original's)",
    ),
    (
        "fl_keep_iptc/fl_strip_profile",
        BadRequest,
        "Invalid transformation: fl_keep_iptc and fl_strip_profile ask for opposite things (the "
        "original's metadata, and none); keep one",
    ),
    (
        "f_auto:video",
        InvalidArgument,
        "Invalid transformation parameter - f_auto:video: f_auto:video chooses a video format, and cutout "
        "delivers images only: use f_auto, f_auto:image or f_auto:animated",
    ),
    (
        "a_ignore.ignore",
        InvalidArgument,
        "Invalid transformation parameter - a_ignore.ignore: angle takes ignore once",
    ),
    (
        "a_sideways",
        InvalidArgument,
        "Invalid transformation parameter - a_sideways: angle must be degrees (-3600 to 3600), "
        "hflip, vflip, ignore, auto_right or auto_left, joined by '.'",
    ),
    (
        "fl_progressive:semi",
        InvalidArgument,
        "Invalid transformation parameter - fl_progressive:semi: flags must be layer_apply, no_overflow, "
        "relative, region_relative, cutter, tiled, preserve_transparency, progressive, animated, awebp, "
        "strip_profile, keep_iptc, keep_attribution, lossy, attachment[:<filename>] (joined by '.'); "
        "progressive:semi is not supported (use "
        "fl_progressive: libvips writes one progressive scan script)",
    ),
    (
        "fl_png8",
        InvalidArgument,
        "Invalid transformation parameter - fl_png8: flags must be layer_apply, no_overflow, relative, "
        "region_relative, cutter, tiled, preserve_transparency, progressive, animated, awebp, "
        "strip_profile, keep_iptc, keep_attribution, lossy, attachment[:<filename>] (joined by '.'); png8 "
        "is not supported",
    ),
    (
        "fl_progressive.progressive:none",
        InvalidArgument,
        "Invalid transformation parameter - fl_progressive.progressive:none: flags must not ask for "
        "progressive and progressive:none together",
    ),
    (
        "l_a/fl_progressive/fl_layer_apply",
        BadRequest,
        "Invalid transformation: fl_progressive applies to the delivered image, not inside a layer",
    ),
    (
        "c_bogus,w_10",
        InvalidArgument,
        "Invalid transformation parameter - c_bogus: crop mode must be one of "
        "scale, fit, limit, mfit, fill, lfill, pad, lpad, mpad, crop, thumb, fill_pad, auto",
    ),
    ("c_scale,g_auto,w_100", BadRequest, "Use auto gravity only with crop, fill, lfill, fill_pad or thumb"),
    (
        "c_scale,g_north,w_10",
        BadRequest,
        "Invalid transformation parameter - g_north: g_ needs c_fill, c_lfill, "
        "c_pad, c_lpad, c_mpad, c_crop or c_thumb, or a fl_layer_apply component "
        "(not c_scale)",
    ),
    (
        "x_10",
        BadRequest,
        "Invalid transformation parameter - x_10: x_ needs c_crop, e_shadow, e_gradient_fade "
        "or a fl_layer_apply component",
    ),
    (
        "c_fill,w_100,y_10",
        BadRequest,
        "Invalid transformation parameter - y_10: y_ needs c_crop, e_shadow, e_gradient_fade "
        "or a fl_layer_apply component",
    ),
    (
        "c_crop,g_auto,w_10,x_1",
        BadRequest,
        "Invalid transformation parameter - x_1: x_ cannot be combined with g_auto",
    ),
    ("c_fill,x_10", BadRequest, "Invalid transformation parameter - c_fill: c_fill needs w_, h_ or ar_"),
    (
        "dpr_2.0",
        BadRequest,
        "Invalid transformation parameter - dpr_2.0: dpr_ needs w_ or h_ to multiply",
    ),
    (
        "dpr_auto,w_100",
        InvalidArgument,
        "Invalid transformation parameter - dpr_auto: dpr_auto works only in the URL's own components, not "
        "in a named transformation; give a number such as dpr_2.0",
    ),
    (
        "c_fill,g_auto:cat,w_10",
        InvalidArgument,
        "Invalid transformation parameter - g_auto:cat: g_auto takes face, faces, subject or object "
        "(object classes such as g_auto:dog are not supported)",
    ),
    (
        "e_blur:0",
        InvalidArgument,
        "Invalid transformation parameter - e_blur:0: blur strength must be an integer from 1 to 2000 "
        "(larger ones up to 100000 are 2000)",
    ),
    (
        "e_grayscale:5",
        InvalidArgument,
        "Invalid transformation parameter - e_grayscale:5: e_grayscale takes no arguments",
    ),
    (
        "e_oilpaint",
        InvalidArgument,
        "Invalid transformation parameter - e_oilpaint: effect must be one of "
        "multiply, screen, overlay, mask, cut_out, anti_removal, "
        "background_removal, grayscale, blur, sharpen, dropshadow, cartoonify, unsharp_mask, pixelate, "
        "pixelate_region, vignette, blur_faces, pixelate_faces, gradient_fade, make_transparent, "
        "replace_color, opacity_threshold, alpha_mask, margin, roi, outline, loop, shadow, "
        "colorize, negate, "
        "sepia, brightness, contrast, saturation, blackwhite, hue, gamma, vibrance, auto_contrast, "
        "auto_brightness, auto_color, improve, tint, red, green, blue, trim",
    ),
    (
        "e_dropshadow:azimuth_400",
        InvalidArgument,
        "Invalid transformation parameter - e_dropshadow:azimuth_400: "
        "azimuth must be an integer from 0 to 360",
    ),
    (
        "e_background_removal:hints_(cat;dog)",
        InvalidArgument,
        "Invalid transformation parameter - e_background_removal:hints_(cat;dog): hints_ are not supported "
        "(the model finds the foreground without hints); use e_background_removal[:fineedges_y]",
    ),
    (
        "l_a/c_scale,fl_no_overflow,w_0.5/fl_layer_apply",
        BadRequest,
        "Invalid transformation parameter - fl_no_overflow: no_overflow, relative, "
        "region_relative, cutter and tiled qualify fl_layer_apply (relative or region_relative also a "
        "layer's own w_ or h_)",
    ),
    (
        "l_a/e_grayscale,fl_relative/fl_layer_apply",
        BadRequest,
        "Invalid transformation parameter - fl_relative: fl_relative needs w_ or h_ to size",
    ),
    (
        "c_scale,fl_relative,w_0.5",
        BadRequest,
        "Invalid transformation parameter - fl_relative: no_overflow, relative, "
        "region_relative, cutter and tiled qualify fl_layer_apply (relative or region_relative also a "
        "layer's own w_ or h_)",
    ),
    (
        "e_contrast:level_150",
        InvalidArgument,
        "Invalid transformation parameter - e_contrast:level_150: contrast level must be an integer "
        "from -100 to 100 (bare or level_<n>)",
    ),
    (
        "e_contrast:level_0;type_linear",
        InvalidArgument,
        "Invalid transformation parameter - e_contrast:level_0;type_linear: linear contrast level must be "
        "an integer from 1 to 200 (bare or level_<n>)",
    ),
    (
        "e_contrast:level_10;type_cubic",
        InvalidArgument,
        "Invalid transformation parameter - e_contrast:level_10;type_cubic: contrast takes level_<n> "
        "(-100 to 100) and type_sigmoidal or type_linear (level 1 to 200) separated by ';', or <n>[:<type>]",
    ),
    (
        "e_brightness:level_101",
        InvalidArgument,
        "Invalid transformation parameter - e_brightness:level_101: brightness level must be an integer "
        "from -99 to 100 (bare or level_<n>)",
    ),
    (
        "c_fill_pad,h_100,w_100",
        BadRequest,
        "Invalid transformation parameter - c_fill_pad: c_fill_pad needs g_auto (it pads only where "
        "automatic cropping would cut the content)",
    ),
    (
        "b_auto",
        BadRequest,
        "Invalid transformation parameter - b_auto: b_auto is the pad colour of c_pad, c_lpad, c_mpad or "
        "c_fill_pad, in the same component",
    ),
    (
        "b_auto:predominant_gradient:3,c_pad,h_10,w_10",
        InvalidArgument,
        "Invalid transformation parameter - b_auto:predominant_gradient:3: b_auto takes "
        "auto[:<mode>][:2|4][:<direction>][:palette_<colour>_<colour>...], mode one of border, predominant, "
        "border_contrast, predominant_contrast, border_gradient, predominant_gradient, "
        "border_gradient_contrast, predominant_gradient_contrast; number and direction only with a "
        "gradient mode; direction one of horizontal, vertical, diagonal_desc, diagonal_asc",
    ),
    (
        "b_reddish",
        InvalidArgument,
        "Invalid transformation parameter - b_reddish: background must be a colour name or rgb:RRGGBB[AA], "
        "transparent, or auto[:<mode>] or blurred[:<intensity>][:<brightness>] with a pad",
    ),
    (
        "e_outline:dotted",
        InvalidArgument,
        "Invalid transformation parameter - e_outline:dotted: outline takes [mode:][width[:blur]], mode one "
        "of inner, outer, inner_fill, fill",
    ),
    (
        "e_outline:outer:5:201",
        InvalidArgument,
        "Invalid transformation parameter - e_outline:outer:5:201: outline blur must be an integer from 0 "
        "to 200",
    ),
    (
        "e_shadow:101",
        InvalidArgument,
        "Invalid transformation parameter - e_shadow:101: shadow strength must be an integer from 0 to 100",
    ),
    (
        "fl_layer_apply",
        BadRequest,
        "Invalid transformation: fl_layer_apply without an l_ or u_ layer to apply",
    ),
    (
        "l_fetch:aHR0cA==/fl_layer_apply",
        InvalidArgument,
        "Invalid transformation parameter - l_fetch:aHR0cA==: fetch: layers are not supported; "
        "a layer must be an image public id with ':' for '/' (u_docs:road) or text:<font>_<size>:<text>",
    ),
    (
        "fl_no_overflow",
        BadRequest,
        "Invalid transformation parameter - fl_no_overflow: no_overflow, relative, "
        "region_relative, cutter and tiled qualify fl_layer_apply (relative or region_relative also a "
        "layer's own w_ or h_)",
    ),
    (
        "b_transparent",
        BadRequest,
        "Invalid transformation parameter - b_transparent: a transparent background only "
        "makes sense as the pad colour of c_pad, c_lpad or c_mpad",
    ),
    (
        "b_rgb:12345",
        InvalidArgument,
        "Invalid transformation parameter - b_rgb:12345: background must be a colour "
        "name or rgb:RRGGBB[AA], transparent, or auto[:<mode>] or blurred[:<intensity>][:<brightness>] "
        "with a pad",
    ),
    (
        "bo_5px_dashed_red",
        InvalidArgument,
        "Invalid transformation parameter - bo_5px_dashed_red: border must be "
        "<width>px_solid_<colour>, width 0 to 1000 (bo_5px_solid_black)",
    ),
    (
        "o_101",
        InvalidArgument,
        "Invalid transformation parameter - o_101: opacity must be an integer from 0 to 100",
    ),
    (
        "a_1.5",
        InvalidArgument,
        "Invalid transformation parameter - a_1.5: angle takes one number of degrees (a_45, a_hflip.45)",
    ),
    (
        "q_0",
        InvalidArgument,
        "Invalid transformation parameter - q_0: quality must be 1-100, auto, or auto:best|good|eco|low",
    ),
    (
        "f_bmp",
        InvalidArgument,
        "Invalid transformation parameter - f_bmp: format must be one of jpg, png, webp, "
        "avif, gif, tiff, auto, auto:image, auto:animated",
    ),
    ("t_nope", BadRequest, "Unknown transformation nope"),
    ("t_loop", BadRequest, "Invalid transformation: named transformations nest too deeply (a cycle?)"),
    ("w_10,w_20", BadRequest, "Invalid transformation: w_ appears twice in 'w_10,w_20'"),
    (
        "l_a/q_80/fl_layer_apply",
        BadRequest,
        "Invalid transformation: q_ applies to the delivered image, not inside a layer",
    ),
    (
        "l_a/fl_layer_apply,e_blur",
        BadRequest,
        "Invalid transformation parameter - e_blur: not a blend mode; a fl_layer_apply component's e_ is "
        "one of e_multiply, e_screen, e_overlay, e_mask, e_cut_out, e_anti_removal (put other effects in a "
        "component of the layer's own, before fl_layer_apply)",
    ),
    # d_: a public id checked as a delivered one is; the default of the delivered image only.
    (
        "d_%2E%2E:x.png",
        InvalidArgument,
        'Invalid transformation parameter - d_%2E%2E:x.png: Invalid default image public id "%2E%2E:x": '
        "folder names must not be empty, '.' or '..'",
    ),
    (
        "d_a:%5Cb.png",
        InvalidArgument,
        'Invalid transformation parameter - d_a:%5Cb.png: Invalid default image public id "a:%5Cb": '
        "backslashes and control characters are not allowed",
    ),
    (
        "d_a:%0Ab",
        InvalidArgument,
        'Invalid transformation parameter - d_a:%0Ab: Invalid default image public id "a:%0Ab": '
        "backslashes and control characters are not allowed",
    ),
    (
        "d_%FF",
        InvalidArgument,
        'Invalid transformation parameter - d_%FF: Invalid default image public id "%FF": '
        "percent-encoding is not valid UTF-8",
    ),
    (
        "l_docs:road,d_x/fl_layer_apply",
        BadRequest,
        "Invalid transformation: d_ names the default of the delivered image; it cannot be inside a layer "
        "or in the component that opens one",
    ),
    (
        "l_docs:road/d_x/fl_layer_apply",
        BadRequest,
        "Invalid transformation: d_ names the default of the delivered image; it cannot be inside a layer "
        "or in the component that opens one",
    ),
    (
        "l_docs:logo,g_north_east,d_x",
        BadRequest,
        "Invalid transformation: d_ names the default of the delivered image; it cannot be inside a layer "
        "or in the component that opens one",
    ),
    ("d_a/c_scale,d_b,w_10", BadRequest, "Invalid transformation: d_ is given twice, with different images"),
    ("d_a,d_b", BadRequest, "Invalid transformation: d_ appears twice in 'd_a,d_b'"),
    # fl_attachment:<name>: the name goes into a header, so what could break it is refused.
    (
        "fl_attachment:a%0D%0AX-Evil:%201",
        InvalidArgument,
        "Invalid transformation parameter - fl_attachment:a%0D%0AX-Evil:%201: the attachment's file name "
        "must not contain control characters, '/' or '\\'",
    ),
    (
        "fl_attachment:%2E%2E%2Fetc",
        InvalidArgument,
        "Invalid transformation parameter - fl_attachment:%2E%2E%2Fetc: the attachment's file name "
        "must not contain control characters, '/' or '\\'",
    ),
    (
        "fl_attachment:a%5Cb",
        InvalidArgument,
        "Invalid transformation parameter - fl_attachment:a%5Cb: the attachment's file name "
        "must not contain control characters, '/' or '\\'",
    ),
    (
        "fl_attachment:%2E%2E",
        InvalidArgument,
        "Invalid transformation parameter - fl_attachment:%2E%2E: the attachment's file name must not be "
        "'.' or '..'",
    ),
    (
        "fl_attachment:%C3",
        InvalidArgument,
        "Invalid transformation parameter - fl_attachment:%C3: the attachment's file name is not valid "
        "UTF-8 once percent-decoded",
    ),
    (
        "fl_attachment:" + "a" * 201,
        InvalidArgument,
        "Invalid transformation parameter - fl_attachment:" + "a" * 201 + ": the attachment's file name "
        "must be at most 200 characters",
    ),
    (
        "fl_attachment:a.attachment:b",
        InvalidArgument,
        "Invalid transformation parameter - fl_attachment:a.attachment:b: flags must not name two "
        "attachments",
    ),
    (
        "fl_attachment:a/fl_attachment:b",
        BadRequest,
        "Invalid transformation: fl_attachment is given twice, with different names",
    ),
    (
        "l_a/fl_attachment/fl_layer_apply",
        BadRequest,
        "Invalid transformation: fl_attachment applies to the delivered image, not inside a layer",
    ),
]


@pytest.mark.parametrize(("text", "kind", "message"), ERRORS, ids=[e[0][:40] for e in ERRORS])
def test_bad_transformation(text: str, kind: type[BadRequest], message: str) -> None:
    with pytest.raises(kind) as caught:
        plan(text)
    assert caught.value.status == 400
    assert caught.value.public == message


def test_every_param_and_effect_has_help() -> None:
    for key, spec in PARAMS.items():
        assert spec.help and spec.noun, key
    for name, effect in EFFECTS.items():
        assert effect.help, name
