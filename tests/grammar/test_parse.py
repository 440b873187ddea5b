"""Transformation text -> components, and syntax errors that name the column and the problem."""

from __future__ import annotations

import pytest

from grammar import Component, Param, parse_transformation
from grammar.errors import TransformationSyntaxError

# text -> list of components, each a list of (key, raw value)
CASES: list[tuple[str, list[list[tuple[str, str]]]]] = [
    ("w_400", [[("w", "400")]]),
    ("c_scale,w_400", [[("c", "scale"), ("w", "400")]]),
    ("x_-20,y_-0.5", [[("x", "-20"), ("y", "-0.5")]]),
    ("w_0.5,dpr_2.0", [[("w", "0.5"), ("dpr", "2.0")]]),
    ("ar_16:9", [[("ar", "16:9")]]),
    ("b_rgb:ff00aa80,co_red", [[("b", "rgb:ff00aa80"), ("co", "red")]]),
    ("e_dropshadow:azimuth_220;elevation_60", [[("e", "dropshadow:azimuth_220;elevation_60")]]),
    ("e_background_removal:fineedges_y", [[("e", "background_removal:fineedges_y")]]),
    ("e_background_removal:hints_(cat;dog)", [[("e", "background_removal:hints_(cat;dog)")]]),
    ("u_docs:road", [[("u", "docs:road")]]),
    ("d_docs:placeholders:avatar.png", [[("d", "docs:placeholders:avatar.png")]]),
    ("c_scale,d_docs:a%20b.png,w_10", [[("c", "scale"), ("d", "docs:a%20b.png"), ("w", "10")]]),
    ("fl_attachment:my%20photo;v2_final", [[("fl", "attachment:my%20photo;v2_final")]]),
    ("fl_attachment.progressive", [[("fl", "attachment.progressive")]]),
    ("fl_layer_apply.relative", [[("fl", "layer_apply.relative")]]),
    ("a_hflip.45", [[("a", "hflip.45")]]),
    ("bo_5px_solid_black", [[("bo", "5px_solid_black")]]),
    ("q_auto:good/f_auto", [[("q", "auto:good")], [("f", "auto")]]),
    # Client Hints forms: the grammar keeps them as written; transform/hints.py settles them per request.
    ("c_scale,w_auto,dpr_auto", [[("c", "scale"), ("w", "auto"), ("dpr", "auto")]]),
    ("c_limit,w_auto:100:400", [[("c", "limit"), ("w", "auto:100:400")]]),
    ("w_auto:breakpoints_200_1920_30_15:800", [[("w", "auto:breakpoints_200_1920_30_15:800")]]),
    ("r_10:20:30:40,r_max", [[("r", "10:20:30:40"), ("r", "max")]]),
    ("$w_400,if_w_gt_400,w_$w", [[("$w", "400"), ("if", "w_gt_400"), ("w", "$w")]]),
    ("w_iw_mul_0.5", [[("w", "iw_mul_0.5")]]),
    ("pg_1-3", [[("pg", "1-3")]]),
    ("l_text:Arial_40:Hi%252C%20a%252Fb", [[("l", "text:Arial_40:Hi%252C%20a%252Fb")]]),
    ("l_fetch:aHR0cDovL2EuYi9jLnBuZw==", [[("l", "fetch:aHR0cDovL2EuYi9jLnBuZw==")]]),
    ("w_400,foo_3", [[("w", "400"), ("foo", "3")]]),
    (
        "e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200",
        [
            [("e", "background_removal")],
            [("c", "scale"), ("w", "400")],
            [("u", "docs:road")],
            [("fl", "layer_apply"), ("y", "-200")],
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[case[0] for case in CASES])
def test_parses(text: str, expected: list[list[tuple[str, str]]]) -> None:
    components = parse_transformation(text)
    assert [[(p.key, p.value) for p in c.params] for c in components] == expected
    assert "/".join(c.raw for c in components) == text


def test_columns_and_raw_text() -> None:
    assert parse_transformation("c_scale,w_400/e_grayscale") == (
        Component((Param("c", "scale", 1), Param("w", "400", 9)), "c_scale,w_400"),
        Component((Param("e", "grayscale", 15),), "e_grayscale"),
    )


def test_empty_text_is_empty_chain() -> None:
    assert parse_transformation("") == ()


ERRORS = [
    ("c_scale,,w_4", 'column 9 of "c_scale,,w_4": empty parameter'),
    (",w_4", 'column 1 of ",w_4": empty parameter'),
    ("w_4,", 'column 5 of "w_4,": empty parameter'),
    ("w_4//c_fit", 'column 5 of "w_4//c_fit": empty component'),
    ("/w_4", 'column 1 of "/w_4": empty component'),
    ("w_4/", 'column 5 of "w_4/": empty component'),
    ("w_", 'column 3 of "w_": missing value after "w_"'),
    ("c_fit,w_/h_3", 'column 9 of "c_fit,w_/h_3": missing value after "w_"'),
    ("w_4:", 'column 5 of "w_4:": missing value after "w_4:"'),
    ("c_scale,ar_16::9", 'column 15 of "c_scale,ar_16::9": missing value after "ar_16:"'),
    ("w400", "column 2 of \"w400\": expected '_' after parameter key \"w\", found character '4'"),
    ("w", 'column 2 of "w": expected \'_\' after parameter key "w", found end of text'),
    (
        "W_400",
        'column 1 of "W_400": expected a parameter key (lower-case letters or a $variable), '
        "found character 'W'",
    ),
    ("w_4 ", "column 4 of \"w_4 \": unexpected character ' '"),
    ("w_<x>", "column 3 of \"w_<x>\": unexpected character '<'"),
    ("q_auto::good", "column 8 of \"q_auto::good\": missing value after \"q_auto:\""),
    (
        "\u00fc_3",
        'column 1 of "\u00fc_3": expected a parameter key (lower-case letters or a $variable), '
        "found character '\u00fc'",
    ),
    # What cannot be seen, or would act on a log line or a terminal, stays escaped.
    ("w_\x1b[31m", 'column 3 of "w_\\x1b[31m": unexpected character \'\\x1b\''),
    ("w_1\u202e", 'column 4 of "w_1\\u202e": unexpected character \'\\u202e\''),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[case[0] for case in ERRORS])
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(TransformationSyntaxError) as caught:
        parse_transformation(text)
    assert caught.value.public == f"Invalid transformation syntax at {message}"
    assert caught.value.status == 400


def test_message_is_bounded_and_ascii() -> None:
    with pytest.raises(TransformationSyntaxError) as caught:
        parse_transformation("w_1," * 100 + "\n")
    assert len(caught.value.public) < 300
    caught.value.public.encode("ascii")
