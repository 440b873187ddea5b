"""How a webhook proves where it came from: Cloudinary's notification signature, or Standard Webhooks.

Both sign the exact body bytes sent with a timestamp; a retry is signed again with its own timestamp
(receivers refuse old ones), under the same delivery id (receivers deduplicate by it).

>>> CloudinarySigner("my-secret").headers("msg_1", 1700000000, b'{"a":1}')["X-Cld-Signature"]
'0e26487dd2490e0a0740f9ee939321bd3763a3c0'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Literal, Protocol

Scheme = Literal["cloudinary", "standard"]


class Signer(Protocol):
    @property
    def scheme(self) -> Scheme: ...

    def headers(self, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]: ...


@dataclass(frozen=True)
class CloudinarySigner:
    """``X-Cld-Signature``: the hex SHA-1 (or SHA-256) of body + timestamp + API secret, as the
    ``cloudinary`` SDK's ``verify_notification_signature`` checks it (not an HMAC: Cloudinary's own
    scheme, kept so receivers written against Cloudinary work unchanged)."""

    api_secret: str = field(repr=False)
    algorithm: Literal["sha1", "sha256"] = "sha1"

    @property
    def scheme(self) -> Scheme:
        return "cloudinary"

    def headers(self, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        digest = hashlib.new(self.algorithm, body + str(timestamp).encode() + self.api_secret.encode())
        return {"X-Cld-Timestamp": str(timestamp), "X-Cld-Signature": digest.hexdigest()}


@dataclass(frozen=True)
class StandardSigner:
    """Standard Webhooks (standardwebhooks.com): ``webhook-signature: v1,<base64 HMAC-SHA256 of
    id.timestamp.body>`` keyed with the base64 bytes after ``whsec_``."""

    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        self.key  # noqa: B018 - a malformed secret fails here, at configuration, not at the first send

    @property
    def scheme(self) -> Scheme:
        return "standard"

    @property
    def key(self) -> bytes:
        text = self.secret.removeprefix("whsec_")
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a Standard Webhooks secret is whsec_ followed by base64") from None
        if not key:
            raise ValueError("a Standard Webhooks secret may not be empty")
        return key

    def headers(self, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        signed = f"{delivery_id}.{timestamp}.".encode() + body
        signature = base64.b64encode(hmac.new(self.key, signed, hashlib.sha256).digest()).decode()
        return {
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{signature}",
        }

    @staticmethod
    def new_secret() -> str:
        """A fresh secret to hand to a receiver: 24 random bytes (the spec asks for 24 to 64)."""
        return "whsec_" + base64.b64encode(os.urandom(24)).decode()
