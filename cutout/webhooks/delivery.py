"""Deliver one webhook: a signed JSON POST through the fetcher's address checks, retried with back-off.

A ``Delivery`` is plain data that round-trips through JSON, so a caller stores it with the asset or task
before the first try and after each one (``on_attempt``), and after a restart calls ``deliver`` again on
what it loaded: the tries already made count, the id stays the same (receivers deduplicate by it).
The secret is never part of it; the caller passes the signer each time.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import anyio

from cutout.fetch import (
    DownloadTimeout,
    FetchError,
    FetchPolicy,
    ForbiddenUrl,
    GuardedClient,
    InvalidUrl,
    Resolver,
    check_url,
    resolve,
)
from cutout.fetch.policy import parse_url
from cutout.webhooks.signing import Scheme, Signer
from transform import variables
from transform.variables import BY_NAME

State = Literal["pending", "delivered", "failed"]
#: The 4xx answers worth another try: the receiver timed out reading, is not ready, or asked us to wait.
_RETRY_4XX = frozenset({408, 425, 429})


def retried(status: int) -> bool:
    """Whether an answer is worth another try: those 4xx, and every 5xx: a server's own error, such as
    the 520-524 a CDN in front of the receiver answers when it is down or slow, is what a retry is for,
    as other senders treat it."""
    return status in _RETRY_4XX or 500 <= status <= 599


#: Why an attempt failed: refused by policy (never retried), no answer in time, no connection or a
#: broken one, or an answer that was not 2xx (``status`` says which).
FailureCode = Literal["forbidden_url", "timeout", "connection_failed", "receiver_error"]


@dataclass
class Attempt:
    at: float  # Unix time the attempt started
    seconds: float  # how long it took
    status: int | None = None  # the receiver's HTTP status, None when none came
    code: FailureCode | None = None  # None when delivered
    error: str | None = None  # what went wrong, in words; None when delivered


@dataclass
class Delivery:
    id: str  # webhook-id; the same on every try
    url: str
    body: str  # the JSON text, exactly as signed and sent
    scheme: Scheme
    created_at: float
    state: State = "pending"
    next_attempt_at: float = 0.0  # Unix time; 0: at once
    attempts: list[Attempt] = field(default_factory=list)

    @classmethod
    def new(
        cls, url: str, payload: Mapping[str, Any], scheme: Scheme, *, now: float | None = None
    ) -> Delivery:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        return cls(f"msg_{uuid.uuid4().hex}", url, body, scheme, time.time() if now is None else now)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Delivery:
        data = json.loads(text)
        data["attempts"] = [Attempt(**a) for a in data["attempts"]]
        return cls(**data)


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``tries`` attempts; before try n+1, a delay drawn between half and all of
    ``base * factor**(n-1)`` (capped at ``max_delay``), or the receiver's Retry-After."""

    tries: int = BY_NAME["CUTOUT_WEBHOOK_TRIES"].default
    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 600.0
    timeout: float = 10.0  # one attempt, connection and answer included

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RetryPolicy:
        return cls(tries=variables.read("fetch", environ)["CUTOUT_WEBHOOK_TRIES"])

    def delay(self, tries_made: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:  # the receiver knows best, within our bound
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.max_delay, self.base * self.factor ** (tries_made - 1))
        # Jitter spreads the retries of many deliveries that failed together (a receiver restart).
        return rng.uniform(ceiling / 2, ceiling)


#: The longest webhook URL taken (characters). 2048 is what URLs are commonly held to (browsers' and
#: CDNs' practical limit, the sitemaps protocol's), far beyond any receiver's address; the URL is stored
#: with every delivery of it (up to 20 on an asset's record) and sent at every try, so a parameter of
#: megabytes would otherwise be kept and re-sent for as long as the deliveries last.
MAX_URL = 2048


def check_target(url: str, policy: FetchPolicy) -> None:
    """Refuse a webhook URL before anything is stored: too long, not a URL, or one the address rules
    refuse (an OriginError whose ``public`` says why; the caller names the parameter)."""
    if len(url) > MAX_URL:
        raise InvalidUrl(f"The URL is {len(url)} characters long; at most {MAX_URL} are taken")
    check_url(parse_url(url), policy)


def webhook_policy(environ: Mapping[str, str] | None = None) -> FetchPolicy:
    """The fetcher's address rules with the webhooks' own host list (``CUTOUT_WEBHOOK_ALLOW``)."""
    allow = variables.read("fetch", environ)["CUTOUT_WEBHOOK_ALLOW"]
    return FetchPolicy.from_environ(environ).with_allow(allow, "CUTOUT_WEBHOOK_ALLOW")


class _Outcome(Exception):
    def __init__(
        self, status: int | None, code: FailureCode, error: str, retry: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(error)
        self.status, self.code, self.error = status, code, error
        self.retry, self.retry_after = retry, retry_after


async def attempt(
    delivery: Delivery,
    signer: Signer,
    policy: FetchPolicy,
    retry: RetryPolicy = RetryPolicy(),
    *,
    resolver: Resolver = resolve,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> Attempt:
    """One try now; records it on ``delivery`` and sets its state and next_attempt_at."""
    if signer.scheme != delivery.scheme:
        raise ValueError(f"delivery {delivery.id} is signed {delivery.scheme}, not {signer.scheme}")
    started = clock()
    try:
        status = await _post(delivery, signer, policy, retry.timeout, resolver, started)
    except _Outcome as failed:
        outcome = Attempt(started, clock() - started, failed.status, failed.code, failed.error)
        delivery.attempts.append(outcome)
        if failed.retry and len(delivery.attempts) < retry.tries:
            wait = retry.delay(len(delivery.attempts), failed.retry_after, rng or random.Random())
            delivery.next_attempt_at = clock() + wait
        else:
            delivery.state = "failed"
        return outcome
    outcome = Attempt(started, clock() - started, status)
    delivery.attempts.append(outcome)
    delivery.state = "delivered"
    return outcome


async def deliver(
    delivery: Delivery,
    signer: Signer,
    policy: FetchPolicy,
    retry: RetryPolicy = RetryPolicy(),
    *,
    resolver: Resolver = resolve,
    on_attempt: Callable[[Delivery], Awaitable[None]] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    rng: random.Random | None = None,
    wait: bool = True,
) -> Delivery:
    """Try until delivered, refused for good, or out of tries; ``on_attempt`` (to persist it) after each.
    Without ``wait``, it returns still pending once the next try is not due yet: the caller has other
    work to do meanwhile, and calls again later."""
    rng = rng or random.Random()
    if delivery.state == "pending" and len(delivery.attempts) >= retry.tries:
        delivery.state = "failed"  # resumed with fewer tries allowed than were already made
        if on_attempt is not None:  # saved, or the caller finds it pending again and resumes it for ever
            await on_attempt(delivery)
    while delivery.state == "pending":
        left = delivery.next_attempt_at - clock()
        if left > 0:
            if not wait:
                break
            await sleep(left)
        await attempt(delivery, signer, policy, retry, resolver=resolver, clock=clock, rng=rng)
        if on_attempt is not None:
            await on_attempt(delivery)
    return delivery


async def _post(
    delivery: Delivery, signer: Signer, policy: FetchPolicy, timeout: float, resolver: Resolver, now: float
) -> int:
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "cutout-webhooks",
        **signer.headers(delivery.id, int(now), body),
    }
    try:
        with anyio.fail_after(timeout):
            async with GuardedClient(policy, resolver=resolver) as client:
                response = await client.open("POST", parse_url(delivery.url), headers=headers, content=body)
                await response.aclose()  # the answer's body says nothing we act on
    except TimeoutError:
        raise _Outcome(None, "timeout", f"No answer within {timeout:g} s", retry=True) from None
    except ForbiddenUrl as exc:  # the address or the URL will not become allowed by waiting
        raise _Outcome(None, "forbidden_url", exc.public, retry=False) from None
    except DownloadTimeout as exc:
        raise _Outcome(None, "timeout", exc.public, retry=True) from None
    except FetchError as exc:  # connection refused or broken, DNS failure: worth another try
        raise _Outcome(None, "connection_failed", exc.public, retry=True) from None
    status = response.status_code
    if 200 <= status < 300:
        return status
    error = f"The receiver answered {status}"
    if retried(status):
        retry_after = _retry_after(response.headers.get("retry-after"), now)
        raise _Outcome(status, "receiver_error", error, True, retry_after)
    # A redirect is not followed (its target was never checked or signed for); other 4xx mean "never".
    raise _Outcome(status, "receiver_error", error, retry=False)


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isascii() and value.strip().isdigit():  # isdigit() alone takes '²', float() does not
        return float(value.strip())
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        return None
