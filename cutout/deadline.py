"""The render time budget (``CUTOUT_RENDER_TIMEOUT``): one timer thread per process stops each render that
runs past it, through the render's ``transform.Watch``.

One thread for every render rather than a timer each: arming is a heap push (a thread started per render
costs more than the budget check of a small render). The thread wakes at most every ``GRAIN`` seconds,
however many renders end meanwhile: a finished render is only marked done, and dropped when its time
comes. A budget is wall-clock time (as imgproxy's ``IMGPROXY_TIMEOUT`` and weserv's ``process_timeout``):
libvips spreads a render over several threads, so no thread's CPU time measures it.

A model's inference is not counted (``paused``): its cost is the model's, for an input of the model's size,
not something a URL can multiply; onnxruntime cannot be stopped at the next tile as libvips can.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from transform import Watch

log = logging.getLogger("cutout.deadline")

#: The timer's resolution in seconds: a render is stopped at most this much after its budget ran out.
GRAIN = 0.05


@dataclass(eq=False)
class Budget:
    """One render's clock: ``left`` seconds when it last started counting (``since``; None: paused,
    ``pauses`` deep: a paused block may hold another)."""

    watch: Watch
    left: float
    since: float | None = field(default_factory=time.monotonic)
    pauses: int = 0
    done: bool = False

    def remaining(self, now: float) -> float:
        return self.left if self.since is None else self.left - (now - self.since)


class Deadlines:
    def __init__(self, seconds: float, error: Callable[[], BaseException]) -> None:
        """``seconds``: each render's budget (0: none); ``error``: what a render past it raises."""
        self.seconds = seconds
        self.error = error
        self._heap: list[tuple[float, int, Budget]] = []
        self._order = itertools.count()  # ties broken by arrival: Budgets do not compare
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def limit(self, watch: Watch) -> Iterator[Budget | None]:
        """Stop ``watch``'s render once it has run for the budget (time ``paused`` not counted); None and
        nothing armed when there is no budget."""
        if self.seconds <= 0:
            yield None
            return
        budget = Budget(watch, self.seconds)
        self._push(time.monotonic() + self.seconds, budget)
        try:
            yield budget
        finally:
            budget.done = True

    @contextmanager
    def paused(self, budget: Budget | None) -> Iterator[None]:
        """The budget's clock stopped meanwhile (a model's inference)."""
        if budget is None:
            yield
            return
        with self._wake:
            if budget.pauses == 0:
                budget.left, budget.since = budget.remaining(time.monotonic()), None
            budget.pauses += 1
        try:
            yield
        finally:
            with self._wake:
                budget.pauses -= 1
                if budget.pauses == 0:
                    budget.since = time.monotonic()

    def _push(self, due: float, budget: Budget) -> None:
        with self._wake:
            if self._closed:
                return
            earliest = not self._heap or due < self._heap[0][0]
            heapq.heappush(self._heap, (due, next(self._order), budget))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cutout-deadlines", daemon=True)
                self._thread.start()
            elif earliest:
                self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while not self._closed:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, budget = heapq.heappop(self._heap)
                    self._expire(budget, now)
                wait = self._heap[0][0] - now if self._heap else None
                self._wake.wait(None if wait is None else max(wait, GRAIN))

    def _expire(self, budget: Budget, now: float) -> None:
        """Called with the lock held, at or after the time ``budget`` was last due."""
        if budget.done:
            return
        left = budget.remaining(now)
        if budget.since is None or left > 0:  # paused, or paused for a while since it was armed
            heapq.heappush(self._heap, (now + max(left, GRAIN), next(self._order), budget))
            return
        budget.done = True
        try:
            budget.watch.stop(self.error())
        except Exception:  # this thread stops every render of the process: it must go on
            log.exception("stopping a render past its budget failed")

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._heap.clear()
            self._wake.notify()
