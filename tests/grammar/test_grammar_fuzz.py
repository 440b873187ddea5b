"""Whatever a client sends, the grammar answers with a value or a 4xx OriginError, never anything else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cutout.headers import header_safe
from grammar import DeliveryPath, parse_path, parse_transformation, verify_delivery
from grammar.errors import BadRequest, OriginError

VALID = [
    "/demo/image/upload/e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200/docs/rmv_bgd/dog",
    "/test123/image/upload/s--Ai4Znfl3--/c_crop,h_20,w_10/v1234/image.jpg",
    "/image/upload/a_hflip.45,b_rgb:ff0000,bo_5px_solid_black,c_pad,dpr_2.0/e_dropshadow:azimuth_220;elevation_60/x.png",
    "/iu/$w_400,if_w_gt_400,w_$w/l_text:Arial_40:Hi%252C%20a/v1/a%20b/c.webp",
]
ALPHABET = "/_,:;.$-%()!~ 0123456789abcdefgijlrsuvwxyzABFS\\\x00\u00e9"
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_client_errors(call: object, *args: str) -> object:
    try:
        return call(*args)  # type: ignore[operator]
    except OriginError as exc:
        assert isinstance(exc, BadRequest) and 400 <= exc.status < 500, exc
        # The text as written (é is é: the body is UTF-8), but nothing unprintable (a NUL, a newline), and
        # X-Cld-Error's form of it is ASCII.
        assert exc.public.isprintable(), exc.public
        assert header_safe(exc.public).isascii()
        return None


@FAST
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_arbitrary_transformation_text(text: str) -> None:
    result = _only_client_errors(parse_transformation, text)
    if result is not None:
        assert "/".join(component.raw for component in result) == text  # type: ignore[attr-defined]


@FAST
@given(st.text(max_size=80))
def test_arbitrary_paths(text: str) -> None:
    _only_client_errors(parse_path, "/" + text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    path = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(path)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from(ALPHABET))
        if action == "insert":
            path = path[:at] + char + path[at:]
        elif action == "delete":
            path = path[:at] + path[at + 1 :]
        else:
            path = path[:at] + char + path[at + 1 :]
    return path


@FAST
@given(mutated())
def test_mutated_valid_paths(path: str) -> None:
    parsed = _only_client_errors(parse_path, path)
    if isinstance(parsed, DeliveryPath):
        # Components are read from the transformation with encoded structural characters decoded
        # (``plain_component``: %45 is E), which is the URL as written where nothing is encoded.
        assert "/".join(component.raw for component in parsed.components) == parsed.transformation
        if "%" not in parsed.raw_transformation:
            assert parsed.transformation == parsed.raw_transformation
        assert ".." not in parsed.public_id.split("/") and "\\" not in parsed.public_id
        verify_delivery(parsed, "secret")


@pytest.mark.parametrize("path", VALID)
def test_seeds_are_valid(path: str) -> None:
    assert parse_path(path).public_id
