"""Delivery URL signatures: the ``s--SIG--`` component.

``SIG`` is the URL-safe base64 digest of ``to_sign + api_secret``, cut to 8 characters (SHA-1 or
SHA-256) or 32 characters (SHA-256). ``to_sign`` is the transformation text and the source
(public id + extension) as written in the URL, joined by ``/``; the SDKs leave the version out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal

from grammar.ast import DeliveryPath

Algorithm = Literal["sha1", "sha256"]


def sign(to_sign: str, secret: str, *, algorithm: Algorithm = "sha1", length: Literal[8, 32] = 8) -> str:
    """``sign("sample.jpg", "b")`` -> ``"v2fTPYTu"``."""
    if length == 32 and algorithm != "sha256":
        raise ValueError("32-character signatures are SHA-256 only")
    digest = hashlib.new(algorithm, (to_sign + secret).encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:length]


def strings_to_sign(path: DeliveryPath) -> list[str]:
    """What the signature may cover: without the version (what SDKs sign) and with it; the transformation
    as written, and as its components were read (``%24w_300`` read as ``$w_300``: a proxy that encodes
    ``$`` in a URL an SDK signed with ``$w_300`` has not changed what the URL asks for)."""
    variants = []
    for transformation in dict.fromkeys([path.raw_transformation, path.transformation]):
        variants.append("/".join(filter(None, [transformation, path.raw_source])))
        if path.version is not None:
            parts = [transformation, f"v{path.version}", path.raw_source]
            variants.append("/".join(filter(None, parts)))
    return variants


def verify_delivery(path: DeliveryPath, secret: str) -> bool:
    """True when the path's ``s--SIG--`` matches; every candidate is compared in constant time."""
    if path.signature is None:
        return False
    return verify(path.signature, strings_to_sign(path), secret)


def verify_fetch(signature: str, transformation: str, raw_url: str, secret: str) -> bool:
    """A fetch URL's ``s--SIG--``: the SDKs sign its transformation and the remote URL as written in the
    delivery URL (escaped as they escape it), not the original cutout keeps the fetched image under."""
    return verify(signature, ["/".join(filter(None, [transformation, raw_url]))], secret)


def verify(signature: str, strings: list[str], secret: str) -> bool:
    """True when ``signature`` signs one of ``strings``; every candidate is compared in constant time."""
    if not secret:
        return False
    given = signature.encode("ascii")
    options: list[tuple[Algorithm, Literal[8, 32]]] = (
        [("sha256", 32)] if len(given) == 32 else [("sha1", 8), ("sha256", 8)]
    )
    matched = False
    for to_sign in strings:
        for algorithm, length in options:
            expected = sign(to_sign, secret, algorithm=algorithm, length=length).encode("ascii")
            matched |= hmac.compare_digest(expected, given)
    return matched
