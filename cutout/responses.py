"""How a delivered derivative is answered: status, headers and body, shared by the app and its fast path."""

from __future__ import annotations

from dataclasses import dataclass

from cache import Entry
from cutout import metrics
from grammar.image_formats import MIME

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "X-Cld-Error,Content-Length"}
IMMUTABLE = "public, max-age=31536000, immutable"
#: On every delivery answer, images and text/plain errors alike: a browser must not sniff an image, or an
#: error that quotes the URL, into HTML or script.
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class Delivered:
    """A derivative and how it was asked for: ``vary`` when f_auto chose by Accept, ``versioned`` when
    the URL has a version (then it is immutable)."""

    entry: Entry
    vary: bool
    versioned: bool


def etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = [part.strip().removeprefix("W/") for part in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def answer(delivered: Delivered, max_age: int, if_none_match: str) -> tuple[int, dict[str, str], bytes]:
    """200 with the bytes, or 304 when the client already has them (strong ETag = hash of the bytes)."""
    entry = delivered.entry
    etag = f'"{entry.etag}"'
    headers = {
        **CORS,
        **NOSNIFF,
        "ETag": etag,
        "Cache-Control": IMMUTABLE if delivered.versioned else f"public, max-age={max_age}",
    }
    if delivered.vary:
        headers["Vary"] = "Accept"
    if etag_matches(if_none_match, etag):
        metrics.answered_304.inc()
        return 304, headers, b""
    metrics.answered_200.inc()
    headers["Content-Type"] = MIME.get(str(entry.meta["format"]), "application/octet-stream")
    return 200, headers, entry.data
