"""The image digests the API's hot path remembers by bytes (cutout.api.remover.Digests)."""

from __future__ import annotations

import hashlib
import os

from cutout.api.remover import HOT_BYTES, Digests


def test_the_same_bytes_give_their_sha256_and_a_look_alike_its_own() -> None:
    digests = Digests()
    image = os.urandom(50_000)
    assert digests.of(image) == hashlib.sha256(image).digest()
    again = bytes(bytearray(image))  # equal, another object (as a new request's body is)
    assert again is not image and digests.of(again) == hashlib.sha256(image).digest()
    # Same length and the same 64 bytes at each end: found by its sample, but not equal, so hashed.
    crafted = image[:25_000] + bytes([image[25_000] ^ 1]) + image[25_001:]
    assert digests.of(crafted) == hashlib.sha256(crafted).digest() != hashlib.sha256(image).digest()
    assert digests.of(image) == hashlib.sha256(image).digest()


def test_the_memory_is_bounded_and_large_images_are_not_kept() -> None:
    digests = Digests(budget=200_000)
    images = [os.urandom(60_000) for _ in range(10)]
    for image in images:
        assert digests.of(image) == hashlib.sha256(image).digest()
    assert sum(len(kept) for kept, _ in digests._known.values()) <= 200_000
    big = os.urandom(HOT_BYTES + 1)
    assert digests.of(big) == hashlib.sha256(big).digest()
    assert all(kept is not big for kept, _ in digests._known.values())
