"""Time, as the engine sees it.

Every timestamp, retry delay, timeout and cache expiry in wfkit goes through a :class:`Clock`.
Production uses :class:`SystemClock`. Tests use :class:`FakeClock`, whose time stands still
and moves only when something sleeps on it or a test moves it, so retries with long delays run
instantly and deterministically.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import wfkit._realtime as _realtime

__all__ = ["Clock", "FakeClock", "SystemClock", "parse_start"]


@runtime_checkable
class Clock(Protocol):
    """What the engine needs of time: the wall time, a monotonic time, and sleeping.

    A clock only tells and waits. What a fake clock adds for concurrent work (timelines,
    virtual deadlines) lives with :class:`FakeClock`.
    """

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

    # ``datetime.now(UTC)`` itself, not a method calling it: every state change reads it.
    now = staticmethod(functools.partial(datetime.now, UTC))

    def monotonic(self) -> float:
        return _realtime.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            _realtime.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await _realtime.asyncio_sleep()(max(seconds, 0))

    def __repr__(self) -> str:
        return "SystemClock()"


class _Deadline:
    """A virtual deadline installed by :meth:`FakeClock.deadline`."""

    __slots__ = ("at", "error", "fired")

    def __init__(self, at: float, error: BaseException) -> None:
        self.at = at
        self.error = error
        self.fired = False


# The timeline of the current context under a FakeClock: (clock, [local offset]); None on
# the main timeline.
_timeline: ContextVar[tuple[FakeClock, list[float]] | None] = ContextVar(
    "wfkit_fake_timeline", default=None
)

# The earliest virtual deadline in force in the current context, if any.
_deadline: ContextVar[_Deadline | None] = ContextVar("wfkit_virtual_deadline", default=None)


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
    moves time to the sleeper's wake-up time. Concurrent work (submitted tasks) runs on
    timelines of its own (:meth:`branch`) that start at the submitter's time, so sleepers that
    overlap move the clock to the latest wake-up, not to the sum of their sleeps; ``elapsed``
    and ``now()`` outside such work show the furthest point any timeline reached.

    Attributes:
        start: the wall time at which the clock started.
        sleeps: every sleep requested on this clock, in seconds, in order (retry delays too).
        elapsed: virtual seconds since ``start``.
    """

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
        return self.start + timedelta(seconds=self.monotonic())

    def monotonic(self) -> float:
        local = self._local()
        return local[0] if local is not None else self._offset

    def _local(self) -> list[float] | None:
        timeline = _timeline.get()
        return timeline[1] if timeline is not None and timeline[0] is self else None

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
        local = self._local()
        with self._lock:
            if local is None:
                self._offset += secs
            else:
                local[0] += secs
                self._offset = max(self._offset, local[0])
        self._moved()

    @contextmanager
    def branch(self, start: float | None = None) -> Iterator[None]:
        """Run the block on a timeline of its own, starting at ``start`` (default now)."""
        token = _timeline.set((self, [self.monotonic() if start is None else start]))
        try:
            yield
        finally:
            _timeline.reset(token)

    def catch_up(self, moment: float) -> None:
        """Move the current timeline (and the clock) forward to ``moment``."""
        local = self._local()
        with self._lock:
            if local is not None:
                local[0] = max(local[0], moment)
            moved = moment > self._offset
            self._offset = max(self._offset, moment)
        if moved:
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

    @contextmanager
    def deadline(self, seconds: float, error: BaseException) -> Iterator[None]:
        """A virtual deadline ``seconds`` from now for the block (a run's timeout).

        A sleep inside the block that would pass the deadline moves time to the deadline
        and raises ``error`` in the sleeper; a block that ends past the deadline (time moved
        some other way) raises ``error`` when it ends. Deadlines nest: the earliest in force
        wins.
        """
        mine = _Deadline(self.monotonic() + seconds, error)
        outer = _deadline.get()
        token = _deadline.set(outer if outer is not None and outer.at <= mine.at else mine)
        try:
            yield
        finally:
            _deadline.reset(token)
        if mine.fired or self.monotonic() > mine.at:
            raise error

    def deadline_passed(self) -> bool:
        """Whether a deadline in force here (an enclosing run's timeout) has fired."""
        deadline = _deadline.get()
        return deadline is not None and deadline.fired

    def sleep(self, seconds: float) -> None:
        """Record the sleep and move time to the wake-up; never blocks.

        If a virtual deadline (a timeout) falls before the wake-up, time moves to the
        deadline and the deadline's timeout error is raised in the sleeper.
        """
        secs = _seconds(seconds, "seconds")
        if secs < 0:
            raise ValueError(f"sleep length must be non-negative; got seconds={seconds!r}")
        local = self._local()
        with self._lock:
            self.sleeps.append(secs)
            base = local[0] if local is not None else self._offset
            wake = base + secs
            deadline = _deadline.get()
            fired = deadline is not None and wake > deadline.at
            if fired:
                wake = max(base, deadline.at)  # type: ignore[union-attr]
            if local is not None:
                local[0] = wake
            self._offset = max(self._offset, wake)
        self._moved()
        if fired:
            deadline.fired = True  # type: ignore[union-attr]
            raise deadline.error  # type: ignore[union-attr]

    async def asleep(self, seconds: float) -> None:
        """Like :meth:`sleep` (a negative delay counts as 0, as in ``asyncio.sleep``), then
        yield once to the event loop so others can run."""
        self.sleep(max(_seconds(seconds, "seconds"), 0.0))
        await _realtime.asyncio_sleep()(0)

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now().isoformat()}, elapsed={self._offset:g}s)"
