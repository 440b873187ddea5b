"""Chunked uploads: the SDKs' ``upload_large`` (and Cloudinary's upload widget) send a big file as a
series of upload requests, each carrying one part of it. Cloudinary's rules, which the SDKs follow:
every part names its place with ``Content-Range: bytes START-END/TOTAL`` and the whole upload with the
same ``X-Unique-Upload-Id``; the first part comes first and the last part last (the ones between may
come in parallel); the last part's answer is the upload's. TOTAL may be ``-1``, "not known yet", on every
part but the last (Cloudinary's Node SDK streams so: it learns the size at the end).

Parts are kept as records in the originals store (``parts/<upload>/START-END-TOTAL``), not in memory or
a local folder: a server restarted between two parts, or a replica other than the one that took the
first part, still finds them. The last part joins them, in order, into the file the ordinary upload
path then checks and stores; the parts are dropped once that upload has an answer. An upload whose
last part never comes is dropped by ``sweep`` after ``PARTS_TTL`` (every process sweeps at start-up and
hourly).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
import anyio.to_thread

from cache.seams import OriginalsStore
from cutout.upload.errors import bad

log = logging.getLogger("cutout.upload")

#: An upload whose last part has not come this long after its first is abandoned, and its parts go.
PARTS_TTL = 24 * 3600.0
#: Every process looks for abandoned uploads this often (``sweep_forever``).
SWEEP_EVERY = 3600.0
_PREFIX = "parts"
_RANGE = re.compile(r"bytes\s+(\d{1,15})-(\d{1,15})/(\d{1,15}|-1)")
_PART = re.compile(r"(\d+)-(\d+)-(\d+|x)")
#: ``Range.total`` of a part that does not know it yet (``/-1``).
UNKNOWN = -1


@dataclass(frozen=True)
class Range:
    """One part's place in the file: bytes ``start`` to ``end`` inclusive, of ``total`` (``UNKNOWN``: a part
    before the last that does not say)."""

    start: int
    end: int
    total: int

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    @property
    def last(self) -> bool:
        return self.total != UNKNOWN and self.end + 1 == self.total

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.last

    def name(self) -> str:
        return f"{self.start}-{self.end}-{'x' if self.total == UNKNOWN else self.total}"

    @staticmethod
    def named(name: str) -> Range | None:
        """The range a kept part's ``name`` says (None: not a part's name)."""
        match = _PART.fullmatch(name)
        if not match:
            return None
        total = UNKNOWN if match[3] == "x" else int(match[3])
        return Range(int(match[1]), int(match[2]), total)

    def check_size(self, data: bytes) -> None:
        """A 400 when the file part sent is not as long as this range says."""
        if len(data) != self.size:
            where = "the file is" if self.whole else f"bytes {self.start}-{self.end} are"
            raise bad(f"Content-Range says {where} {self.size} bytes, but the file part has {len(data)}")


def content_range(headers: Mapping[str, str]) -> Range | None:
    """The request's ``Content-Range`` (None without one); a 400 naming what is wrong with a bad one."""
    text = headers.get("content-range")
    if text is None:
        return None
    match = _RANGE.fullmatch(text.strip())
    if not match:
        raise bad(f"Content-Range {text[:60]!r} is not 'bytes START-END/TOTAL' (TOTAL -1 while not known)")
    found = Range(int(match[1]), int(match[2]), int(match[3]))
    if found.total == UNKNOWN:
        if found.start > found.end:
            raise bad(f"Content-Range {text[:60]!r}: bytes {found.start}-{found.end} are no range")
        return found
    if not found.start <= found.end < found.total:
        raise bad(
            f"Content-Range {text[:60]!r}: bytes {found.start}-{found.end} are not inside {found.total}"
        )
    return found


class Parts:
    """The parts of chunked uploads, kept beside the originals until their upload is answered."""

    def __init__(self, originals: OriginalsStore, max_bytes: int) -> None:
        self.originals = originals
        self.max_bytes = max_bytes

    def check(self, upload_id: str | None, part: Range, data: bytes) -> str:
        """The folder that holds this upload's parts; a 400 when the part cannot belong to one."""
        if not upload_id or not upload_id.strip():
            raise bad("A chunked upload (Content-Range) needs the X-Unique-Upload-Id header")
        size = part.end + 1 if part.total == UNKNOWN else part.total  # at least, while it is not said
        if size > self.max_bytes:
            raise bad(
                f"File size too large: the chunked upload is {'over ' if part.total == UNKNOWN else ''}"
                f"{size} bytes, over CUTOUT_MAX_UPLOAD_BYTES ({self.max_bytes} bytes)"
            )
        part.check_size(data)
        # Hashed: the client's id may hold characters and lengths no record name can.
        return f"{_PREFIX}/{hashlib.sha256(upload_id.encode()).hexdigest()[:32]}"

    def put(self, folder: str, part: Range, data: bytes) -> None:
        """Keep one part (blocking). A part sent again replaces itself."""
        if self.originals.get_record(f"{folder}/started") is None:
            self.originals.put_record(f"{folder}/started", json.dumps({"at": time.time()}).encode())
        self.originals.put_record(f"{folder}/{part.name()}", data)

    def join(self, folder: str, last: Range, data: bytes) -> bytes:
        """The whole file: the parts kept so far and ``data``, the last part (blocking). A 400 naming
        the bytes that never came, or a part that disagrees about the total."""
        pieces: list[tuple[Range, bytes | None]] = [(last, data)]
        for name in self.originals.list_records(folder):
            kept = Range.named(name.rpartition("/")[2])
            if kept is not None:
                pieces.append((kept, None))
        whole = bytearray()
        # By start, the longest first: a part sent again with other bounds overlaps, and only the bytes
        # not already joined are taken from it.
        for part, held in sorted(pieces, key=lambda p: (p[0].start, -p[0].end)):
            # A part that said another total, or none but ends past it: no part can mend that, the parts
            # go and the upload starts again.
            if part.total not in (last.total, UNKNOWN) or part.end >= last.total:
                known = part.total != UNKNOWN
                said = f"says the file is {part.total} bytes" if known else f"ends at byte {part.end}"
                self.drop(folder)
                raise bad(
                    f"Chunked upload: a part {said}, the last part that it is {last.total} bytes "
                    "(its parts are dropped: send the upload again)"
                )
            if part.end < len(whole):
                continue
            if part.start > len(whole):
                break
            if held is None:
                held = self.originals.get_record(f"{folder}/{part.name()}")
                if held is None:  # dropped meanwhile (a concurrent last part answered): a gap
                    break
            whole += memoryview(held)[len(whole) - part.start :]
        if len(whole) < last.total:
            gap_end = min((p.start for p, _ in pieces if p.start > len(whole)), default=last.total) - 1
            raise bad(
                f"Chunked upload: bytes {len(whole)}-{gap_end} of {last.total} never arrived "
                "(the last part must be sent after all the others have been answered)"
            )
        return bytes(whole)

    def drop(self, folder: str) -> None:
        for name in list(self.originals.list_records(folder)):
            self.originals.delete_record(name)

    async def sweep_forever(self) -> None:
        """``sweep`` at start-up and every ``SWEEP_EVERY`` (one loop per process: the only caller), so that
        abandoned parts go whether or not other chunked uploads come; a storage failure is logged and
        tried again next time."""
        while True:
            try:
                await anyio.to_thread.run_sync(self.sweep)
            except Exception:
                log.exception("sweeping abandoned chunked uploads failed; trying again later")
            await anyio.sleep(SWEEP_EVERY)

    def sweep(self, now: float | None = None) -> int:
        """Drop uploads abandoned for ``PARTS_TTL`` as of ``now`` (default: the clock) (blocking). Returns
        how many were dropped."""
        current = time.time() if now is None else now
        folders = {name.rsplit("/", 1)[0] for name in self.originals.list_records(_PREFIX)}
        dropped = 0
        for folder in folders:
            started = self.originals.get_record(f"{folder}/started")
            try:
                at = float(json.loads(started)["at"]) if started else 0.0
            except (ValueError, KeyError, TypeError):
                at = 0.0
            if current - at > PARTS_TTL:
                self.drop(folder)
                dropped += 1
        if dropped:
            log.info("dropped %d chunked uploads abandoned for over %.0f s", dropped, PARTS_TTL)
        return dropped
