"""The render time budget's timer (cutout.deadline): renders past it are stopped, paused time is not
counted, finished renders are left alone."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cutout.deadline import Deadlines
from transform import Watch


class Late(Exception):
    pass


@pytest.fixture
def deadlines() -> Iterator[Deadlines]:
    timer = Deadlines(0.3, lambda: Late("past 0.3 s"))
    yield timer
    timer.close()


def test_a_render_past_its_budget_is_stopped_with_the_error(deadlines: Deadlines) -> None:
    watch = Watch()
    with deadlines.limit(watch) as budget:
        assert budget is not None
        time.sleep(0.8)
        assert isinstance(watch.error, Late)


def test_paused_time_is_not_counted(deadlines: Deadlines) -> None:
    watch = Watch()
    with deadlines.limit(watch) as budget:
        with deadlines.paused(budget), deadlines.paused(budget):  # nested: the clock starts again once
            time.sleep(0.8)
        assert not watch.stopped
        time.sleep(0.8)
        assert watch.stopped


def test_a_finished_render_is_never_stopped(deadlines: Deadlines) -> None:
    watches = [Watch() for _ in range(20)]
    for watch in watches:
        with deadlines.limit(watch):
            pass
    time.sleep(0.8)
    assert not any(watch.stopped for watch in watches)


def test_no_budget_arms_nothing() -> None:
    timer = Deadlines(0.0, lambda: Late("never"))
    watch = Watch()
    with timer.limit(watch) as budget, timer.paused(budget):
        assert budget is None
    assert timer._thread is None and not watch.stopped
