"""Size limits: every image the engine would make is checked before its pixels are computed (413), and a
result its format cannot hold is the request's fault (400), never a 500 or a 422 blaming the original."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from transform_helpers import run

from grammar.errors import BadRequest, TooLarge
from transform import Limits
from transform.limits import megapixels


def too_large(size: str, mp: str, what: str = "Result", limit: str = "50.0") -> str:
    return f"{what} is too large: {size} pixels ({mp} megapixels); the limit is {limit} megapixels"


SMALL = Limits(max_output_pixels=1_000_000)
# (transformation, source, run() options, message); photo is 320x240, logo 80x60, road 480x360.
TOO_LARGE: list[tuple[str, str, dict[str, Any], str]] = [
    ("w_16384", "photo", {}, too_large("16384x12288", "201.3")),
    ("c_pad,h_16384,w_16384", "photo", {}, too_large("16384x16384", "268.4")),
    ("c_mpad,h_16384,w_16384", "photo", {}, too_large("16384x16384", "268.4")),
    ("c_scale,dpr_10.0,w_3000", "photo", {}, too_large("30000x22500", "675.0")),
    ("w_100.0", "photo", {}, too_large("32000x24000", "768.0")),
    ("c_fill,w_16384,ar_0.001", "photo", {}, too_large("16384x16384000", "268435.5")),
    (  # the output is small, but smartcrop would read all of the upscaled image
        "c_fill,g_auto,h_10,w_16384",
        "photo",
        {},
        too_large("16384x12288", "201.3", "Image to smart-crop"),
    ),
    ("c_scale,h_7000,w_7000/a_45", "photo", {}, too_large("9899x9899", "98.0")),
    ("c_scale,h_7000,w_7000/bo_1000px_solid_red", "photo", {}, too_large("9000x9000", "81.0")),
    (  # an image on the way, not the (small) result: the step that makes it is named
        "c_scale,h_7000,w_7000/a_45/c_scale,w_100",
        "photo",
        {},
        too_large("9899x9899", "98.0", "The image after a_45"),
    ),
    ("l_road/w_16384/fl_layer_apply", "photo", {}, too_large("16384x12288", "201.3")),
    ("l_logo/c_scale,fl_layer_apply,fl_relative,w_100.0", "photo", {}, too_large("32000x24000", "768.0")),
    (
        "l_logo/fl_layer_apply,g_north_west,x_16384,y_16384",
        "photo",
        {},
        too_large("16464x16444", "270.7", "Canvas holding the layer"),
    ),
    ("w_1200", "photo", {"limits": SMALL}, too_large("1200x900", "1.1", limit="1.0")),  # shrink-on-load
    ("e_grayscale/w_1200", "photo", {"limits": SMALL}, too_large("1200x900", "1.1", limit="1.0")),
    (  # no steps: the original itself is delivered
        "",
        "photo",
        {"limits": Limits(max_output_pixels=50_000)},
        too_large("320x240", "0.077", limit="0.050"),
    ),
]


@pytest.mark.parametrize(("text", "source", "options", "message"), TOO_LARGE, ids=[r[0] for r in TOO_LARGE])
def test_too_large_is_refused_before_computing(
    files: dict[str, Path], text: str, source: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(TooLarge) as caught:
        run(text, files[source], files, **options)
    assert (caught.value.status, caught.value.public) == (413, message)


def cannot_hold(size: str, name: str, side: int) -> str:
    return (
        f"Invalid transformation: the result is {size} pixels, and {name} holds at most {side} pixels "
        "a side; ask for a smaller size or another format (f_png)"
    )


# c_scale,h_1,w_16384 makes a 16384x1 strip (a few kilobytes), which w_ then stretches.
STRIP = "c_scale,h_1,w_16384"
FORMAT_LIMITS: list[tuple[str, dict[str, Any], str]] = [
    (f"{STRIP}/w_5.0", {}, cannot_hold("81920x5", "JPEG", 65500)),  # the original's format
    (f"{STRIP}/w_1.1/f_webp", {}, cannot_hold("18022x1", "WebP", 16383)),
    (f"{STRIP}/w_1.1/f_avif", {}, cannot_hold("18022x1", "AVIF", 16384)),
    (f"{STRIP}/w_1.1", {"extension": "webp"}, cannot_hold("18022x1", "WebP", 16383)),
]


@pytest.mark.parametrize(("text", "options", "message"), FORMAT_LIMITS, ids=[r[0] for r in FORMAT_LIMITS])
def test_a_format_too_small_for_the_result_is_a_400(
    files: dict[str, Path], text: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        run(text, files["photo"], files, **options)
    assert (caught.value.status, caught.value.public) == (400, message)


# (transformation, source, run() options) -> (format, width, height)
FITS: list[tuple[str, str, dict[str, Any], tuple[str, int, int]]] = [
    ("c_fill,h_10,w_16384", "photo", {}, ("jpg", 16384, 10)),  # the upscale is only cropped from
    ("c_mpad,h_10,w_16384", "photo", {}, ("jpg", 320, 240)),  # nothing to pad: the box is never made
    ("c_limit,h_16384,w_16384", "photo", {}, ("jpg", 320, 240)),
    ("l_logo/fl_layer_apply,fl_no_overflow,x_100.0", "photo", {}, ("jpg", 320, 240)),
    (f"{STRIP}/w_5.0/f_png", "photo", {}, ("png", 81920, 5)),
    # f_auto falls back to a format every client takes: JPEG, or PNG for transparency or beyond JPEG.
    (f"{STRIP}/w_1.1/f_auto", "photo", {"accept": "image/avif"}, ("jpg", 18022, 1)),
    ("c_scale,h_4,w_16384/w_1.1/f_auto", "cutout", {"accept": "image/webp"}, ("png", 18022, 4)),
    (f"{STRIP}/w_5.0/f_auto", "photo", {"accept": "image/webp"}, ("png", 81920, 5)),
]


@pytest.mark.parametrize(("text", "source", "options", "expected"), FITS, ids=[r[0] for r in FITS])
def test_within_the_limits(
    files: dict[str, Path], text: str, source: str, options: dict[str, Any], expected: tuple[str, int, int]
) -> None:
    rendered = run(text, files[source], files, **options)
    assert (rendered.format, rendered.width, rendered.height) == expected


def test_output_limit_defaults_to_the_input_limit() -> None:
    assert Limits().output_pixels == 50_000_000
    assert Limits(max_pixels=80_000_000).output_pixels == 80_000_000
    assert Limits(max_pixels=80_000_000, max_output_pixels=10_000_000).output_pixels == 10_000_000
    assert [megapixels(n) for n in (50_000_000, 76_800, 1_050_000)] == ["50.0", "0.077", "1.1"]
