"""What ``/readyz`` answers, from the last known state: the checks of what this process depends on (its
cache, Redis, the S3 buckets, the workers) run in the background, each in its own thread with a short
bound, and a probe reads their last result without waiting for any of them.

Asking them in the probe made it as slow as the slowest backend: a stalled S3 held it two tries of
``CUTOUT_S3_TIMEOUT`` every few seconds, past a load balancer's probe timeout, which read that as "not
ready" for reasons the answer would have called "degraded". A check still running past its bound counts
as not answering; results older than ``OVERDUE_SECONDS`` (the checks themselves stuck) and a check that
failed unexpectedly are "not ready": this process cannot tell that it serves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

log = logging.getLogger("cutout.readiness")

#: Pause between two rounds of checks (the S3 check asks the storage at most every few seconds itself).
REFRESH_SECONDS = 1.0
#: How long one check may take before it counts as not answering (a stalled S3, a paused Redis).
CHECK_SECONDS = 2.0
#: Results older than this are no answer: the checks have not completed, so the probe says not ready.
OVERDUE_SECONDS = 10.0


@dataclass(frozen=True)
class Finding:
    """What one check found: ``problems`` stop this process serving (503); ``degraded`` is said beside a
    200; ``model`` adds to the description of the model (the id queue-mode workers announced)."""

    problems: tuple[str, ...] = ()
    degraded: tuple[str, ...] = ()
    model: str = ""


@dataclass(frozen=True)
class Check:
    """``ask`` answers what is wrong with ``what`` (blocking: it may wait on a backend). ``critical``:
    ``what`` not answering within the bound stops this process serving (its own cache folder), rather
    than degrading it (a shared backend, whose cached answers still serve)."""

    what: str
    ask: Callable[[], Finding]
    critical: bool = False


@dataclass(frozen=True)
class State:
    when: float  # time.monotonic() of the round that found it
    problems: tuple[str, ...]
    degraded: tuple[str, ...]
    model: str


class Readiness:
    def __init__(self, model: str, checks: Sequence[Check], *, problems: tuple[str, ...] = (),
                 every: float | None = None, bound: float | None = None,
                 overdue: float | None = None) -> None:
        """``model``: what the answer says of the model; ``problems``: known at start, never to change
        (no model where one should run). The times default to the module's constants."""
        self.model, self.checks, self.problems = model, tuple(checks), problems
        self.every = REFRESH_SECONDS if every is None else every
        self.bound = CHECK_SECONDS if bound is None else bound
        self.overdue = OVERDUE_SECONDS if overdue is None else overdue
        # One thread per check at most: a check still running past its bound is not asked again (a stalled
        # backend would otherwise collect a thread every round) and is reported as not answering.
        self._pool = ThreadPoolExecutor(max(1, len(self.checks)), thread_name_prefix="cutout-ready")
        self._asked: dict[int, tuple[Future[Finding], float]] = {}  # check's index -> its call, since
        self._state: State | None = None
        self._first = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._refresher: threading.Thread | None = None

    def state(self) -> State | None:
        """The last result, starting the background checks on the first call (only a process somebody
        probes asks its backends); that first call waits for their first round, within the bound."""
        with self._lock:
            if self._refresher is None and not self._stop.is_set():
                self._refresher = threading.Thread(target=self._refresh, name="cutout-readiness", daemon=True)
                self._refresher.start()
        self._first.wait(self.bound + 1.0)
        return self._state

    def last(self) -> State | None:
        """The last result without waiting (None before the first round: then ``state``, in a thread)."""
        return self._state if self._first.is_set() else None

    def answer(self, state: State | None) -> tuple[int, str]:
        """Status and body of /readyz for ``state`` (never blocks)."""
        if state is None:
            return 503, f"not ready: the readiness checks did not complete within {self.bound:g} s\n"
        age = time.monotonic() - state.when
        if age > self.overdue:
            return 503, f"not ready: the readiness checks have not completed for {age:.0f} s\n"
        if state.problems:
            return 503, "not ready: " + "; ".join(state.problems) + "\n"
        note = f" (degraded: {'; '.join(state.degraded)})" if state.degraded else ""
        return 200, f"ready: {state.model}{note}\n"

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the background round --------------------------------------------------------------------
    def _refresh(self) -> None:
        while not self._stop.is_set():
            try:
                self._state = self._round()
            except Exception:  # noqa: BLE001 - the next round tries again; a stale state says overdue
                log.exception("a round of readiness checks failed")
            self._first.set()
            self._stop.wait(self.every)

    def _round(self) -> State:
        started = time.monotonic()
        for index, check in enumerate(self.checks):
            if index not in self._asked:
                self._asked[index] = (self._pool.submit(check.ask), started)
        wait([future for future, _ in self._asked.values()], timeout=self.bound)
        problems = list(self.problems)
        degraded: list[str] = []
        model = self.model
        for index, check in enumerate(self.checks):
            future, since = self._asked[index]
            if not future.done():
                text = (f"{check.what} did not answer within {self.bound:g} s "
                        f"(asked {time.monotonic() - since:.0f} s ago)")
                (problems if check.critical else degraded).append(text)
                continue
            del self._asked[index]
            try:
                found = future.result()
            except Exception as exc:  # noqa: BLE001 - a check that failed says nothing: not ready
                log.exception("the readiness check of %s failed", check.what)
                problems.append(f"the check of {check.what} failed ({type(exc).__name__})")
                continue
            problems += found.problems
            degraded += found.degraded
            model += found.model
        return State(time.monotonic(), tuple(problems), tuple(degraded), model)
