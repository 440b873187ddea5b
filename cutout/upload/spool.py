"""Where a request's ``file`` waits while its caller is not known yet: a temporary file, not memory.

An Upload API call is signed in its own body, so its bytes arrive before the signature can be checked.
Held in memory, each unauthenticated request could hold ``CUTOUT_MAX_UPLOAD_BYTES`` (50 MB) of it, and a
few hundred at once would exhaust the server's memory without knowing any key. The SDKs send their
parameters first and the file last, so their calls are known before the file begins and keep it in memory
(the fast path); any other caller's file goes to disk in pieces of ``SPILL_BYTES``, written by a worker
thread, and is read back once the whole request's signature holds.
"""

from __future__ import annotations

import tempfile
from typing import IO

#: Bytes gathered in memory before they are written out (an unknown caller holds at most about this).
SPILL_BYTES = 1 << 20


class Spool:
    def __init__(self) -> None:
        self._pending: list[bytes | memoryview] = []
        self._pending_bytes = 0
        self._file: IO[bytes] | None = None

    def add(self, data: bytes | memoryview) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)

    @property
    def spilled(self) -> bool:
        """Some of it is on disk (more than ``SPILL_BYTES`` came)."""
        return self._file is not None

    @property
    def due(self) -> bool:
        """Enough is gathered to be written out (by ``flush``, in a worker thread)."""
        return self._pending_bytes >= SPILL_BYTES

    def flush(self) -> None:
        """Blocking: the gathered bytes to the temporary file (made at the first flush)."""
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="cutout-upload-")
        self._file.write(b"".join(self._pending))
        self._pending.clear()
        self._pending_bytes = 0

    def read(self) -> bytes:
        """Blocking: every byte added, in order; the temporary file is closed (and gone)."""
        if self._file is None:
            return b"".join(self._pending)
        self.flush()
        self._file.seek(0)
        try:
            return self._file.read()
        finally:
            self.close()

    def close(self) -> None:
        self._pending.clear()
        if self._file is not None:
            self._file.close()
            self._file = None
