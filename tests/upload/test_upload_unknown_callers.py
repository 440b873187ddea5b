"""What a caller not known yet sends waits on disk, not in memory: an Upload API call's signature is in its
body, so the body's bytes come first. The SDKs send their parameters before the file, so their calls are
known when the file begins and keep it in memory; any other order, and any form-urlencoded or JSON body
without HTTP Basic, is spooled to a temporary file until the whole request's signature holds."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from urllib3 import encode_multipart_formdata

from cutout.upload import auth
from cutout.upload.errors import UploadError
from cutout.upload.form import MAX_FIELDS_BYTES, FilePart, read_multipart
from cutout.upload.spool import SPILL_BYTES
from tests.app.helpers import SAMPLES
from tests.app.server_process import ServerProcess
from tests.upload.conftest import KEY, SECRET, start_server

PHOTO = (SAMPLES / "docs" / "road.jpg").read_bytes()


def _read(
    body: bytes, content_type: str, known: bool, chunk: int = 65_536
) -> tuple[list[tuple[str, str]], FilePart | None, list[list[tuple[str, str]]]]:
    asked: list[list[tuple[str, str]]] = []

    def decide(fields: list[tuple[str, str]]) -> bool:
        asked.append(list(fields))
        return known

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), chunk):
            yield body[start : start + chunk]

    fields, part = asyncio.run(read_multipart(content_type, stream(), 1 << 30, decide))
    return fields, part, asked


def test_a_known_callers_file_stays_in_memory_and_is_decided_on_the_fields_before_it() -> None:
    body, content_type = encode_multipart_formdata([("public_id", "a"), ("file", ("a.jpg", PHOTO))])
    fields, part, asked = _read(body, content_type, known=True)
    assert part is not None and part.spool is None and part.read() == PHOTO
    assert asked == [[("public_id", "a")]]  # asked once, when the file began, with what came before


@pytest.mark.parametrize("size", [1000, SPILL_BYTES * 3 + 17])
def test_an_unknown_callers_file_is_spooled_and_read_back_whole(size: int) -> None:
    data = os.urandom(size)
    body, content_type = encode_multipart_formdata([("file", ("a.jpg", data)), ("public_id", "a")])
    fields, part, asked = _read(body, content_type, known=False, chunk=4096)
    assert fields == [("public_id", "a")] and asked == [[]]
    assert part is not None and part.spool is not None and part.filename == "a.jpg"
    assert part.spool.spilled == (size > SPILL_BYTES)
    assert part.read() == data
    assert not part.spool.spilled  # read back: the temporary file is closed


def test_an_unknown_callers_file_field_is_spooled_too() -> None:
    uri = "data:image/jpeg;base64," + base64.b64encode(os.urandom(SPILL_BYTES * 2)).decode()
    body, content_type = encode_multipart_formdata([("file", uri), ("public_id", "a")])
    fields, part, _ = _read(body, content_type, known=False)
    assert fields == [("public_id", "a")]
    assert part is not None and part.filename is None and part.read().decode() == uri
    # Known: a field, as before.
    fields, part, _ = _read(body, content_type, known=True)
    assert part is None and fields == [("file", uri), ("public_id", "a")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([("file", "data:,x"), ("file", ("a.jpg", b"x"))], "file is given more than once"),
        ([("file", ("a.jpg", b"x")), ("file", "data:,x")], "file is given more than once"),
        ([("context", "x" * 600_000), ("tags", "y" * 600_000)], f"over {MAX_FIELDS_BYTES} bytes together"),
    ],
)
@pytest.mark.parametrize("known", [True, False])
def test_refusals(fields: list, message: str, known: bool) -> None:
    body, content_type = encode_multipart_formdata(fields)
    with pytest.raises(UploadError, match=message) as caught:
        _read(body, content_type, known)
    assert caught.value.status == 400


# == through a real server =============================================================================


@pytest.fixture(scope="module")
def spool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    root = tmp_path_factory.mktemp("unknown")
    temporary = root / "tmp"
    temporary.mkdir()
    process = start_server(root, env={"TMPDIR": str(temporary)})
    yield process, temporary
    process.stop()


def _open_under(group: int, folder: Path) -> list[str]:
    """Files under ``folder`` held open by any process of the server's process group (a temporary file
    is unlinked at once, but its descriptor still names where it is)."""
    held = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith(str(folder)):
                    held.append(target)
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
    return held


def _signed(params: dict[str, str], secret: str = SECRET) -> dict[str, str]:
    params = {**params, "timestamp": str(int(time.time()))}
    return {**params, "api_key": KEY, "signature": auth.sign(params, secret)}


def _upload_url(server: ServerProcess) -> str:
    return f"{server.url}/v1_1/demo/image/upload"


def test_a_file_sent_before_its_signature_is_stored(spool_server: tuple[ServerProcess, Path]) -> None:
    server, _ = spool_server
    data = _big_jpeg()  # its file part comes first: it waits on disk, then is stored as sent
    body, content_type = encode_multipart_formdata(
        [("file", ("road.jpg", data)), *_signed({"public_id": "unknown/first"}).items()]
    )
    answer = httpx.post(_upload_url(server), content=body, headers={"Content-Type": content_type}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["etag"] == hashlib.md5(data).hexdigest()


def test_a_signed_json_body_over_the_spill_size_is_stored(spool_server: tuple[ServerProcess, Path]) -> None:
    server, temporary = spool_server
    big = _big_jpeg()
    assert len(big) * 4 / 3 > SPILL_BYTES
    uri = "data:image/jpeg;base64," + base64.b64encode(big).decode()
    fields = _signed({"public_id": "unknown/json", "file": uri})
    answer = httpx.post(_upload_url(server), json=fields, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["etag"] == hashlib.md5(big).hexdigest()
    forged = {**fields, "signature": "0" * 40}
    answer = httpx.post(_upload_url(server), json=forged, timeout=60)
    assert answer.status_code == 401 and "Invalid Signature" in answer.json()["error"]["message"]
    assert _open_under(server.process.pid, temporary) == []


def test_an_unknown_callers_body_waits_on_disk_and_leaves_nothing(
    spool_server: tuple[ServerProcess, Path],
) -> None:
    server, temporary = spool_server
    data = _big_jpeg()
    fields = {**_signed({"public_id": "unknown/forged"}), "signature": "f" * 40}
    body, content_type = encode_multipart_formdata([("file", ("big.jpg", data)), *fields.items()])
    head = (f"POST /v1_1/demo/image/upload HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body[: SPILL_BYTES * 2])  # the file's first bytes, no signature yet
        deadline = time.monotonic() + 20
        while not _open_under(server.process.pid, temporary):
            assert time.monotonic() < deadline, "the unknown caller's file never reached the disk"
            time.sleep(0.05)
        sock.sendall(body[SPILL_BYTES * 2 :])
        answer = _response(sock)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"Invalid Signature" in answer
    deadline = time.monotonic() + 5
    while _open_under(server.process.pid, temporary):  # closed once answered
        assert time.monotonic() < deadline, _open_under(server.process.pid, temporary)
        time.sleep(0.05)
    assert [name for name in os.listdir(temporary) if name.startswith("cutout-upload")] == []


def _response(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65_536)
    head, _, rest = received.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))  # fmt: skip
    while len(rest) < length:
        rest += sock.recv(65_536)
    return head + b"\r\n\r\n" + rest


def _big_jpeg() -> bytes:
    """A JPEG of about 2.5 MB (under the test server's 3 MB limit), noisy so that it stays that big."""
    import pyvips

    image = pyvips.Image.gaussnoise(1400, 1000, sigma=60, mean=128).cast("uchar").bandjoin([0, 0]).copy(
        interpretation="srgb"
    )
    data: bytes = image.jpegsave_buffer(Q=95)
    assert 2 * SPILL_BYTES < len(data) < 3_000_000, len(data)
    return data


def test_answers_are_json(spool_server: tuple[ServerProcess, Path]) -> None:
    server, _ = spool_server
    answer = httpx.post(_upload_url(server), data={"public_id": "x"}, timeout=30)
    assert answer.status_code == 401
    assert json.loads(answer.text)["error"]["message"] == "Must supply api_key"


def test_a_body_without_a_content_type_is_refused(spool_server: tuple[ServerProcess, Path]) -> None:
    server, _ = spool_server
    answer = httpx.post(_upload_url(server), content=b"file=data:,x&public_id=a", timeout=30)
    assert answer.status_code == 400
    assert "no Content-Type" in answer.json()["error"]["message"]
    # No body and no Content-Type: the parameters are the query's, as before.
    answer = httpx.post(_upload_url(server) + "?public_id=a", timeout=30)
    assert answer.status_code == 401 and answer.json()["error"]["message"] == "Must supply api_key"
