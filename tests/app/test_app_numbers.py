"""Huge numbers in a delivery URL are a 400 naming the parameter, signed or not, in strict mode too
(the transformation is parsed before strict mode's check, so a crash there was a 500 for everybody)."""

from __future__ import annotations

import pytest

from tests.app.helpers import ClientFactory

HUGE = "9" * 4400
ZEROS = "0" * 4400 + "40"  # w_40 written long: int() counted the zeros and raised


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    ("component", "named"),
    [
        (f"w_{HUGE}", "w_9999"),
        (f"l_text:Arial_{HUGE}:hi", "l_text:Arial_9999"),
        ("l_text:Arial_²:hi", "l_text"),
    ],
    ids=["w", "text-size", "text-size-superscript"],
)
def test_huge_numbers_are_a_400(make_client: ClientFactory, strict: bool, component: str, named: str) -> None:
    response = make_client(strict=strict).get(f"/image/upload/{component}/docs/road.jpg")
    assert response.status_code == 400, response.text[:200]
    assert response.text.startswith(f"Invalid transformation parameter - {named}")


def test_a_small_number_with_thousands_of_leading_zeros_is_that_number(make_client: ClientFactory) -> None:
    response = make_client().get(f"/image/upload/c_scale,w_{ZEROS}/docs/road.jpg")
    assert response.status_code == 200, response.text[:200]
    assert response.headers["content-type"] == "image/jpeg"
