"""Who may call the API, and how often: keys from ``CUTOUT_API_KEYS`` (compared in constant time) and a
token bucket per key (``CUTOUT_API_RATE`` requests a second, bursts of ten seconds' worth)."""

from __future__ import annotations

import hmac
import math
import threading
import time

from starlette.requests import Request

from cutout.api.errors import ApiError
from cutout.api.tasks import owner_of
from cutout.memory import BoundedDict
from cutout.settings import Settings

#: A bucket holds this many seconds of the rate, so a client may burst after a quiet spell.
BURST_SECONDS = 10.0


def enabled(settings: Settings) -> bool:
    return bool(settings.api_keys) or settings.api_open


def presented(request: Request) -> str | None:
    return presented_in(request.headers.get("authorization", ""), request.headers.get("x-api-key"))


def presented_in(authorization: str, x_api_key: str | None) -> str | None:
    """The key of ``Authorization: Bearer <key>``, else of ``X-Api-Key``, else None; a 400 when both carry
    a key and they differ (``one_key``)."""
    return one_key([("Authorization: Bearer", bearer_token(authorization)), ("X-Api-Key", x_api_key)])


def bearer_token(authorization: str) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header's value (None for another scheme, or none)."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def one_key(sent: list[tuple[str, str | None]]) -> str | None:
    """The key of the first of ``sent`` (where, key) that carries one, else None. Two that carry
    different keys are a 400 naming both: the first used to win silently, so a request whose other key
    was the one meant ran, and was counted, as another caller's (or was refused as no caller at all)."""
    given = [(where, key) for where, key in sent if key]
    if len({key for _, key in given}) > 1:
        names = " and ".join(where for where, _ in given)
        raise ApiError(
            "invalid_parameter",
            f"{names} carry different keys: send one of them (or the same key in each)",
            parameter=given[1][0],
        )
    return given[0][1] if given else None


#: Where the native API reads its key (``presented``).
SENT_AS = "Authorization: Bearer <key> or X-Api-Key"


class Gate:
    def __init__(self, settings: Settings) -> None:
        self.keys = tuple(key.encode() for key in settings.api_keys)
        self.rate = settings.api_rate
        self._buckets: BoundedDict[str, tuple[float, float]] = BoundedDict(10_000)  # key -> (tokens, when)
        self._lock = threading.Lock()

    def check(self, request: Request) -> str:
        """The caller's key ('' when the API is open without keys), or 401 / 429."""
        return self.check_key(presented(request))

    def check_key(self, key: str | None, sent_as: str = SENT_AS) -> str:
        """``check`` for a key read elsewhere (the vendor adapters' own headers: X-RapidAPI-Key, ...);
        ``sent_as``: where that face reads it, for the refusal to name (a client of one vendor is
        told its own header, not the native API's)."""
        known = self.known(key)
        if known is None:
            raise ApiError(
                "auth_failed", f"Send a valid API key as {sent_as}", headers={"WWW-Authenticate": "Bearer"}
            )
        self.take(known)
        return known

    def known(self, key: str | None) -> str | None:
        """The caller's key as ``check_key`` returns it ('' when the API is open without keys), or None
        when ``check_key`` would refuse it (401). Takes nothing from the rate."""
        if not self.keys:
            return ""
        given = (key or "").encode()
        # Every key compared, each in constant time: neither the time nor the position leaks a match.
        matched = [hmac.compare_digest(given, known) for known in self.keys]
        return key if key is not None and any(matched) else None

    def take(self, key: str) -> None:
        """One request from ``key``'s bucket, or 429. A refusal takes nothing, so asking again at once
        is refused again."""
        if self.rate <= 0:
            return
        capacity = max(1.0, self.rate * BURST_SECONDS)
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(key) or (capacity, now)
            tokens = min(capacity, tokens + (now - when) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.rate)
                raise ApiError(
                    "rate_limited",
                    f"At most {self.rate:g} requests a second; retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            self._buckets[key] = (tokens - 1, now)


def admit(request: Request, key: str) -> None:
    """Mark ``request`` with its caller, the key the gate let in, as the tasks it makes are marked
    (``owner_of``): read back by ``caller``, for every face."""
    request.state.owner = owner_of(key)


def caller(request: Request) -> str:
    """The caller ``admit`` marked ('' for none: an API open without keys)."""
    return str(getattr(request.state, "owner", ""))
