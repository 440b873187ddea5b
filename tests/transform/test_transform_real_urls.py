"""Real sites' transformations (tests/transform/corpus/real_transformations.txt, from Cloudinary delivery
URLs in public code) through the parser and the plan compiler, as delivery reads them: every one is
accepted but those listed in REFUSED, each with why and what its 400 says. A transformation that starts
being refused, or one of REFUSED that starts being accepted, fails here: decide, then move it.

And the behaviours those URLs needed (ar_ beside w_ and h_, a crop mode with no size, g_center with a mode
that crops nothing, bo_0px and decimal border widths, e_blur above 2000, cs_srgb, c_fit,w_N's width,
e_cartoonify).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
from transform_helpers import run

from grammar import parse_path, parse_transformation, plain_transformation
from grammar.errors import OriginError
from transform import compile_plan
from transform.hints import compile_unhinted

CORPUS = Path(__file__).parent / "corpus" / "real_transformations.txt"

GENERATIVE = "generative AI (a model this server does not have)"
ART = "Cloudinary's artistic filters (its own colour grades, not documented to reproduce)"
ANGLE = "a_auto and a_exif are not documented angle values (a_auto_right, a_auto_left are)"
NAMED = "named transformations of the site's own account (defined in settings, not in the URL)"
NAMED_MIXED = "t_ with other parameters in its component: the order Cloudinary applies them in is unknown"
VIDEO = "video only"
MALFORMED = "malformed (the site's own bug)"
UNSUPPORTED = "not supported by this server"
STRICT = "a gravity with nothing to place (no crop mode and no size), refused on purpose"

#: transformation -> (why it is refused, what its 400 says).
REFUSED: dict[str, tuple[str, str]] = {
    "a_auto": (ANGLE, "a_auto: angle must be"),
    "a_auto,b_transparent,c_pad,d_made.svg,dpr_1.0,f_auto,h_300,q_auto:best,w_400": (ANGLE, "a_auto"),
    "a_auto,b_transparent,c_pad,d_made.svg,dpr_1.0,f_auto,h_550,q_auto:best,w_1050": (ANGLE, "a_auto"),
    "a_auto/c_lpad,b_white,w_2000,h_2000,q_auto:good,f_auto": (ANGLE, "a_auto"),
    "a_exif,f_auto,e_sharpen:100,c_fit,w_800,h_600,fl_lossy": (ANGLE, "a_exif: angle must be"),
    "b_gen_fill,c_pad,h_800,w_550/b_black,bo_10px_solid_black,co_rgb:FFFFFF,l_text:Arial_35:Flash%20Sale%20-"
    "%2080%25%20Off%21/fl_layer_apply,g_south_east,x_10,y_10": (GENERATIVE, "b_gen_fill: background must"),
    "c_pad,w_1080,h_1080,b_gen_fill": (GENERATIVE, "b_gen_fill: background must"),
    "e_enhance": (GENERATIVE, "e_enhance: effect must be one of"),
    "e_gen_background_replace:prompt_festive%20Diwali%20marigold%20flowers": (GENERATIVE, "effect must be"),
    "e_gen_recolor:prompt_image;to-color_ff0000": (GENERATIVE, "effect must be"),
    "e_gen_recolor:prompt_the%20jacket%20on%20the%20right;to-color_pink": (GENERATIVE, "effect must be"),
    "e_gen_recolor:prompt_walls;to-color_ff0000;multiple_true": (GENERATIVE, "effect must be"),
    "e_gen_remove:prompt_(person)/e_gen_background_replace:prompt_modern%20office": (GENERATIVE, "effect"),
    "e_gen_remove:prompt_fork": (GENERATIVE, "effect must be"),
    "e_gen_restore": (GENERATIVE, "e_gen_restore: effect must be"),
    "e_art:athena,f_auto,q_auto,w_600": (ART, "e_art:athena: effect must be"),
    "e_art:audrey": (ART, "effect must be"),
    "e_art:fes,c_fill,h_170,w_300": (ART, "effect must be"),
    "e_art:incognito": (ART, "effect must be"),
    "e_art:peacock,q_100": (ART, "effect must be"),
    "e_art:refresh": (ART, "effect must be"),
    "e_art:sonnet,f_auto,q_auto": (ART, "effect must be"),
    # (also a text style with an empty slot, bold__letter_spacing_4, refused first)
    "e_art:red_rock/ar_16:9,c_fill,g_auto,r_max,w_200/co_rgb:f21904,g_center,"
    "l_text:verdana_24_bold__letter_spacing_4:Paris": (ART, 'missing value after "l_text:verdana_24_bold_"'),
    "t_media_lib_thumb": (NAMED, "Unknown transformation media_lib_thumb"),
    "t_thumbnail-round": (NAMED, "Unknown transformation thumbnail-round"),
    "t_w-700": (NAMED, "Unknown transformation w-700"),
    "t_web/c_fill,w_403,h_269": (NAMED, "Unknown transformation web"),
    "f_auto,t_hcdl": (NAMED_MIXED, "t_ must be alone in its component"),
    "t_fit-760w,f_auto,q_auto:best": (NAMED_MIXED, "t_ must be alone in its component"),
    "x_0,y_216,w_2992,h_1780,c_crop/t_d_search,f_auto": (NAMED_MIXED, "t_ must be alone in its component"),
    "c_fill,g_auto,h_1600,w_900/e_zoompan:du_6;fps_30;from_(x_0.5;y_0.5;zoom_1.16);to_(x_0.5;y_0.5;zoom_1.01)"
    "/c_fill,h_1280,w_720": (VIDEO, "e_zoompan"),
    "c_crop,h_477,w_2128,y_0/c_scale,w_500,": (MALFORMED, "empty parameter"),
    "c_limit,w_300,h_200,f_auto/b_#123456/f_auto/q_auto": (MALFORMED, "unexpected character '#'"),
    "e_sharpen,h_300,w_300,c_fit,c_pad,b_rgb:ffb33c": (MALFORMED, "c_ appears twice"),
    "e_trim/c_pad,w_750,h_1000,pd_176_60_176_60": (MALFORMED, "parameter - pd"),  # (no pd_ in Cloudinary)
    "e_pixelate_region,g_ocr_text": (UNSUPPORTED, "gravity ocr_text is not supported"),
    "e_pixelate_region:20,g_ocr_text": (UNSUPPORTED, "gravity ocr_text is not supported"),
    "e_auto_saturation": (UNSUPPORTED, "e_auto_saturation: effect must be"),
    "e_blur/e_brightness:0/e_fill_light:0/e_saturation:0/c_fill,h_250,w_250": (UNSUPPORTED, "e_fill_light:0"),
    "e_displace,q_100": (UNSUPPORTED, "e_displace: effect must be"),  # (needs a displacement map layer)
    "e_trim/c_limit,f_auto,fl_png8.lossy,h_1280,q_auto,w_1280": (UNSUPPORTED, "fl_png8.lossy: flags must"),
    "e_cartoonify,f_auto,fl_apng/e_auto_color": (UNSUPPORTED, "apng is not supported"),
    "fl_progressive:steep": (UNSUPPORTED, "use fl_progressive: libvips writes one progressive scan script"),
    "g_xy_center,q_auto:best": (UNSUPPORTED, "g_xy_center: gravity must be one of"),
    "g_auto/f_auto": (STRICT, "g_auto: g_ needs c_fill"),
    "g_face": (STRICT, "g_face: g_ needs c_fill"),
    "g_face:center,q_auto:best,w_1100": (STRICT, "a face or subject gravity needs c_fill"),
}


def corpus() -> list[str]:
    return [line for line in CORPUS.read_text().splitlines() if line and not line.startswith("#")]


def refusal(transformation: str) -> str | None:
    """The 400 delivery answers the transformation with, or None when it is accepted."""
    try:
        compile_unhinted(parse_transformation(plain_transformation(transformation)))
        path = parse_path(f"/demo/image/upload/{transformation}/sample.jpg")
        assert path.raw_transformation == transformation, "read as folders, not as a transformation"
    except OriginError as exc:
        assert exc.status == 400, transformation
        return exc.public
    return None


def test_the_corpus_is_big_and_distinct() -> None:
    lines = corpus()
    assert len(lines) >= 300
    assert len(set(lines)) == len(lines)
    assert set(REFUSED) <= set(lines)


@pytest.mark.parametrize("transformation", corpus())
def test_each_real_transformation_is_accepted_or_refused_as_listed(transformation: str) -> None:
    message = refusal(transformation)
    if transformation not in REFUSED:
        assert message is None, f"newly refused: {transformation}: {message}"
        return
    why, said = REFUSED[transformation]
    assert message is not None, f"now accepted ({why}): move it out of REFUSED"
    assert said in message


# -- the behaviours the corpus needed ---------------------------------------------------------------------


def _size(transformation: str, source: Path, files: dict[str, Path]) -> tuple[int, int]:
    out = run(transformation, source, files)
    return out.width, out.height


def test_ar_beside_w_and_h_is_left_to_them(files: dict[str, Path]) -> None:
    """next-cloudinary writes c_fill,ar_16:9,w_3840,h_3000: Cloudinary sizes by w_ and h_."""
    both = run("ar_16:11,c_fill,h_60,w_80", files["photo"], files)
    assert (both.width, both.height) == (80, 60)
    assert both.data == run("c_fill,h_60,w_80", files["photo"], files).data


@pytest.mark.parametrize(
    ("transformation", "plain"),
    [("c_fill,g_face,q_auto,f_auto", "q_auto,f_auto"), ("r_max/c_fill", "r_max"),
     ("c_pad,b_auto:predominant,fl_preserve_transparency", "fl_preserve_transparency"),
     ("c_scale,q_auto,f_auto", "q_auto,f_auto"), ("w_100/c_fit", "w_100")],
)
def test_a_crop_mode_with_no_size_keeps_the_image_as_is(
    transformation: str, plain: str, files: dict[str, Path]
) -> None:
    """Cloudinary's own console apps write c_pad,b_auto:predominant,fl_preserve_transparency."""
    rendered = run(transformation, files["photo"], files)
    assert rendered.data == run(plain, files["photo"], files).data


def test_a_crop_mode_with_no_size_but_an_offset_or_zoom_is_a_400() -> None:
    for text in ("c_crop,x_10", "c_thumb,g_face,z_2", "c_fill,dpr_2.0"):
        with pytest.raises(OriginError, match="needs w_, h_ or ar_"):
            compile_plan(parse_transformation(text))


def test_g_center_with_a_mode_that_crops_nothing(files: dict[str, Path]) -> None:
    for mode in ("c_fit,", "c_limit,", "c_scale,", ""):
        with_g = run(f"{mode}g_center,h_100,w_100", files["photo"], files)
        assert with_g.data == run(f"{mode}h_100,w_100", files["photo"], files).data
    with pytest.raises(OriginError, match="g_north: g_ needs"):
        compile_plan(parse_transformation("c_fit,g_north,w_100"))


def test_c_fit_with_one_side_is_that_wide(tmp_path: Path, files: dict[str, Path]) -> None:
    """The box's other side is rounded (645 x 430 for 640 x 427): the fitted width came out 644."""
    source = tmp_path / "road.png"
    (pyvips.Image.black(640, 427) + 90).cast("uchar").write_to_file(str(source))
    for fitted, scaled in (("c_fit,w_645", "c_scale,w_645"), ("c_limit,w_600", "c_scale,w_600"),
                           ("c_fit,h_430", "c_scale,h_430"), ("c_limit,h_300", "c_scale,h_300")):
        assert _size(fitted, source, files) == _size(scaled, source, files), fitted
    assert _size("c_fit,w_645", source, files) == (645, 430)
    assert _size("c_fit,h_100,w_645", source, files) == (150, 100)


def test_a_zero_border_is_none_and_a_decimal_width_is_rounded(files: dict[str, Path]) -> None:
    plain = run("c_scale,w_100", files["photo"], files)
    assert run("bo_0px_solid_rgb:ffffff,c_scale,w_100", files["photo"], files).data == plain.data
    half = run("bo_1.5px_solid_white,c_scale,w_100", files["photo"], files)
    assert half.data == run("bo_2px_solid_white,c_scale,w_100", files["photo"], files).data
    assert (half.width, half.height) == (104, 79)
    assert compile_plan(parse_transformation("bo_1.5px_solid_white")).canonical == "bo_2px_solid_white"


def test_a_blur_above_2000_is_2000() -> None:
    """Klook blurs underlays with e_blur:10000 (Cloudinary's blur stops at 2000)."""
    assert compile_plan(parse_transformation("e_blur:10000")).canonical == "e_blur:2000"
    with pytest.raises(OriginError, match="blur strength must be an integer from 1 to 2000"):
        compile_plan(parse_transformation("e_blur:0"))


def test_cs_srgb_is_what_every_output_is(files: dict[str, Path]) -> None:
    plain = run("c_scale,w_100", files["photo"], files)
    for text in ("c_scale,cs_srgb,w_100", "cs_tinysrgb/c_scale,w_100", "dpr_1.0,cs_srgb/c_scale,w_100"):
        assert run(text, files["photo"], files).data == plain.data, text
    with pytest.raises(OriginError, match="cs_cmyk: colour space must be srgb or tinysrgb"):
        compile_plan(parse_transformation("cs_cmyk"))
    with pytest.raises(OriginError, match="cs_ applies to the delivered image, not inside a layer"):
        compile_plan(parse_transformation("l_logo/cs_srgb/fl_layer_apply"))


def _colours(image: pyvips.Image) -> int:
    return len(np.unique(image.numpy()[:, :, :3].reshape(-1, 3), axis=0))


def test_cartoonify_flattens_the_colours_and_draws_dark_outlines(files: dict[str, Path]) -> None:
    """Five of the corpus's URLs ask for it (e_cartoonify, e_cartoonify:50, with f_auto, c_fill...)."""
    source = pyvips.Image.new_from_file(str(files["face"]))
    out = pyvips.Image.new_from_buffer(run("e_cartoonify/f_png", files["face"], files).data, "")
    assert _colours(out) < _colours(source) / 4
    outlines = pyvips.Image.new_from_buffer(run("e_cartoonify:100:0/f_png", files["face"], files).data, "")
    none = pyvips.Image.new_from_buffer(run("e_cartoonify:0:0/f_png", files["face"], files).data, "")
    black, unlined = (((image.extract_band(0, n=3) == 0).bandand() / 255).avg() for image in (outlines, none))
    assert black > unlined + 0.05  # (the photograph has black of its own)
    bw = pyvips.Image.new_from_buffer(run("e_cartoonify:20:bw/f_png", files["face"], files).data, "")
    assert (bw[0] - bw[1]).abs().max() == 0 and (bw[1] - bw[2]).abs().max() == 0
    kept = pyvips.Image.new_from_buffer(run("e_cartoonify", files["cutout"], files).data, "")
    assert kept.bands == 4
    assert kept[3].avg() == pyvips.Image.new_from_file(str(files["cutout"]))[3].avg()


def test_cartoonify_refuses_what_it_cannot_read() -> None:
    for text, said in (("e_cartoonify:101", "line strength must be an integer from 0 to 100"),
                       ("e_cartoonify:50:grey", "colour reduction must be an integer from 0 to 100 (or bw)"),
                       ("e_cartoonify:1:2:3", "takes a line strength and a colour reduction at most")):
        with pytest.raises(OriginError, match=said.replace("(", r"\(").replace(")", r"\)")):
            compile_plan(parse_transformation(text))
    assert compile_plan(parse_transformation("e_cartoonify:50")).canonical == "e_cartoonify"
