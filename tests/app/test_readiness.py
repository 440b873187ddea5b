"""/readyz answers from the last round of background checks (cutout/readiness.py): a backend that stalls
is reported within the bound, never waited for by the probe; checks that fail or stop completing are
"not ready"."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import cutout.readiness
from cutout.readiness import Check, Finding, Readiness
from tests.app.helpers import ClientFactory


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # lets a stalled check's thread end


def stalled(gate: threading.Event) -> Any:
    def ask() -> Finding:
        gate.wait(30)
        return Finding()

    return ask


def answered_within(readiness: Readiness, seconds: float) -> tuple[int, str]:
    """The answer as /readyz gives it, asserting that it took less than ``seconds``."""
    started = time.monotonic()
    state = readiness.last() or readiness.state()
    assert time.monotonic() - started < seconds
    return readiness.answer(state)


def test_a_stalled_shared_backend_is_degraded_and_the_probe_does_not_wait(gate: threading.Event) -> None:
    readiness = Readiness("background removal with model m", [
        Check("the storage of CUTOUT_SHARED_CACHE (bucket b)", stalled(gate)),
        Check("cache /c", lambda: Finding(), critical=True),
    ], every=0.05, bound=0.2)
    try:
        status, text = answered_within(readiness, 1.5)  # the first round: within the bound
        assert status == 200
        assert text.startswith("ready: background removal with model m (degraded: the storage of "
                               "CUTOUT_SHARED_CACHE (bucket b) did not answer within 0.2 s"), text
        for _ in range(20):  # later probes read the last round: at once, while the storage stalls 30 s
            status, text = answered_within(readiness, 1.0)
            assert status == 200 and "did not answer" in text
            time.sleep(0.02)
        gate.set()
        deadline = time.monotonic() + 5
        while "degraded" in (text := readiness.answer(readiness.last())[1]):
            assert time.monotonic() < deadline, text
            time.sleep(0.02)
        assert text == "ready: background removal with model m\n"
    finally:
        readiness.close()


def test_a_stalled_own_cache_is_not_ready(gate: threading.Event) -> None:
    readiness = Readiness("m", [Check("cache /c", stalled(gate), critical=True)], every=0.05, bound=0.2)
    try:
        status, text = answered_within(readiness, 1.5)
        assert status == 503 and text == "not ready: cache /c did not answer within 0.2 s (asked 0 s ago)\n"
    finally:
        readiness.close()


def test_a_check_that_fails_is_not_ready() -> None:
    def broken() -> Finding:
        raise RuntimeError("a bug in the check")

    readiness = Readiness("m", [Check("the queue's Redis", broken)], every=0.05, bound=0.5)
    try:
        status, text = answered_within(readiness, 1.5)
        assert status == 503 and text == "not ready: the check of the queue's Redis failed (RuntimeError)\n"
    finally:
        readiness.close()


def test_checks_that_stop_completing_are_overdue() -> None:
    readiness = Readiness("m", [Check("cache /c", lambda: Finding(), critical=True)], every=0.05, bound=0.2,
                          overdue=0.3)
    try:
        assert answered_within(readiness, 1.5)[0] == 200
        readiness.close()  # the background rounds end, as a stuck refresher's would
        time.sleep(0.4)
        status, text = readiness.answer(readiness.last())
        assert status == 503 and text.startswith("not ready: the readiness checks have not completed for ")
    finally:
        readiness.close()


def test_readyz_answers_at_once_while_the_cache_folder_hangs(make_client: ClientFactory,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             gate: threading.Event) -> None:
    """The cache folder is this process's own: not answering within the bound is not ready (503), said
    without the probe waiting for it; answering again, ready."""
    monkeypatch.setattr(cutout.readiness, "CHECK_SECONDS", 0.2)
    monkeypatch.setattr(cutout.readiness, "REFRESH_SECONDS", 0.05)
    client = make_client()
    assert client.get("/readyz").status_code == 200
    coordinator = client.app.state.service.coordinator
    real = coordinator.writable
    monkeypatch.setattr(coordinator, "writable", lambda: gate.wait(30) and real())
    deadline = time.monotonic() + 5
    while (ready := client.get("/readyz")).status_code == 200:
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.05)
    assert ready.status_code == 503 and "did not answer within 0.2 s" in ready.text
    assert ready.text.startswith(f"not ready: cache {client.app.state.service.settings.cache_dir} ")
    started = time.monotonic()
    assert client.get("/readyz").status_code == 503
    assert time.monotonic() - started < 1  # the cache hangs for 30 s: the probe does not wait for it
    gate.set()
    while (ready := client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline + 5, ready.text
        time.sleep(0.05)
