"""Concurrency and rate limits for blocking code: ``with concurrency("database"):`` and
``rate_limit("api")``; see :mod:`wfkit.concurrency` for limits and what they hold."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager

import wfkit._realtime as _realtime
from wfkit.concurrency._core import Slots, Wait, acquiring, holder_name
from wfkit.context import current_clock

__all__ = ["concurrency", "rate_limit"]


def drive_waits(steps: Generator[Wait, None, Slots], first: Wait | None = None) -> Slots:
    """Carry out the waits of :func:`~wfkit.concurrency._core.acquiring` by blocking
    (``first``: a wait it already yielded); the slots it took."""
    try:
        wait = next(steps) if first is None else first
        while True:
            if wait.real:
                _realtime.sleep(wait.seconds)
            else:
                current_clock().sleep(wait.seconds)
            wait = steps.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


@contextmanager
def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> Iterator[None]:
    """Hold ``occupy`` slots on each named limit for the block, waiting until they are free.

    Works in tasks, in flows and outside any run; the limits live in the run store, so they
    hold across threads and across processes sharing it. A name with no limit runs without
    it, with a warning (an error with ``strict=True``).

    Args:
        names: a limit's name or a list of names (all are taken together, or none).
        occupy: slots to take on each (a whole number >= 1, at most the limit).
        timeout_seconds: give up waiting after this long (None: wait as long as it takes).
        strict: raise instead of running without a limit that does not exist.

    Raises:
        ConfigurationError: bad names, occupy or timeout.
        ConcurrencySlotAcquisitionError: a missing limit with ``strict``, or ``occupy`` above
            a limit.
        AcquireConcurrencySlotTimeoutError: ``timeout_seconds`` passed (a TimeoutError).
    """
    slots = drive_waits(acquiring(names, occupy, timeout_seconds, strict, holder_name(), True))
    try:
        yield
    finally:
        slots.release()


def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Take ``occupy`` slots on each named limit and keep them: they drain at the limit's
    ``slot_decay_per_second``, so calls are spread out to that rate. Waits while there is no
    room.

    Args and Raises: as for :func:`concurrency`; also ConfigurationError when a limit has no
    ``slot_decay_per_second``.
    """
    drive_waits(acquiring(names, occupy, timeout_seconds, strict, holder_name(), False))
