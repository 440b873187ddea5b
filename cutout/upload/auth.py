"""Who may call the Upload and Admin APIs: Cloudinary's signed parameters (Upload API) and HTTP Basic
``api_key:api_secret`` (Admin API, and the Upload API too, as Cloudinary allows).

The signature is the SDKs' ``api_sign_request``: every parameter but ``file``, ``cloud_name``,
``resource_type``, ``api_key`` and ``signature``, empty ones dropped, as ``k=v`` sorted and joined by
``&``, the secret appended, hex SHA-1 (40 characters) or SHA-256 (64). Signature version 2 (the SDKs'
default) writes ``&`` inside a value as ``%26``. Version 1 does not, which makes its string ambiguous: a
signature for ``context=a&folder=f`` is also one for a lone ``context`` of ``a&folder=f``, so whoever holds
a signed form could move one parameter into another's value (drop the folder it was signed for). It is
refused; it differs from version 2 only where a value holds ``&``, and the refusal says so. The timestamp
(Unix seconds, whole or not: ``reported_time``) may be at most an hour old (Cloudinary's rule), and every
comparison is in constant time.

>>> sign({"public_id": "sample_image", "timestamp": "1315060510"}, "abcd")
'b4ad47fb4e25c7bf5f92a20089f9db59bc302313'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

from starlette.requests import Request

from cutout.public_url import foreign_page
from cutout.upload.errors import UploadError, bad, unauthorized

EXCLUDED = frozenset({"file", "cloud_name", "resource_type", "api_key", "signature"})
#: How old a signed request's timestamp may be (and how far ahead of our clock), seconds.
MAX_AGE = 3600
_ALGORITHMS = {40: "sha1", 64: "sha256"}


def string_to_sign(params: Mapping[str, str], version: int = 2) -> str:
    parts = []
    for key, value in params.items():
        if key in EXCLUDED or value == "":
            continue
        part = f"{key}={value}"
        parts.append(part.replace("&", "%26") if version >= 2 else part)
    return "&".join(sorted(parts))


def sign(params: Mapping[str, str], secret: str, algorithm: str = "sha1", version: int = 2) -> str:
    return hashlib.new(algorithm, (string_to_sign(params, version) + secret).encode()).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def sends_basic(request: Request) -> bool:
    return request.headers.get("authorization", "").partition(" ")[0].lower() == "basic"


def basic(request: Request, api_key: str, api_secret: str) -> bool:
    """True for a valid ``Authorization: Basic``; False when there is none; 401 when it is wrong."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        key, colon, secret = base64.b64decode(token.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise unauthorized(
            "Invalid Authorization header: expected Basic base64(api_key:api_secret)"
        ) from None
    # Both compared, whatever the first gives: the time says nothing about which was wrong.
    key_ok, secret_ok = _same(key, api_key), _same(secret, api_secret)
    if not (colon and key_ok and secret_ok):
        raise unauthorized("Invalid api_key or api_secret")
    return True


def check_basic_upload(request: Request, api_key: str, api_secret: str, signed: bool) -> bool:
    """True when the Upload API call is the operator's through HTTP Basic; False when its signature
    decides (none sent, or a page of another site sent the request); 401 for wrong credentials; 403 for
    Basic ones from another site's page with no signature: a browser attaches the credentials it holds
    for this server (the console's sign-in) to a form any site posts here, so they prove nothing there.
    (403, not 401: Chromium forgets credentials a 401 answers, which would sign the operator out.) A
    signed call from a page (a signed form, the upload widget) is judged by its signature alone."""
    if not sends_basic(request):
        return False
    foreign = foreign_page(request)
    if foreign is None:
        return basic(request, api_key, api_secret)
    if signed:
        return False
    raise UploadError(
        403,
        f"HTTP Basic credentials are not accepted from another site's page ({foreign}): a browser "
        "sends them with any site's request; sign the call (api_key, timestamp, signature) instead",
    )


def check_admin(request: Request, api_key: str, api_secret: str) -> None:
    """The Admin API takes HTTP Basic only, never from another site's page (whose browser would lend it
    the operator's credentials): 403 for those, 401 for missing or wrong credentials."""
    foreign = foreign_page(request)
    if foreign is not None:
        raise UploadError(403, f"The Admin API does not take requests from another site's page ({foreign})")
    if not basic(request, api_key, api_secret):
        raise unauthorized("Missing credentials: the Admin API takes HTTP Basic api_key:api_secret")


#: Unix seconds as a signed call may write them: whole (what the SDKs send), with a fraction, or in the
#: exponent form some clients' number formatting makes (``1.759930024E9``). Bounded, so that no value is
#: thousands of digits long; what it says is checked for freshness, and the signature covers it as sent.
_TIMESTAMP = re.compile(r"[0-9]{1,18}(\.[0-9]{1,9})?([eE]\+?[0-9]{1,2})?", re.ASCII)


def reported_time(stamp: str) -> float:
    """The moment a signed call's ``timestamp`` reports; a 400 naming it when it is missing or is not Unix
    seconds. Cloudinary reads the value as a number, not as whole digits: a client whose formatting sent
    ``timestamp=1.759930024E9`` was answered "Invalid Signature ... String to sign - '...&timestamp=
    1.759930024E9'" (cloudinary_npm#59), so the time passed and the signature was checked over the text as
    sent. A fractional time is therefore accepted here too; its signature is over the string given."""
    if stamp == "":
        raise bad("Missing required parameter - timestamp")
    if _TIMESTAMP.fullmatch(stamp) is None:
        raise bad(f"Invalid parameter - timestamp: {stamp[:40]!r} is not Unix time in seconds "
                  "(e.g. 1700000000, or 1700000000.5)")  # fmt: skip
    return float(stamp)


def check_signed(
    params: Mapping[str, str],
    api_key: str,
    api_secret: str,
    now: float | None = None,
    unsigned: frozenset[str] = frozenset(),
) -> None:
    """401 unless ``params`` carry our api_key, a fresh timestamp and a valid signature of the rest
    (less ``unsigned``: parameters the SDKs send but leave out of the signature for that call); 400 for a
    missing or malformed timestamp (``reported_time``: a parameter's value, not the caller's identity)."""
    if unsigned:
        params = {k: v for k, v in params.items() if k not in unsigned}
    given_key = params.get("api_key", "")
    if not given_key:
        raise unauthorized("Must supply api_key")
    if not _same(given_key, api_key):
        raise unauthorized(f"Unknown API key {given_key[:64]}")
    signature = params.get("signature", "")
    if not signature:
        raise unauthorized("Missing required parameter - signature")
    stamp = params.get("timestamp", "")
    moment = reported_time(stamp)
    now = time.time() if now is None else now
    if now - moment > MAX_AGE:
        raise unauthorized(f"Stale request - reported time {stamp} is more than 1 hour ago")
    if moment - now > MAX_AGE:
        raise unauthorized(f"Stale request - reported time {stamp} is more than 1 hour ahead")
    algorithm = _ALGORITHMS.get(len(signature))
    if algorithm is not None and _same(signature.lower(), sign(params, api_secret, algorithm)):
        return
    hint = ""
    if algorithm is not None and _same(signature.lower(), sign(params, api_secret, algorithm, 1)):
        hint = (" It is a signature_version 1 signature, which leaves '&' inside values unescaped (an "
                "ambiguous string): sign with signature_version 2, as current SDKs do.")  # fmt: skip
    raise unauthorized(
        f"Invalid Signature {signature[:64]}. String to sign - '{string_to_sign(params)}'.{hint}"
    )
