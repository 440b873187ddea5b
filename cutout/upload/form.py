"""The Upload API's multipart body, read as it streams in with python-multipart's own parser: fields
as text, the one ``file`` part as the chunks the server received, joined once at the end; or, when the
caller is not known by the time ``file`` begins, in a temporary file (``spool``).

starlette's ``MultiPartParser`` copies every chunk of a file part into a ``SpooledTemporaryFile`` (a
``BytesIO`` growing by reallocation, or a disk file past its spool size, written through the thread
pool) that the upload then reads back whole: for a 2 MB photo that was about 1.5 ms of copying per
upload, more than the file's write into the originals store. Here a chunk the parser hands over whole
is kept as it is (a part of one is a ``memoryview``, no copy), so the bytes are copied once, by the join.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Callable

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from cutout.formbody import MISSING_END
from cutout.upload.errors import bad
from cutout.upload.spool import Spool

#: More fields than this are refused: room for the tag and context commands' documented 1000 ids (the SDKs
#: send each as its own ``public_ids[]`` field) and the call's other parameters, so that the 1001st id is
#: refused naming that limit. Their bytes are bounded by ``MAX_FIELDS_BYTES`` however many there are.
MAX_FIELDS = 1100
#: The fields other than ``file``, together (a long context, tag list or eager list is a few KB): more is
#: refused, so that the parameters of a caller not known yet never hold more memory than this.
MAX_FIELDS_BYTES = 1 << 20

#: Whether the fields read so far make the caller known (its signature holds); asked when ``file`` begins.
Known = Callable[[list[tuple[str, str]]], bool]


def text(raw: bytes, charset: str) -> str:
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:  # as starlette does: a field is never refused for its encoding
        return raw.decode("latin-1")


class FilePart:
    """The ``file`` part: its ``chunks`` in memory, or its ``spool`` when its caller was not known when it
    began. ``filename`` is None for a ``file`` sent as a text field (a data URI, base64, a URL)."""

    def __init__(
        self, name: str, filename: str | None, spool: Spool | None = None, charset: str = "utf-8"
    ) -> None:
        self.name, self.filename, self.charset = name, filename, charset
        self.chunks: list[bytes | memoryview] = []
        self.spool = spool

    def add(self, data: bytes | memoryview) -> None:
        if self.spool is not None:
            self.spool.add(data)
        else:
            self.chunks.append(data)

    def read(self) -> bytes:
        """Blocking when spooled: the part's bytes."""
        return self.spool.read() if self.spool is not None else b"".join(self.chunks)

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.data = bytearray()
        self.file: FilePart | None = None


class MultipartForm:
    """Callbacks for ``MultipartParser``: ``fields`` in order, and ``file``, the one file part (or the
    ``file`` field, when it is spooled)."""

    def __init__(self, charset: str, max_field_bytes: int, known: Known | None = None) -> None:
        self.charset = charset
        self.max_field_bytes = max_field_bytes  # a data URI or base64 ``file`` comes as a field
        self.known = known
        self.fields: list[tuple[str, str]] = []
        self.file: FilePart | None = None
        self.ended = False  # the closing boundary was read
        self._fields_bytes = 0
        self._file_field = False  # a ``file`` text field was read into ``fields``
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()

    def _text(self, raw: bytes) -> str:
        return text(raw, self.charset)

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
            if self.file is not None and self.file.filename is not None:
                raise bad("Malformed form body: more than one file part")
            # The caller is known by now (the SDKs send the file last): kept in memory. Else on disk.
            self._begin_file(self._text(options[b"filename"]), spooled=not self._known())
        elif len(self.fields) >= MAX_FIELDS:
            raise bad(f"Malformed form body: more than {MAX_FIELDS} fields")
        elif self._part.name == "file" and not self._known():
            self._begin_file(None, spooled=True)  # a data URI or base64 from a caller not known yet

    def _known(self) -> bool:
        return self.known is None or self.known(self.fields)

    def _begin_file(self, filename: str | None, *, spooled: bool) -> None:
        if self.file is not None or self._file_field:
            raise bad("file is given more than once")
        spool = Spool() if spooled else None
        self._part.file = self.file = FilePart(self._part.name, filename, spool, self.charset)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part.file is not None:
            # The parser's own chunk when the part spans it whole (the usual case for a file's middle):
            # kept without a copy; a piece of one as a view of it, copied only by the final join.
            # (The parser's look-behind pieces are bytes too; anything mutable is copied.)
            if not isinstance(data, bytes):
                self._part.file.add(bytes(data[start:end]))
            elif start == 0 and end == len(data):
                self._part.file.add(data)
            else:
                self._part.file.add(memoryview(data)[start:end])
            return
        if len(self._part.data) + end - start > self.max_field_bytes:
            raise bad(
                f"Malformed form body: the field {self._part.name[:40]} is over {self.max_field_bytes} bytes"
            )
        if self._part.name != "file":
            self._fields_bytes += end - start
            if self._fields_bytes > MAX_FIELDS_BYTES:
                raise bad(f"Malformed form body: the fields other than file are over {MAX_FIELDS_BYTES} "
                          "bytes together")  # fmt: skip
        self._part.data += data[start:end]

    def on_part_end(self) -> None:
        if self._part.file is None:
            if self._part.name == "file":
                if self.file is not None:
                    raise bad("file is given more than once")
                self._file_field = True
            self.fields.append((self._part.name, self._text(bytes(self._part.data))))

    def on_end(self) -> None:
        self.ended = True


async def read_multipart(
    content_type: str, stream: AsyncIterator[bytes], max_field_bytes: int, known: Known | None = None
) -> tuple[list[tuple[str, str]], FilePart | None]:
    """The fields of a ``multipart/form-data`` body and its ``file`` part (None when it has none; a spooled
    one is the caller's to read or close); a 400 naming what is wrong with a malformed one (a field over
    ``max_field_bytes`` included). ``known``: whether the fields so far make the caller known; when it says
    no as ``file`` begins, the file (or a ``file`` text field) is spooled to disk. Without it, every
    caller is known."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise bad("Malformed form body: Missing boundary in multipart.")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "latin-1"
    form = MultipartForm(charset, max_field_bytes, known)
    callbacks = {name: getattr(form, name) for name in dir(MultipartForm) if name.startswith("on_")}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in stream:
            parser.write(chunk)
            spool = form.file.spool if form.file is not None else None
            if spool is not None and spool.due:
                await anyio.to_thread.run_sync(spool.flush)
        parser.finalize()
        # python-multipart's finalize() does not check that the body got to its end: a body cut short (a
        # client that died, a proxy's limit) would pass as complete, its last part truncated or dropped.
        if not form.ended:
            raise bad(f"Malformed form body: {MISSING_END}")
    except FormParserError as exc:
        _close(form)
        raise bad(f"Malformed form body: Invalid multipart data ({exc})") from None
    except BaseException:
        _close(form)
        raise
    return form.fields, form.file


def _close(form: MultipartForm) -> None:
    if form.file is not None:
        form.file.close()
