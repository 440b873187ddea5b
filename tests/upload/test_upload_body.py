"""An upload's bytes kept in the pieces they arrived in: read, header-checked, hashed and written exactly
as the same bytes whole would be."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
import pyvips

from cache import FolderOriginals
from cutout.upload.body import Body
from cutout.upload.errors import UploadError
from cutout.upload.images import inspect
from tests.app.helpers import SAMPLES
from transform.files import digest, write_atomically

ROAD = (SAMPLES / "docs" / "road.jpg").read_bytes()


def split(data: bytes, sizes: list[int]) -> list[bytes | memoryview]:
    """``data`` cut into pieces of the given sizes in turn, half of them views (as python-multipart's)."""
    pieces: list[bytes | memoryview] = []
    start = 0
    for n in range(len(data)):
        if start >= len(data):
            break
        size = sizes[n % len(sizes)]
        piece = data[start : start + size]
        pieces.append(memoryview(piece) if n % 2 else piece)
        start += size
    return pieces


def formats() -> dict[str, bytes]:
    image = pyvips.Image.new_from_buffer(ROAD, "").thumbnail_image(96)
    return {"jpg": ROAD, "png": image.pngsave_buffer(), "webp": image.webpsave_buffer(),
            "gif": image.gifsave_buffer(), "tiff": image.tiffsave_buffer()}  # fmt: skip


@pytest.mark.parametrize("sizes", [[1, 7, 3000], [65536], [16, 100_000]])
def test_pieces_read_like_the_whole(sizes: list[int]) -> None:
    body = Body(split(ROAD, sizes))
    assert len(body) == len(ROAD) and body.joined() == ROAD
    rng = random.Random(7)
    for _ in range(200):
        start, length = rng.randrange(len(ROAD) + 10), rng.randrange(1, 70_000)
        assert bytes(body.read(start, length)) == ROAD[start : start + length]
    assert body.head(16) == ROAD[:16] and body.tail(64) == ROAD[-64:]
    assert digest(body.pieces, "md5") == hashlib.md5(ROAD).hexdigest()
    assert digest(body.pieces, "sha256") == hashlib.sha256(ROAD).hexdigest()


def test_the_header_check_reads_pieces_as_it_reads_the_whole() -> None:
    for fmt, data in formats().items():
        whole = inspect(data, 10**9)
        assert whole.format == fmt
        for sizes in ([1, 5, 999], [4096], [len(data) // 2 + 1]):
            assert inspect(Body(split(data, sizes)), 10**9) == whole, (fmt, sizes)


def test_pieces_of_a_bad_file_are_refused_as_the_whole_is() -> None:
    for fmt, data in formats().items():
        cut = data[: len(data) * 2 // 3]
        with pytest.raises(UploadError) as whole:
            inspect(cut, 10**9)
        with pytest.raises(UploadError) as pieces:
            inspect(Body(split(cut, [1, 300, 5000])), 10**9)
        assert pieces.value.message == whole.value.message, fmt
    with pytest.raises(UploadError, match="Empty file"):
        inspect(Body([b"", memoryview(b"")]), 10**9)
    with pytest.raises(UploadError, match="too large"):
        inspect(Body(split(ROAD, [10, 2000])), 100)


def test_pieces_are_written_and_fingerprinted_as_the_whole(tmp_path: Path) -> None:
    pieces = split(ROAD, [333, 70_000])
    write_atomically(tmp_path / "a.jpg", pieces)
    assert (tmp_path / "a.jpg").read_bytes() == ROAD
    store = FolderOriginals(tmp_path)
    found = store.write("b", "jpg", pieces, replacing=False)
    assert found.path.read_bytes() == ROAD
    assert store.fingerprint(pieces) == store.fingerprint(ROAD) == store.version(found)
