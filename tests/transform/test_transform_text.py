"""Text layers: URLs as the SDK writes them (Cloudinary's escaping), drawn with Pango from the fonts
``.ci/run`` installs (fonts-dejavu-core, fonts-liberation2); the drawing tests skip without them (fail
under CUTOUT_REQUIRE_INTEGRATION=1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cloudinary.utils
import numpy as np
import pytest
import pyvips
from transform_helpers import check_golden, run, slug

from grammar import parse_path, parse_transformation
from grammar.errors import InvalidArgument
from tests.conftest import require
from transform import compile_plan
from transform.ops.text import TextLayer, parse_text

FONTS = Path("/usr/share/fonts/truetype")
DEJAVU = FONTS / "dejavu" / "DejaVuSans.ttf"
LIBERATION = FONTS / "liberation2" / "LiberationSans-Regular.ttf"


def sdk_transformation(options: dict[str, Any]) -> str:
    url, _ = cloudinary.utils.cloudinary_url("photo.png", cloud_name="demo", **options)
    return parse_path(urlsplit(url).path).raw_transformation


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(pyvips.Image.new_from_buffer(data, "").numpy(), dtype=np.int16)


@pytest.fixture
def fonts() -> None:
    require(DEJAVU.is_file(), f"no {DEJAVU} (Debian fonts-dejavu-core): text layers cannot be drawn here")


def test_the_sdks_escaping_is_undone() -> None:
    text = "Hi, a/b (c) $5 & \u00e9!"
    written = sdk_transformation(
        {"overlay": {"font_family": "Arial", "font_size": 40, "font_weight": "bold", "text": text}}
    )
    assert written.startswith("l_text:Arial_40_bold:Hi%252C%20a%252Fb")
    layer = compile_plan(parse_transformation(written + "/fl_layer_apply")).steps[0]
    assert layer.canonical == written + "/fl_layer_apply"
    parsed = parse_text("l", written[2:])
    assert parsed == TextLayer("Arial", 40, ("bold",), text, written[7:])


@pytest.mark.parametrize(
    ("value", "family", "size", "styles", "text"),
    [
        ("text:Arial_20:Hello", "Arial", 20, (), "Hello"),
        (
            "text:Times%20New%20Roman_32_italic_underline:a%3Ab",
            "Times New Roman",
            32,
            ("italic", "underline"),
            "a:b",
        ),
        (
            "text:Verdana_50_bold_letter_spacing_4_center:Hi:there",
            "Verdana",
            50,
            ("bold", "letter_spacing_4", "center"),
            "Hi:there",
        ),
        ("text:Open_Sans_12_line_spacing_-3:100%2525", "Open_Sans", 12, ("line_spacing_-3",), "100%"),
    ],
)
def test_parse(value: str, family: str, size: int, styles: tuple[str, ...], text: str) -> None:
    layer = parse_text("l", value)
    assert (layer.family, layer.size, layer.styles, layer.text) == (family, size, styles, text)


@pytest.mark.parametrize(
    ("transformation", "message"),
    [
        ("l_text:Arial:Hi/fl_layer_apply", "text layer must be text:<font>_<size>"),
        ("l_text:Arial_40/fl_layer_apply", "text layer must be text:<font>_<size>"),
        ("l_text:Arial_0:Hi/fl_layer_apply", "size 1 to 1000"),
        ("l_text:Arial_40_shadow:Hi/fl_layer_apply", "shadow is not supported"),
        ("l_text:Arial_40:%25FF/fl_layer_apply", "percent-encoding is not valid UTF-8"),
        # A C string ends at NUL: "a%00b" drew "a" and dropped the rest silently.
        ("l_text:Arial_40:a%00b/fl_layer_apply", "must not contain NUL (%00)"),
        ("l_text:Arial_40:a%2500b/fl_layer_apply", "must not contain NUL (%00)"),
        ("l_text:Ari%00al_40:ab/fl_layer_apply", "must not contain NUL (%00)"),
        ("$t_!a%00b!/l_text:Arial_40:$(t)/fl_layer_apply", "must not contain NUL (%00)"),
        ("b_auto,l_text:Arial_40:Hi/fl_layer_apply", "a text layer's background is a colour"),
        # One of each: the drawing took the first and dropped the other silently.
        ("l_text:Arial_40_bold_light:Hi/fl_layer_apply", "a text layer takes one weight: bold and light"),
        ("l_text:Arial_40_italic_normal:Hi/fl_layer_apply", "takes one slant: italic and normal"),
        ("l_text:Arial_40_left_right:Hi/fl_layer_apply", "a text layer takes one alignment: left and right"),
        (
            "l_text:Arial_40_letter_spacing_5_letter_spacing_9:Hi/fl_layer_apply",
            "a text layer takes one letter spacing: letter_spacing_5 and letter_spacing_9",
        ),
        (
            "l_text:Arial_40_line_spacing_5_line_spacing_-2:Hi/fl_layer_apply",
            "a text layer takes one line spacing: line_spacing_5 and line_spacing_-2",
        ),
    ],
)
def test_bad_text_layers_are_400s(transformation: str, message: str) -> None:
    with pytest.raises(Exception) as caught:
        compile_plan(parse_transformation(transformation))
    assert getattr(caught.value, "status", None) == 400
    assert message in caught.value.public  # type: ignore[attr-defined]
    if "UTF-8" not in message and "background" not in message:
        assert isinstance(caught.value, InvalidArgument)


def test_text_is_drawn_where_placed_in_its_colour(fonts: None, files: dict[str, Path]) -> None:
    out = pixels(
        run(
            "co_red,l_text:DejaVu%20Sans_30_bold:Hello/fl_layer_apply,g_south",
            files["photo"],
            files,
            extension="png",
        ).data
    )
    base = pixels(run("", files["photo"], files, extension="png").data)
    ys, xs = np.nonzero(np.abs(out - base).max(axis=2) > 40)
    assert ys.min() > 240 - 40 and ys.max() == pytest.approx(
        239, abs=8
    )  # a line of 30 px type, at the bottom
    assert abs((xs.min() + xs.max()) / 2 - 160) < 4  # centred
    red = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] < 60)
    assert red[200:].sum() > 300


def test_line_spacing_adds_pixels_between_lines(fonts: None) -> None:
    """Cloudinary's line_spacing_<n>: n pixels more (or, negative, fewer) between lines than the font's
    own; 0 is the font's own spacing."""
    from transform.limits import Limits
    from transform.ops.text import render_text

    def height(styles: str) -> int:
        layer = parse_text("l", f"text:DejaVu%20Sans_40{styles}:One%0ATwo")
        return int(render_text(layer, None, None, None, Limits()).height)

    plain = height("")
    assert height("_line_spacing_0") == plain
    assert height("_line_spacing_10") == plain + 10
    assert height("_line_spacing_-10") == plain - 10


def test_markup_in_the_text_is_drawn_as_text(fonts: None, files: dict[str, Path]) -> None:
    """Pango reads markup: the client's <b> must come out as characters, not as bold (nor as an error)."""
    tagged = run("l_text:DejaVu%20Sans_20:%3Cb%3Ex%3C%2Fb%3E/fl_layer_apply", files["photo"], files)
    plain = run("l_text:DejaVu%20Sans_20:x/fl_layer_apply", files["photo"], files)
    assert tagged.data != plain.data


def test_background_wrap_and_layer_transformations(fonts: None, files: dict[str, Path]) -> None:
    text = "The%20quick%20brown%20fox%20jumps%20over%20the%20lazy%20dog"
    boxed = run(
        f"b_yellow,c_fit,l_text:DejaVu%20Sans_20:{text},w_120/fl_layer_apply,g_north_west",
        files["photo"],
        files,
        extension="png",
    )
    out = pixels(boxed.data)
    yellow = (out[..., 0] > 220) & (out[..., 1] > 220) & (out[..., 2] < 40)
    ys, xs = np.nonzero(yellow)
    assert xs.min() == 0 and ys.min() == 0
    assert xs.max() < 120  # wrapped to the box
    assert ys.max() > 3 * 20  # on several lines
    turned = run(
        f"l_text:DejaVu%20Sans_20:{text}/a_90/fl_layer_apply,fl_no_overflow,g_west", files["photo"], files
    )
    assert turned.width == 320


def test_an_unknown_font_falls_back_to_the_default(fonts: None, files: dict[str, Path]) -> None:
    unknown = run("l_text:NoSuchFont_30:Fallback/fl_layer_apply", files["photo"], files, extension="png")
    default = run("l_text:DejaVu%20Sans_30:Fallback/fl_layer_apply", files["photo"], files, extension="png")
    assert np.array_equal(pixels(unknown.data), pixels(default.data))


def test_arial_is_liberation_sans(fonts: None, files: dict[str, Path]) -> None:
    require(
        LIBERATION.is_file(), f"no {LIBERATION} (Debian fonts-liberation2): Arial falls back to DejaVu Sans"
    )
    arial = run("l_text:Arial_30:Arial/fl_layer_apply", files["photo"], files, extension="png")
    liberation = run(
        "l_text:Liberation%20Sans_30:Arial/fl_layer_apply", files["photo"], files, extension="png"
    )
    assert np.array_equal(pixels(arial.data), pixels(liberation.data))


@pytest.mark.parametrize(
    "transformation",
    [
        "co_red,l_text:DejaVu%20Sans_30_bold:Hello%252C%20world/fl_layer_apply,g_south,y_10",
        "b_rgb:00000080,co_white,l_text:DejaVu%20Serif_24_italic_underline:Caption/fl_layer_apply,g_north_west",
        "bo_3px_solid_rgb:1a1a80,co_white,l_text:DejaVu%20Sans_36_bold_stroke:Stroke/fl_layer_apply,g_south",
    ],
)
def test_text_goldens(fonts: None, files: dict[str, Path], transformation: str) -> None:
    rendered = run(transformation, files["photo"], files)
    check_golden("text-" + slug(transformation.split("/")[0]), rendered)


def test_a_huge_text_is_refused_before_it_is_drawn(files: dict[str, Path]) -> None:
    from grammar.errors import TooLarge

    with pytest.raises(TooLarge, match="Text layer is too large"):
        run(f"l_text:Arial_1000:{'W' * 1500}/fl_layer_apply", files["photo"], files)
    # Letter spacing widens the line as much as the glyphs do: 32 letters 2000 px apart are too wide
    # (Pango failed on them, a 400 saying only "unable to call text").
    with pytest.raises(TooLarge, match="Text layer is too large"):
        run(f"l_text:Arial_1000_letter_spacing_1000:{'W' * 32}/fl_layer_apply", files["photo"], files)


@pytest.mark.parametrize("text", ["%20", "%250A", "%20%20", "%E2%80%AE", "%E2%80%8B%20"])
def test_a_text_with_nothing_to_draw_is_a_400(text: str) -> None:
    with pytest.raises(InvalidArgument, match="must have something to draw"):
        compile_plan(parse_transformation(f"l_text:Arial_20:{text}/fl_layer_apply"))


STROKE_TEXT = "Stroke"


def test_stroke_outlines_the_letters_in_the_bo_colour(fonts: None, files: dict[str, Path]) -> None:
    """The reference pairs the stroke style with bo_ (its width and colour): an outline around the glyphs,
    which the same text without the style does not have (a no-op would fail here)."""
    written = sdk_transformation(
        {
            "overlay": {"font_family": "Arial", "font_size": 40, "font_weight": "bold",
                        "stroke": "stroke", "text": STROKE_TEXT},
            "color": "white",
            "border": "4px_solid_blue",
        }
    )  # fmt: skip
    assert "_stroke:" in written and "bo_4px_solid_blue" in written
    stroked = pixels(run(written + "/fl_layer_apply", files["road"], files, extension="png").data)
    plain_text = written.replace("_stroke:", ":").replace("bo_4px_solid_blue,", "")
    plain = pixels(run(plain_text + "/fl_layer_apply", files["road"], files, extension="png").data)
    blue = (stroked[..., 2] > 200) & (stroked[..., 0] < 60) & (stroked[..., 1] < 60)
    assert blue.sum() > 400 and not ((plain[..., 2] > 200) & (plain[..., 0] < 60)).any()
    white = (stroked.min(axis=2) > 230).sum()
    assert abs(white - (plain.min(axis=2) > 230).sum()) < 0.25 * white  # the letters keep their size
    default = run(f"l_text:DejaVu%20Sans_40_bold_stroke:{STROKE_TEXT},co_white/fl_layer_apply",
                  files["road"], files, extension="png")  # fmt: skip
    assert (pixels(default.data).max(axis=2) < 30).sum() > 100  # 1px black by default
