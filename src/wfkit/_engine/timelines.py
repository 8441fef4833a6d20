"""Fake-clock timelines, as the engine uses them.

Under a :class:`~wfkit.clock.FakeClock`, work that runs concurrently (submitted task runs, a
top-level flow) runs on a timeline of its own, and whoever waits for it catches up with the
moment it finished. A real clock needs none of this. These functions are the only
place the engine asks which kind of clock it has, so the :class:`~wfkit.clock.Clock`
protocol stays what a clock is (``now``, ``monotonic``, ``sleep``, ``asleep``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from wfkit.clock import Clock, FakeClock

__all__ = ["branch", "catch_up", "deadline_passed", "is_virtual"]

_NO_BRANCH: AbstractContextManager[None] = nullcontext()


def is_virtual(clock: Clock) -> bool:
    """Whether ``clock`` is a fake clock (time moves only when something sleeps on it)."""
    return isinstance(clock, FakeClock)


def branch(clock: Clock, start: float | None = None) -> AbstractContextManager[None]:
    """A scope running on a timeline of its own from ``start`` (a ``monotonic()`` value;
    default now) under a fake clock; nothing under a real one."""
    if isinstance(clock, FakeClock):
        return clock.branch(start)
    return _NO_BRANCH


def catch_up(clock: Clock, moment: float) -> None:
    """Move the current fake timeline forward to ``moment`` (when the work this one waited
    for finished); nothing under a real clock."""
    if isinstance(clock, FakeClock):
        clock.catch_up(moment)


def deadline_passed(clock: Clock) -> bool:
    """Whether an enclosing run's virtual deadline has fired here (retrying is pointless:
    the enclosing run is over); always False under a real clock, where a passed deadline
    interrupts the body instead."""
    return isinstance(clock, FakeClock) and clock.deadline_passed()
