"""How a delivered derivative is answered: status, headers and body, shared by the app and its fast path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cache import Entry
from cutout import metrics
from cutout.disposition import content_disposition
from cutout.headers import header_safe
from grammar.image_formats import MIME
from transform.hints import ACCEPT_CH

CORS = {"Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "X-Cld-Error,Content-Length,Content-Range,Accept-Ranges"}
IMMUTABLE = "public, max-age=31536000, immutable"
#: The longest a default image delivered for a missing original (d_) may be cached: as long as a 404
#: (app.py), so that a CDN shields the origin from a page of missing images, yet serves the original
#: within a minute of its upload instead of the placeholder for CUTOUT_MAX_AGE or, versioned, a year.
PLACEHOLDER_MAX_AGE = 60
#: What the headers of a 200 depend on: (etag, vary, versioned, warning, attachment, hinted).
Shape = tuple[str, str | None, bool, str | None, str | None, bool]
#: On every delivery answer, images and text/plain errors alike: a browser must not sniff an image, or an
#: error that quotes the URL, into HTML or script.
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class Delivered:
    """A derivative and how it was asked for: ``vary``, the Vary header's value, when f_auto chose by
    Accept or w_auto and dpr_auto by Client Hints; ``versioned`` when the URL has a version (then it is
    immutable). ``warning``: the X-Cld-Error of a success that is not quite what was asked (a default
    image for a missing original). ``attachment``: fl_attachment's file name without extension.
    ``hinted``: w_auto or dpr_auto read Client Hints (then Accept-CH asks browsers to send them)."""

    entry: Entry
    vary: str | None
    versioned: bool
    warning: str | None = None
    attachment: str | None = None
    hinted: bool = False

    @property
    def shape(self) -> Shape:
        """Everything the headers of a 200 depend on (FastHits encodes them once per shape). Not the
        entry alone: one image is answered with and without Content-Disposition or a warning."""
        return self.entry.etag, self.vary, self.versioned, self.warning, self.attachment, self.hinted


def etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = [part.strip().removeprefix("W/") for part in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def byte_range(header: str, size: int) -> tuple[int, int] | None | Literal[False]:
    """The one range ``Range: bytes=...`` asks of ``size`` bytes, as (first, last) inclusive; None when
    the header is to be ignored (not bytes, not one range, not well formed: RFC 9110 14.2 lets a server
    answer those with the whole 200); False when no byte of it exists (416)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # several ranges: the whole image is smaller than a multipart answer's bookkeeping
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":  # the last N bytes
        if last == "":
            return None
        suffix = int(last)
        return (max(size - suffix, 0), size - 1) if suffix and size else False
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        return False
    return start, size - 1 if last == "" else min(int(last), size - 1)


def answer(delivered: Delivered, max_age: int, if_none_match: str, range_header: str = "",
           if_range: str = "") -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """200 with the bytes, or 304 when the client already has them (strong ETag = hash of the bytes).
    ``range_header``: a GET's Range (a resumed download, a CDN fetching a piece): 206 with those bytes,
    416 when none of them exist; honoured only when ``if_range`` is empty or this strong ETag."""
    entry = delivered.entry
    etag = f'"{entry.etag}"'
    if delivered.warning is not None:
        cache_control = f"public, max-age={min(max_age, PLACEHOLDER_MAX_AGE)}"  # never immutable
    else:
        cache_control = IMMUTABLE if delivered.versioned else f"public, max-age={max_age}"
    headers = {**CORS, **NOSNIFF, "ETag": etag, "Cache-Control": cache_control}
    if delivered.vary:
        headers["Vary"] = delivered.vary
    if delivered.hinted:
        # Browsers send hints to an origin that asks for them; a page on another origin delegates them
        # (Permissions-Policy, README). No Critical-CH: it makes a browser retry a navigation, and an
        # image without hints is already answered well (the fallback).
        headers["Accept-CH"] = ACCEPT_CH
    if delivered.warning is not None:
        headers["X-Cld-Error"] = header_safe(delivered.warning)
    if etag_matches(if_none_match, etag):
        metrics.answered_304.inc()
        return 304, headers, b""
    fmt = str(entry.meta["format"])
    headers["Content-Type"] = MIME.get(fmt, "application/octet-stream")
    headers["Accept-Ranges"] = "bytes"
    if delivered.attachment is not None:
        headers["Content-Disposition"] = content_disposition(delivered.attachment, fmt)
    # If-Range names the version the client holds a part of: another version (or a date, which a
    # derivative has none of that could be compared strongly) gets the whole image.
    if range_header and (not if_range or if_range.strip() == etag):
        wanted = byte_range(range_header, len(entry.data))
        if wanted is False:
            metrics.answered_416.inc()
            headers.pop("Content-Type")
            return 416, {**headers, "Content-Range": f"bytes */{len(entry.data)}"}, b""
        if wanted:
            first, last = wanted
            metrics.answered_206.inc()
            headers["Content-Range"] = f"bytes {first}-{last}/{len(entry.data)}"
            return 206, headers, entry.data[first : last + 1]
    metrics.answered_200.inc()
    return 200, headers, entry.data
