"""Values remembered by the content they were computed from (cutout.memory.ByContent): the API's image
digests and Runware's decoded images."""

from __future__ import annotations

import hashlib
import os

import pytest

from cutout.api.remover import HOT_BYTES
from cutout.memory import ByContent


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_the_same_bytes_give_their_sha256_and_a_look_alike_its_own() -> None:
    digests: ByContent[bytes, bytes] = ByContent(16 << 20, HOT_BYTES)
    image = os.urandom(50_000)
    assert digests.get(image, sha256) == sha256(image)
    again = bytes(bytearray(image))  # equal, another object (as a new request's body is)
    assert again is not image and digests.get(again, sha256) == sha256(image)
    # Same length and the same 64 bytes at each end: found by its sample, but not equal, so hashed.
    crafted = image[:25_000] + bytes([image[25_000] ^ 1]) + image[25_001:]
    assert digests.get(crafted, sha256) == sha256(crafted) != sha256(image)
    assert digests.get(image, sha256) == sha256(image)


def test_the_memory_is_bounded_and_large_contents_are_not_kept() -> None:
    digests: ByContent[bytes, bytes] = ByContent(200_000, 100_000)
    images = [os.urandom(60_000) for _ in range(10)]
    for image in images:
        assert digests.get(image, sha256) == sha256(image)
    assert sum(len(kept) for kept, _ in digests._known.values()) <= 200_000
    big = os.urandom(100_001)
    assert digests.get(big, sha256) == sha256(big)
    assert all(kept is not big for kept, _ in digests._known.values())
    with pytest.raises(ValueError, match="must fit the budget"):
        ByContent(1000, 2000)


def test_what_make_raises_is_raised_and_nothing_is_kept() -> None:
    decoded: ByContent[str, bytes] = ByContent(
        1 << 20, 1 << 19, cost=lambda text, data: len(text) + len(data)
    )
    calls: list[str] = []

    def refuse(text: str) -> bytes:
        calls.append(text)
        raise ValueError("not base64")

    for _ in range(2):
        with pytest.raises(ValueError, match="not base64"):
            decoded.get("x" * 1000, refuse)
    assert len(calls) == 2 and not decoded._known
