"""Concurrency and rate limits for coroutines: ``async with concurrency("database"):`` and
``await rate_limit("api")``; see :mod:`wfkit.concurrency` for limits and what they hold."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager

import wfkit._realtime as _realtime
from wfkit.concurrency._core import Slots, Wait, acquiring, holder_name
from wfkit.context import current_clock

__all__ = ["concurrency", "rate_limit"]


async def drive_waits(steps: Generator[Wait, None, Slots], first: Wait | None = None) -> Slots:
    """Carry out the waits of :func:`~wfkit.concurrency._core.acquiring` by awaiting
    (``first``: a wait it already yielded); the slots it took."""
    try:
        wait = next(steps) if first is None else first
        while True:
            if wait.real:
                await _realtime.asyncio_sleep()(wait.seconds)
            else:
                await current_clock().asleep(wait.seconds)
            wait = steps.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def holder() -> str:
    """Who takes slots here: this thread's current asyncio task."""
    # (asyncio from sys.modules: only code under a running loop asks, and importing asyncio
    # here would load it, ~40 ms, with every ``import wfkit``)
    return holder_name(id(sys.modules["asyncio"].current_task()))


@asynccontextmanager
async def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> AsyncIterator[None]:
    """Hold ``occupy`` slots on each named limit for the block; as
    :func:`wfkit.concurrency.sync.concurrency`, waiting without blocking the event loop."""
    slots = await drive_waits(acquiring(names, occupy, timeout_seconds, strict, holder(), True))
    try:
        yield
    finally:
        slots.release()


async def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Take ``occupy`` draining slots on each named limit; as
    :func:`wfkit.concurrency.sync.rate_limit`, waiting without blocking the event loop."""
    await drive_waits(acquiring(names, occupy, timeout_seconds, strict, holder(), False))
