"""An uploaded ``file``: decoded from a data URI or base64 field, and checked before anything is stored
(``cutout.image_check``)."""

from __future__ import annotations

import base64
import binascii
import re

from cutout.image_check import Checked, check_image
from cutout.upload.errors import bad
from grammar.errors import OriginError

_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.ASCII)


def decode_file_field(text: str) -> bytes | None:
    """The bytes of a ``file`` given as a data URI or bare base64; None when it is neither (a URL)."""
    text = text.strip()
    data_uri = text.startswith("data:")
    if data_uri:
        match = _DATA_URI.match(text)
        if match is None:
            raise bad("file: a data URI must be data:<type>;base64,<data>")
        text = text[match.end() :]
    elif re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        return None
    compact = re.sub(r"\s+", "", text)
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        if data_uri:  # it said what it is: its data is what is wrong, not how the field was sent
            raise bad("file: the data URI's data is not base64 (A-Z, a-z, 0-9, '+' and '/', then '=' "
                      "padding)") from None  # fmt: skip
        # Often a file part sent without a filename, which multipart reads as a text field: say so.
        raise bad(
            "file must be a file part, a data URI, base64 or an http(s) URL; it is a text field that is "
            "none of those (a file part needs a filename in its Content-Disposition)"
        ) from None


def inspect(data: bytes, max_pixels: int) -> Checked:
    """``cutout.image_check.check_image`` as the Upload API's 400 (Cloudinary answers every bad file so)."""
    try:
        return check_image(data, max_pixels)
    except OriginError as exc:
        raise bad(exc.public) from None
