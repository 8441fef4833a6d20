"""A worker's held run starts (``wfkit.task_runners._live``): published once a run has been
running DELAY seconds, dropped when it ends first, without waking the publishing thread
for every quick run."""

from __future__ import annotations

import threading
from typing import Any

from wfkit.task_runners._live import DELAY, LiveStarts


class _CountingCondition(threading.Condition):
    """A condition that counts its notifications (each wakes the publishing thread)."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


def _pause(seconds: float) -> None:
    threading.Event().wait(seconds)  # (real time, and the GIL free for the publisher)


def test_a_start_still_running_after_the_delay_is_published_and_an_ended_one_is_not() -> None:
    starts = LiveStarts()
    published: list[str] = []
    arrived = threading.Event()

    def send(event: str) -> None:
        published.append(event)
        arrived.set()

    ended = starts.hold(send, "ended")
    starts.cancel(ended)
    starts.hold(send, "first")
    assert arrived.wait(10 * DELAY + 5)
    # After a quiet spell the thread waits with no time limit: a new start wakes it.
    _pause(3 * DELAY)
    arrived.clear()
    starts.hold(send, "after idle")
    assert arrived.wait(10 * DELAY + 5)
    assert published == ["first", "after idle"]


def test_a_chain_of_quick_runs_does_not_wake_the_publisher_for_each_run() -> None:
    starts = LiveStarts()
    wakeup = starts._wakeup = _CountingCondition(starts._lock)
    published: list[str] = []
    for i in range(40):  # each run ends before its start is due
        start = starts.hold(published.append, f"run {i}")
        sum(range(2_000))  # (a quick run: it keeps the GIL until it ends)
        starts.cancel(start)
        _pause(0.002)  # (the worker between runs: the publisher may run meanwhile)
    assert published == []
    # (one wake-up at most, for a thread that had gone idle; before the fix, nearly every
    # run woke it: it dropped the previous cancelled start at once and waited unbounded)
    assert wakeup.notified <= 2, wakeup.notified
