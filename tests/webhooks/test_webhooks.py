"""Webhook delivery against a real local receiver that fails first and verifies every signature with the
reference code: the cloudinary SDK's verify_notification_signature, the standardwebhooks package."""

from __future__ import annotations

import doctest
import ipaddress
import json
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import cloudinary
import cloudinary.utils
import pytest
import standardwebhooks

import cutout.webhooks.signing
from cutout.fetch import FetchPolicy, IPAddress
from cutout.webhooks import (
    CloudinarySigner,
    Delivery,
    RetryPolicy,
    StandardSigner,
    attempt,
    deliver,
    webhook_policy,
)
from tests.fetch.servers import LocalServer, RecordingHandler, Route, send, serving, stall

pytestmark = pytest.mark.anyio
SECRET = "webhook-test-secret"
PAYLOAD = {"notification_type": "info", "public_id": "docs/dog", "info_status": "complete", "note": "é"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def receiver() -> Iterator[LocalServer]:
    with serving("127.0.0.2") as server:
        yield server


@pytest.fixture
def policy() -> FetchPolicy:
    return FetchPolicy(allow=("*",), allow_networks=("127.0.0.2/32",), connect_timeout=1.0, timeout=2.0)


@pytest.fixture
def cloudinary_secret() -> Iterator[None]:
    config = cloudinary.config()
    saved = (config.api_secret, getattr(config, "signature_algorithm", None))
    cloudinary.config(api_secret=SECRET)
    yield
    cloudinary.config(api_secret=saved[0], signature_algorithm=saved[1] or "sha1")


class Sleeps:
    """Stands in for anyio.sleep: records each back-off instead of waiting it."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


Check = Callable[[bytes, RecordingHandler], bool]


def flaky(failures: list[tuple[int, dict[str, str]]], verify: Check) -> Route:
    """A receiver route: answers each of ``failures`` in turn (status 0: drop the connection), then 200;
    every request's signature is checked first (401 when wrong, which would end the delivery)."""
    lock = threading.Lock()

    def route(handler: RecordingHandler) -> None:
        if not verify(handler.body, handler):
            send(handler, 401, b"bad signature", "text/plain")
            return
        with lock:
            status, headers = failures.pop(0) if failures else (200, {})
        if status == 0:
            handler.close_connection = True  # no answer at all: a network error for the sender
            return
        send(handler, status, b"{}", "application/json", headers)

    return route


def anything(body: bytes, handler: RecordingHandler) -> bool:
    return True


def cloudinary_valid(body: bytes, handler: RecordingHandler) -> bool:
    return bool(
        cloudinary.utils.verify_notification_signature(
            body.decode(), handler.headers["X-Cld-Timestamp"], handler.headers["X-Cld-Signature"]
        )
    )


async def test_cloudinary_signed_delivery_retried_until_accepted(
    receiver: LocalServer, policy: FetchPolicy, cloudinary_secret: None
) -> None:
    receiver.routes["/hook"] = flaky([(503, {}), (0, {}), (500, {})], cloudinary_valid)
    delivery = Delivery.new(receiver.url("/hook"), PAYLOAD, "cloudinary")
    sleeps = Sleeps()
    saved: list[str] = []

    async def persist(d: Delivery) -> None:
        saved.append(d.to_json())

    done = await deliver(
        delivery, CloudinarySigner(SECRET), policy, RetryPolicy(tries=5), on_attempt=persist, sleep=sleeps,
        rng=random.Random(1),
    )  # fmt: skip
    assert done.state == "delivered"
    assert [a.status for a in done.attempts] == [503, None, 500, 200]
    assert [a.code for a in done.attempts] == ["receiver_error", "connection_failed", "receiver_error", None]
    assert done.attempts[0].error == "The receiver answered 503"
    assert done.attempts[-1].error is None and all(a.seconds >= 0 for a in done.attempts)
    # Exponential with jitter: each wait in [half, all] of 1, 2, 4 seconds.
    assert len(sleeps.delays) == 3
    for n, wait in enumerate(sleeps.delays):
        assert 2**n / 2 <= wait <= 2**n + 0.5
    assert len(saved) == 4 and Delivery.from_json(saved[-1]) == done
    bodies = {seen.body for seen in receiver.seen}
    assert bodies == {done.body.encode()} and json.loads(done.body) == PAYLOAD
    assert receiver.seen[0].headers["content-type"] == "application/json"


async def test_cloudinary_sha256_signature(
    receiver: LocalServer, policy: FetchPolicy, cloudinary_secret: None
) -> None:
    def valid(body: bytes, handler: RecordingHandler) -> bool:
        return bool(
            cloudinary.utils.verify_notification_signature(
                body.decode(), handler.headers["X-Cld-Timestamp"], handler.headers["X-Cld-Signature"],
                algorithm="sha256",
            )
        )  # fmt: skip

    receiver.routes["/hook"] = flaky([], valid)
    delivery = Delivery.new(receiver.url("/hook"), PAYLOAD, "cloudinary")
    done = await deliver(delivery, CloudinarySigner(SECRET, "sha256"), policy)
    assert done.state == "delivered" and len(done.attempts) == 1


async def test_standard_webhooks_delivery_honours_retry_after(
    receiver: LocalServer, policy: FetchPolicy
) -> None:
    secret = StandardSigner.new_secret()
    reference = standardwebhooks.Webhook(secret)

    def valid(body: bytes, handler: RecordingHandler) -> bool:
        try:
            reference.verify(body, dict(handler.headers.items()))
        except standardwebhooks.WebhookVerificationError:
            return False
        return True

    receiver.routes["/hook"] = flaky([(429, {"Retry-After": "7"}), (503, {"Retry-After": "0"})], valid)
    delivery = Delivery.new(receiver.url("/hook"), PAYLOAD, "standard")
    sleeps = Sleeps()
    done = await deliver(delivery, StandardSigner(secret), policy, sleep=sleeps)
    assert done.state == "delivered" and [a.status for a in done.attempts] == [429, 503, 200]
    assert sleeps.delays[0] == pytest.approx(7, abs=0.5)  # the first back-off would have been at most 1 s
    ids = {seen.headers["webhook-id"] for seen in receiver.seen}
    assert ids == {delivery.id} and delivery.id.startswith("msg_")
    assert receiver.seen[0].headers["webhook-signature"].startswith("v1,")


def test_a_standard_signature_matches_the_reference_signer() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"type":"example"}'
    ours = StandardSigner(secret).headers("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    theirs = standardwebhooks.Webhook(secret).sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek", datetime.fromtimestamp(1614265330, UTC), body
    )
    assert ours["webhook-signature"] == theirs
    with pytest.raises(ValueError, match="whsec_ followed by base64"):
        StandardSigner("whsec_not base64!")


async def test_gives_up_after_the_bounded_number_of_tries(receiver: LocalServer, policy: FetchPolicy) -> None:
    receiver.routes["/hook"] = flaky([(500, {})] * 10, anything)
    sleeps = Sleeps()
    done = await deliver(
        Delivery.new(receiver.url("/hook"), PAYLOAD, "cloudinary"), CloudinarySigner(SECRET), policy,
        RetryPolicy(tries=4, max_delay=3.0), sleep=sleeps,
    )  # fmt: skip
    assert done.state == "failed" and len(done.attempts) == 4 and len(receiver.seen) == 4
    assert len(sleeps.delays) == 3 and max(sleeps.delays) <= 3.0
    assert done.attempts[-1].code == "receiver_error" and done.attempts[-1].status == 500


@pytest.mark.parametrize("status", [500, 507, 522, 524])
async def test_every_server_error_is_retried(receiver: LocalServer, policy: FetchPolicy, status: int) -> None:
    """A 5xx is the receiver's (or the CDN in front of it: 522, 524) passing trouble, not a refusal;
    507 and the 52x used to end the delivery at the first try."""
    receiver.routes["/hook"] = flaky([(status, {})], anything)
    done = await deliver(
        Delivery.new(receiver.url("/hook"), PAYLOAD, "cloudinary"), CloudinarySigner(SECRET), policy,
        RetryPolicy(tries=3), sleep=Sleeps(),
    )  # fmt: skip
    assert done.state == "delivered" and [a.status for a in done.attempts] == [status, 200]


@pytest.mark.parametrize("status", [400, 404, 410, 302])
async def test_a_permanent_refusal_is_not_retried(
    receiver: LocalServer, policy: FetchPolicy, status: int
) -> None:
    headers = {"Location": "http://169.254.169.254/"} if status == 302 else {}
    receiver.routes["/hook"] = flaky([(status, headers)], anything)
    done = await deliver(
        Delivery.new(receiver.url("/hook"), PAYLOAD, "cloudinary"), CloudinarySigner(SECRET), policy
    )
    assert done.state == "failed" and [a.status for a in done.attempts] == [status]
    assert receiver.paths() == ["/hook"]  # the redirect was not followed


async def test_private_addresses_are_refused_like_fetches(policy: FetchPolicy) -> None:
    async def internal(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("169.254.169.254")]

    for url, resolver in [("http://127.0.0.1:9/hook", None), ("http://metadata.test/hook", internal)]:
        delivery = Delivery.new(url, PAYLOAD, "cloudinary")
        kwargs = {"resolver": resolver} if resolver else {}
        done = await deliver(delivery, CloudinarySigner(SECRET), policy, **kwargs)  # type: ignore[arg-type]
        assert done.state == "failed" and len(done.attempts) == 1
        assert done.attempts[0].code == "forbidden_url" and "is not allowed" in str(done.attempts[0].error)
    refused = await deliver(
        Delivery.new("http://hooks.test/x", PAYLOAD, "cloudinary"), CloudinarySigner(SECRET),
        policy.with_allow(("*.example.org",), "CUTOUT_WEBHOOK_ALLOW"),
    )  # fmt: skip
    assert (
        refused.attempts[0].error == "Fetching from hooks.test is not allowed (not in CUTOUT_WEBHOOK_ALLOW)"
    )


async def test_a_receiver_that_never_answers_times_out_and_is_retried(
    receiver: LocalServer, policy: FetchPolicy
) -> None:
    receiver.routes["/hook"] = stall(3)
    sleeps = Sleeps()
    done = await deliver(
        Delivery.new(receiver.url("/hook"), PAYLOAD, "cloudinary"), CloudinarySigner(SECRET), policy,
        RetryPolicy(tries=2, timeout=0.5), sleep=sleeps,
    )  # fmt: skip
    assert done.state == "failed" and len(done.attempts) == 2 and len(sleeps.delays) == 1
    assert all(a.code == "timeout" and a.error == "No answer within 0.5 s" for a in done.attempts)
    assert all(a.seconds < 1.5 for a in done.attempts)


async def test_a_persisted_delivery_resumes_where_it_stopped(
    receiver: LocalServer, policy: FetchPolicy
) -> None:
    """What a restart looks like: one failed try stored as JSON, loaded by a new process, finished."""
    receiver.routes["/hook"] = flaky([(503, {})], anything)
    first = Delivery.new(receiver.url("/hook"), PAYLOAD, "standard")
    signer = StandardSigner(StandardSigner.new_secret())
    await attempt(first, signer, policy)
    assert first.state == "pending" and first.next_attempt_at > first.attempts[0].at
    stored = first.to_json()
    assert "whsec_" not in stored  # no secret in what is persisted

    resumed = Delivery.from_json(stored)
    assert resumed == first
    sleeps = Sleeps()
    done = await deliver(resumed, signer, policy, RetryPolicy(tries=3), sleep=sleeps)
    assert done.state == "delivered" and [a.status for a in done.attempts] == [503, 200]
    assert len(sleeps.delays) == 1  # it waited out the stored next_attempt_at
    with pytest.raises(ValueError, match="signed standard, not cloudinary"):
        await attempt(done, CloudinarySigner(SECRET), policy)
    exhausted = replace(Delivery.from_json(stored), attempts=Delivery.from_json(stored).attempts * 3)
    saved: list[str] = []

    async def persist(delivery: Delivery) -> None:
        saved.append(delivery.state)

    ended = await deliver(exhausted, signer, policy, RetryPolicy(tries=3), on_attempt=persist)
    # Given up without a try (fewer allowed now than were made) and saved as such: a caller that found it
    # pending again would resume it for ever.
    assert ended.state == "failed" and saved == ["failed"]


async def test_without_wait_it_stops_at_a_try_not_yet_due(receiver: LocalServer, policy: FetchPolicy) -> None:
    """``wait=False`` (an asset's driver with other work in hand): the tries due now, then back, pending;
    called again, it waits out the back-off and goes on from the same attempts."""
    receiver.routes["/hook"] = flaky([(503, {})], anything)
    delivery = Delivery.new(receiver.url("/hook"), PAYLOAD, "cloudinary")
    sleeps = Sleeps()
    await deliver(delivery, CloudinarySigner(SECRET), policy, sleep=sleeps, wait=False)
    assert delivery.state == "pending" and len(delivery.attempts) == 1 and sleeps.delays == []
    await deliver(delivery, CloudinarySigner(SECRET), policy, sleep=sleeps, wait=False)
    assert len(delivery.attempts) == 1  # not due yet: nothing sent
    done = await deliver(delivery, CloudinarySigner(SECRET), policy, sleep=sleeps)
    assert done.state == "delivered" and [a.status for a in done.attempts] == [503, 200]
    assert len(sleeps.delays) == 1


def test_backoff_bounds_and_the_settings() -> None:
    retry = RetryPolicy(base=1.0, factor=2.0, max_delay=10.0)
    rng = random.Random(0)
    for tries_made in range(1, 10):
        ceiling = min(10.0, 2.0 ** (tries_made - 1))
        assert ceiling / 2 <= retry.delay(tries_made, None, rng) <= ceiling
    assert retry.delay(1, 4.0, rng) == 4.0 and retry.delay(1, 99.0, rng) == 10.0
    assert RetryPolicy.from_environ({"CUTOUT_WEBHOOK_TRIES": "3"}).tries == 3
    policy = webhook_policy({"CUTOUT_FETCH_ALLOW": "", "CUTOUT_FETCH_ALLOW_PRIVATE": "1"})
    assert policy.allow == ("*",) and policy.allow_private and policy.allow_name == "CUTOUT_WEBHOOK_ALLOW"


def test_the_docstring_example_holds() -> None:
    assert doctest.testmod(cutout.webhooks.signing).failed == 0


def test_a_receivers_unreadable_retry_after_is_ignored() -> None:
    """A receiver's header is not ours to trust: '²' passed str.isdigit() and float() raised."""
    from cutout.webhooks.delivery import _retry_after

    assert [_retry_after(v, 0.0) for v in ("5", " 7 ", "²", "soon", "")] == [5.0, 7.0, None, None, None]
