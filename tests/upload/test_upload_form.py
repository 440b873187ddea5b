"""The Upload API's multipart reader (python-multipart's parser, the file part kept as received chunks):
the same fields and bytes however the body is cut into chunks, and a 400 naming what is wrong."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from urllib3 import encode_multipart_formdata

from cutout.upload.errors import UploadError
from cutout.upload.form import read_multipart


def read(
    body: bytes, content_type: str, chunk: int, limit: int = 1 << 20
) -> tuple[list, bytes | None, str | None]:
    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), chunk):
            yield body[start : start + chunk]

    fields, part = asyncio.run(read_multipart(content_type, stream(), limit))
    return fields, (b"".join(part.chunks) if part else None), (part.filename if part else None)


def test_fields_and_the_file_whatever_the_chunks() -> None:
    boundary = "b0undary"
    # Bytes in the file that begin like the boundary: the parser's look-behind hands them back.
    data = os.urandom(70_000) + b"\r\n--b0und" + os.urandom(5_000) + b"\r\n--b0undar\r\n" + os.urandom(999)
    body, content_type = encode_multipart_formdata(
        [("public_id", "a/b"), ("tags[]", "x"), ("tags[]", "é"), ("file", ("photo.jpg", data))], boundary
    )
    for chunk in (1, 7, 64, 4096, 65_536, len(body)):
        fields, file, filename = read(body, content_type, chunk)
        assert fields == [("public_id", "a/b"), ("tags[]", "x"), ("tags[]", "é")]
        assert file == data and filename == "photo.jpg", chunk


def test_no_file_part() -> None:
    body, content_type = encode_multipart_formdata([("file", "data:image/png;base64,AAAA")])
    assert read(body, content_type, 100) == ([("file", "data:image/png;base64,AAAA")], None, None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([("other", ("x.jpg", b"x"))], "Only file may be a file part, not other"),
        ([("file", ("a.jpg", b"x")), ("file", ("b.jpg", b"y"))], "more than one file part"),
        ([(f"f{i}", "v") for i in range(1101)], "more than 1100 fields"),
        ([("context", "x" * 2000)], "the field context is over 1000 bytes"),
    ],
)
def test_refused_bodies(fields: list, message: str) -> None:
    body, content_type = encode_multipart_formdata(fields)
    with pytest.raises(UploadError, match=message) as caught:
        read(body, content_type, 512, limit=1000)
    assert caught.value.status == 400


def test_malformed_bodies() -> None:
    with pytest.raises(UploadError, match="Missing boundary"):
        read(b"x", "multipart/form-data", 10)
    with pytest.raises(UploadError, match="Invalid multipart data"):
        read(b"garbage without a boundary\r\n", "multipart/form-data; boundary=zz", 10)
    body = b"--zz\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--zz--\r\n"
    with pytest.raises(UploadError, match='no Content-Disposition "name"'):
        read(body, "multipart/form-data; boundary=zz", 10)


@pytest.mark.parametrize(
    "cut",
    [
        b"",  # right after the file's bytes
        b"\r\n",
        b"\r\n--b0undary",  # the closing boundary without its "--"
        b'\r\n--b0undary\r\nContent-Disposition: form-data; name="tags"\r\n\r\nabc',  # a part unfinished
    ],
    ids=["after-file", "crlf", "boundary-no-dashes", "unfinished-part"],
)
def test_a_body_without_its_closing_boundary_is_refused(cut: bytes) -> None:
    """python-multipart's finalize() does not check the parser's final state: these were accepted, the
    file stored, the unfinished part's field dropped."""
    data = os.urandom(5_000)
    fields = [("public_id", "a"), ("file", ("a.jpg", data))]
    body, content_type = encode_multipart_formdata(fields, "b0undary")
    cut_body = body[: body.index(data) + len(data)] + cut
    for chunk in (7, 4096, len(cut_body)):
        with pytest.raises(UploadError, match="ends before the closing boundary") as caught:
            read(cut_body, content_type, chunk)
        assert caught.value.status == 400
    assert read(body, content_type, 4096)[1] == data  # the whole body still reads
