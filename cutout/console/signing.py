"""The Upload API's request signature, as Cloudinary's SDKs compute it
(``cloudinary.utils.api_sign_request``): the parameters other than ``file``, ``cloud_name``,
``resource_type``, ``api_key`` and ``signature`` that have a value, sorted by name as ``name=value``
joined by ``&``, the secret appended, SHA-1 in hex."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

#: What the console's page may ask to have signed: the upload options it offers, nothing else.
SIGNABLE = frozenset({
    "public_id", "folder", "use_filename", "unique_filename", "overwrite", "tags", "background_removal",
})
UNSIGNED = frozenset({"file", "cloud_name", "resource_type", "api_key", "signature"})


def api_sign_request(params: Mapping[str, str], secret: str) -> str:
    text = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in UNSIGNED and v != "")
    return hashlib.sha1((text + secret).encode()).hexdigest()
