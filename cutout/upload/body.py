"""An uploaded file's bytes as the pieces the server received them in (python-multipart's views of
uvicorn's chunks), never joined for the common path: hashed, header-read and written piece by piece.

Joining a 2 MB photo was one more copy into memory freshly mapped for it (the page faults cost more
than the copy), on every upload. Only the rare paths join, once: a backup, a full decode of a file
whose structure does not show it is complete, object storage's single PUT.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import pyvips

from transform.files import Pieces


class Body:
    def __init__(self, pieces: Sequence[bytes | memoryview]) -> None:
        self.pieces: Pieces = [piece for piece in pieces if len(piece)]
        self._starts: list[int] = []
        size = 0
        for piece in self.pieces:
            self._starts.append(size)
            size += len(piece)
        self.size = size
        self._joined: bytes | None = self.pieces[0] if len(self.pieces) == 1 and isinstance(
            self.pieces[0], bytes
        ) else None

    @classmethod
    def of(cls, data: bytes | Body) -> Body:
        return data if isinstance(data, Body) else cls([data])

    def __len__(self) -> int:
        return self.size

    def joined(self) -> bytes:
        if self._joined is None:
            self._joined = b"".join(self.pieces)
        return self._joined

    def read(self, start: int, length: int) -> bytes | memoryview:
        """Up to ``length`` bytes from ``start``: within one piece, a view of it (no copy)."""
        if start >= self.size or length <= 0:
            return b""
        i = bisect.bisect_right(self._starts, start) - 1
        offset = start - self._starts[i]
        piece = self.pieces[i]
        if offset + length <= len(piece):
            return memoryview(piece)[offset : offset + length]
        out = bytearray(memoryview(piece)[offset:])
        for piece in self.pieces[i + 1 :]:
            if len(out) >= length:
                break
            out += memoryview(piece)[: length - len(out)]
        return bytes(out)

    def head(self, length: int) -> bytes:
        return bytes(self.read(0, length))

    def tail(self, length: int) -> bytes:
        start = max(0, self.size - length)
        return bytes(self.read(start, self.size - start))

    def source(self) -> pyvips.Source:
        """A libvips source over the bytes: the one piece's memory, else reads through the pieces."""
        if len(self.pieces) == 1:
            return pyvips.Source.new_from_memory(self.pieces[0])
        return _PiecesSource(self).source


class _PiecesSource:
    """``pyvips.SourceCustom`` reading through a ``Body``'s pieces, seekable so that loaders never buffer
    the whole file as they would from a pipe (a header read takes a few reads of the first piece)."""

    def __init__(self, body: Body) -> None:
        self.body, self.position = body, 0
        self.source = pyvips.SourceCustom()
        self.source.on_read(self._read)
        self.source.on_seek(self._seek)

    def _read(self, length: int) -> bytes | memoryview:
        data = self.body.read(self.position, length)
        self.position += len(data)
        return data

    def _seek(self, offset: int, whence: int) -> int:
        base = (0, self.position, self.body.size)[whence] if whence in (0, 1, 2) else None
        if base is None or base + offset < 0:
            return -1
        self.position = base + offset
        return self.position
