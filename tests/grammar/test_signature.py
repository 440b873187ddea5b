"""Delivery signatures: every vector of the reference (cloudinary.md 1.7), and verification of paths."""

from __future__ import annotations

from typing import Literal

import pytest

from grammar import parse_path, sign, verify_delivery
from grammar.signature import strings_to_sign

VECTORS: list[tuple[str, str, Literal["sha1", "sha256"], Literal[8, 32], str]] = [
    ("abcd", "c_fill,w_300,h_250/e_grayscale/sample-authenticated.png", "sha1", 8, "iDy_JeBq"),
    ("b", "c_crop,h_20,w_10/image.jpg", "sha1", 8, "Ai4Znfl3"),
    ("b", "image.jpg", "sha1", 8, "--SjmNDA"),
    ("b", "http://google.com/path/to/image.png", "sha1", 8, "hH_YcbiS"),
    ("b", "sample.jpg", "sha1", 8, "v2fTPYTu"),
    ("b", "sample.jpg", "sha256", 8, "2hbrSMPO"),
    ("b", "sample.jpg", "sha256", 32, "2hbrSMPOjj5BJ4xV7SgFbRDevFaQNUFf"),
    ("abcd", "c_fill,h_250,w_300/sample.jpg", "sha1", 8, "zW_z8U7I"),
    ("b", "co_red,l_text:Times_70_bold:Cool%25F0%259F%2598%258D/image.jpg", "sha1", 8, "Uqk1a-5W"),
]


@pytest.mark.parametrize(("secret", "to_sign", "algorithm", "length", "signature"), VECTORS)
def test_vectors(
    secret: str, to_sign: str, algorithm: Literal["sha1", "sha256"], length: Literal[8, 32], signature: str
) -> None:
    assert sign(to_sign, secret, algorithm=algorithm, length=length) == signature


def test_long_sha1_is_refused() -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        sign("sample.jpg", "b", algorithm="sha1", length=32)


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        ("/test123/image/upload/s--Ai4Znfl3--/c_crop,h_20,w_10/v1234/image.jpg", "b"),
        ("/test123/image/upload/s----SjmNDA--/image.jpg", "b"),
        ("/test123/image/upload/s--v2fTPYTu--/sample.jpg", "b"),
        ("/test123/image/upload/s--2hbrSMPO--/sample.jpg", "b"),
        ("/image/upload/s--2hbrSMPOjj5BJ4xV7SgFbRDevFaQNUFf--/v7/sample.jpg", "b"),
        ("/demo/image/upload/s--zW_z8U7I--/c_fill,h_250,w_300/sample.jpg", "abcd"),
        ("/demo/image/upload/s--iDy_JeBq--/c_fill,w_300,h_250/e_grayscale/sample-authenticated.png", "abcd"),
        ("/t/image/upload/s--Uqk1a-5W--/co_red,l_text:Times_70_bold:Cool%25F0%259F%2598%258D/image.jpg", "b"),
    ],
)
def test_verifies_signed_paths(path: str, secret: str) -> None:
    parsed = parse_path(path)
    assert verify_delivery(parsed, secret)
    assert not verify_delivery(parsed, secret + "x")


def test_signature_that_includes_the_version_is_accepted() -> None:
    signature = sign("c_crop,h_20,w_10/v1234/image.jpg", "b")
    assert verify_delivery(
        parse_path(f"/t/image/upload/s--{signature}--/c_crop,h_20,w_10/v1234/image.jpg"), "b"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/test123/image/upload/s--Ai4Znfl3--/c_crop,h_20,w_11/v1234/image.jpg",  # transformation changed
        "/test123/image/upload/s--Ai4Znfl3--/c_crop,h_20,w_10/v1234/image.png",  # extension changed
        "/test123/image/upload/s--Ai4Znfl3--/h_20,c_crop,w_10/v1234/image.jpg",  # order is signed too
        "/test123/image/upload/s--v2fTPYTu--/w_1/sample.jpg",  # transformation added
        "/test123/image/upload/s--2hbrSMPOjj5BJ4xV7SgFbRDevFaQNUFg--/sample.jpg",  # last char changed
        "/test123/image/upload/c_crop,h_20,w_10/v1234/image.jpg",  # unsigned
    ],
)
def test_rejects_tampered_or_unsigned(path: str) -> None:
    assert not verify_delivery(parse_path(path), "b")


def test_empty_secret_never_verifies() -> None:
    assert not verify_delivery(parse_path(f"/t/image/upload/s--{sign('x', '')}--/x"), "")


def test_strings_to_sign() -> None:
    parsed = parse_path("/t/image/upload/s--Ai4Znfl3--/c_crop,h_20,w_10/v1234/image.jpg")
    assert strings_to_sign(parsed) == ["c_crop,h_20,w_10/image.jpg", "c_crop,h_20,w_10/v1234/image.jpg"]


ENCODED = "%24w_300/c_scale,w_%24w/image.jpg"


def test_a_signature_still_verifies_once_a_proxy_encodes_the_transformation() -> None:
    """The SDK signs ``$w_300/c_scale,w_$w/...``; a client or CDN that sends ``%24w_300`` asks for the same
    thing, so the signature of what its components read as verifies too (and the text as written)."""
    signature = sign("$w_300/c_scale,w_$w/image.jpg", "b")
    assert verify_delivery(parse_path(f"/t/image/upload/s--{signature}--/{ENCODED}"), "b")
    assert verify_delivery(parse_path(f"/t/image/upload/s--{signature}--/$w_300/c_scale,w_$w/image.jpg"), "b")
    changed = ENCODED.replace("300", "301")
    assert not verify_delivery(parse_path(f"/t/image/upload/s--{signature}--/{changed}"), "b")
    written = sign(ENCODED, "b")  # signed as written: verifies as before
    assert verify_delivery(parse_path(f"/t/image/upload/s--{written}--/{ENCODED}"), "b")
    parsed = parse_path("/t/image/upload/s--Ai4Znfl3--/c_crop%2Ch_20,w_10/v1234/image.jpg")
    assert strings_to_sign(parsed) == [
        "c_crop%2Ch_20,w_10/image.jpg", "c_crop%2Ch_20,w_10/v1234/image.jpg",
        "c_crop,h_20,w_10/image.jpg", "c_crop,h_20,w_10/v1234/image.jpg",
    ]  # fmt: skip
    assert verify_delivery(parsed, "b")
