"""Time, as the engine sees it.

Every timestamp, retry delay, timeout and cache expiry in wfkit goes through a :class:`Clock`.
Production uses :class:`SystemClock`. Tests use :class:`FakeClock`, whose time stands still
and moves only when something sleeps on it or a test moves it, so retries with long delays run
instantly and deterministically.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock", "parse_start"]

# Captured at import: the test harness may patch ``time.sleep``; the real clock must not follow.
_real_sleep = _time.sleep
_real_monotonic = _time.monotonic


@runtime_checkable
class Clock(Protocol):
    """What the engine needs of time.

    ``virtual`` tells the engine whether deadlines must be enforced by the clock itself
    (a fake clock) or by real interruption (signals, threads, asyncio timeouts).
    """

    virtual: bool

    def now(self) -> datetime:
        """The current wall time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling coroutine for ``seconds``."""
        ...


class SystemClock:
    """The real clock: ``datetime.now(UTC)``, ``time.monotonic`` and real sleeps."""

    virtual = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return _real_monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            _real_sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await real_asyncio_sleep()(max(seconds, 0))

    def __repr__(self) -> str:
        return "SystemClock()"


def real_asyncio_sleep():  # type: ignore[no-untyped-def]
    """``asyncio.sleep`` as it was before any patching (patches keep it as ``__wrapped__``)."""
    import asyncio

    return getattr(asyncio.sleep, "__wrapped__", asyncio.sleep)


class _Deadline:
    """A virtual deadline installed by a timeout scope under a virtual clock."""

    __slots__ = ("at", "error", "fired")

    def __init__(self, at: float, error: BaseException) -> None:
        self.at = at
        self.error = error
        self.fired = False


# The innermost (earliest) virtual deadline of the current context, if any.
virtual_deadline: ContextVar[_Deadline | None] = ContextVar("wfkit_virtual_deadline", default=None)


def parse_start(start: datetime | str | None) -> datetime:
    """Turn ``start`` (an aware/naive datetime, an ISO-8601 string, or None) into aware UTC."""
    if start is None:
        return datetime.now(UTC)
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(
                f"start={start!r} is not an ISO-8601 timestamp; "
                "pass something like '2026-01-01T00:00:00Z' or a datetime."
            ) from exc
    if not isinstance(start, datetime):
        raise TypeError(f"start={start!r} must be a datetime, an ISO-8601 string or None.")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start.astimezone(UTC)


def _seconds(value: float | timedelta, what: str) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what}={value!r} must be a number of seconds or a timedelta.")
    return float(value)


class FakeClock:
    """A clock for tests: time stands still and moves only when told to.

    It moves through :meth:`advance`, :meth:`move_to` and sleeps. A sleep returns at once and
    moves time to the sleeper's wake-up time; sleepers that overlap (threads of a pool)
    move time to the latest wake-up, not to the sum of their sleeps.

    Attributes:
        start: the wall time at which the clock started.
        sleeps: every sleep requested on this clock, in seconds, in order (retry delays too).
        elapsed: virtual seconds since ``start``.
    """

    virtual = True

    def __init__(self, start: datetime | str | None = None) -> None:
        self.start = parse_start(start)
        self._offset = 0.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []
        self._listeners: list[Callable[[datetime], None]] = []

    def add_listener(self, listener: Callable[[datetime], None]) -> None:
        """Call ``listener(now)`` whenever time moves (the harness keeps freezegun in step)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[datetime], None]) -> None:
        self._listeners.remove(listener)

    def _moved(self) -> None:
        if self._listeners:
            now = self.now()
            for listener in list(self._listeners):
                listener(now)

    # reading ----------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return self._offset

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock started."""
        return self._offset

    # moving -----------------------------------------------------------------------------
    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward by ``seconds`` (a number or a timedelta)."""
        secs = _seconds(seconds, "seconds")
        if secs < 0:
            raise ValueError(
                f"FakeClock.advance(seconds={seconds!r}): time cannot go backwards. "
                "Pass a non-negative number of seconds, or use move_to() with a later time."
            )
        with self._lock:
            self._offset += secs
        self._moved()

    def move_to(self, when: datetime | str) -> None:
        """Move time forward to the wall time ``when``."""
        target = parse_start(when)
        delta = (target - self.now()).total_seconds()
        if delta < 0:
            raise ValueError(
                f"FakeClock.move_to(when={when!r}) is before the clock's current time "
                f"{self.now().isoformat()}; time cannot go backwards. Pass a later time."
            )
        self.advance(delta)

    def sleep(self, seconds: float) -> None:
        """Record the sleep and move time to the wake-up; never blocks.

        If a virtual deadline (a timeout) falls before the wake-up, time moves to the
        deadline and the deadline's timeout error is raised in the sleeper.
        """
        secs = _seconds(seconds, "seconds")
        if secs < 0:
            raise ValueError(f"sleep length must be non-negative; got seconds={seconds!r}")
        with self._lock:
            self.sleeps.append(secs)
            wake = self._offset + secs
            deadline = virtual_deadline.get()
            fired = deadline is not None and wake > deadline.at
            self._offset = max(self._offset, deadline.at if fired else wake)  # type: ignore[union-attr]
        self._moved()
        if fired:
            deadline.fired = True  # type: ignore[union-attr]
            raise deadline.error  # type: ignore[union-attr]

    async def asleep(self, seconds: float) -> None:
        """Like :meth:`sleep` (a negative delay counts as 0, as in ``asyncio.sleep``), then
        yield once to the event loop so others can run."""
        self.sleep(max(_seconds(seconds, "seconds"), 0.0))
        await real_asyncio_sleep()(0)

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now().isoformat()}, elapsed={self._offset:g}s)"
