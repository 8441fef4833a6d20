"""Frozen wall time for the test harness (freezegun), kept in step with the fake clock.

The sleep patches live in :mod:`wfkit._engine.virtual_time`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wfkit._engine.virtual_time import virtual_sleeps
from wfkit.clock import FakeClock

__all__ = ["frozen_wall_time", "virtual_sleeps"]

# Code whose timing must stay real under a frozen wall clock: pytest's own test durations.
_REAL_TIME_MODULES = ["_pytest.timing"]


@contextmanager
def frozen_wall_time(clock: FakeClock) -> Iterator[None]:
    """Freeze ``datetime.now()``, ``time.time()``, ``date.today()``... at the clock's time,
    moving with it."""
    from freezegun import freeze_time

    # Nothing needs importing before time is frozen: the run records are plain dataclasses,
    # and wfkit first imports pydantic (which keeps the datetime class it sees then) with the
    # real classes, through wfkit._pydantic.
    freezer = freeze_time(clock.now(), tick=False, real_asyncio=True, ignore=_REAL_TIME_MODULES)
    factory = freezer.start()

    def follow(now: Any) -> None:
        factory.move_to(now)

    clock.add_listener(follow)
    try:
        yield
    finally:
        clock.remove_listener(follow)
        freezer.stop()
