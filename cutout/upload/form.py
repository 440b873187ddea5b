"""The Upload API's multipart body, read as it streams in with python-multipart's own parser: fields
as text, the one ``file`` part as the chunks the server received, joined once at the end.

starlette's ``MultiPartParser`` copies every chunk of a file part into a ``SpooledTemporaryFile`` (a
``BytesIO`` growing by reallocation, or a disk file past its spool size, written through the thread
pool) that the upload then reads back whole: for a 2 MB photo that was about 1.5 ms of copying per
upload, more than the file's write into the originals store. Here a chunk the parser hands over whole
is kept as it is (a part of one is a ``memoryview``, no copy), so the bytes are copied once, by the join.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from cutout.formbody import MISSING_END
from cutout.upload.errors import bad

#: More fields than this are refused (starlette's ``max_fields`` as the Upload API set it).
MAX_FIELDS = 256


class FilePart:
    def __init__(self, name: str, filename: str) -> None:
        self.name, self.filename = name, filename
        self.chunks: list[bytes | memoryview] = []


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.data = bytearray()
        self.file: FilePart | None = None


class MultipartForm:
    """Callbacks for ``MultipartParser``: ``fields`` in order, and ``file``, the one file part."""

    def __init__(self, charset: str, max_field_bytes: int) -> None:
        self.charset = charset
        self.max_field_bytes = max_field_bytes  # a data URI or base64 ``file`` comes as a field
        self.fields: list[tuple[str, str]] = []
        self.file: FilePart | None = None
        self.ended = False  # the closing boundary was read
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode(self.charset)
        except UnicodeDecodeError:  # as starlette does: a field is never refused for its encoding
            return raw.decode("latin-1")

    def on_part_begin(self) -> None:
        self._part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._part.headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._part.headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise bad('Malformed form body: a part has no Content-Disposition "name"')
        self._part.name = self._text(options[b"name"])
        if b"filename" in options:
            if self._part.name != "file":
                raise bad(f"Only file may be a file part, not {self._part.name[:40]}")
            if self.file is not None:
                raise bad("Malformed form body: more than one file part")
            self._part.file = self.file = FilePart(self._part.name, self._text(options[b"filename"]))
        elif len(self.fields) >= MAX_FIELDS:
            raise bad(f"Malformed form body: more than {MAX_FIELDS} fields")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part.file is not None:
            # The parser's own chunk when the part spans it whole (the usual case for a file's middle):
            # kept without a copy; a piece of one as a view of it, copied only by the final join.
            # (The parser's look-behind pieces are bytes too; anything mutable is copied.)
            if not isinstance(data, bytes):
                self._part.file.chunks.append(bytes(data[start:end]))
            elif start == 0 and end == len(data):
                self._part.file.chunks.append(data)
            else:
                self._part.file.chunks.append(memoryview(data)[start:end])
            return
        if len(self._part.data) + end - start > self.max_field_bytes:
            raise bad(
                f"Malformed form body: the field {self._part.name[:40]} is over {self.max_field_bytes} bytes"
            )
        self._part.data += data[start:end]

    def on_part_end(self) -> None:
        if self._part.file is None:
            self.fields.append((self._part.name, self._text(bytes(self._part.data))))

    def on_end(self) -> None:
        self.ended = True


async def read_multipart(
    content_type: str, stream: AsyncIterator[bytes], max_field_bytes: int
) -> tuple[list[tuple[str, str]], FilePart | None]:
    """The fields of a ``multipart/form-data`` body and its file part (None when it has none); a 400
    naming what is wrong with a malformed one (a field over ``max_field_bytes`` included)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise bad("Malformed form body: Missing boundary in multipart.")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "latin-1"
    form = MultipartForm(charset, max_field_bytes)
    callbacks = {name: getattr(form, name) for name in dir(MultipartForm) if name.startswith("on_")}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise bad(f"Malformed form body: Invalid multipart data ({exc})") from None
    # python-multipart's finalize() does not check that the body got to its end: a body cut short (a
    # client that died, a proxy's limit) would pass as complete, its last part truncated or dropped.
    if not form.ended:
        raise bad(f"Malformed form body: {MISSING_END}")
    return form.fields, form.file
