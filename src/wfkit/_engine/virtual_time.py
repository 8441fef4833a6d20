"""Virtual sleeps: ``time.sleep`` / ``asyncio.sleep`` patched to sleep on a fake clock.

The patches are process-wide attributes but act only where a harness is in force *and* a
run is executing (the run context is a contextvar, so other threads and code outside runs
keep real sleeps). They are installed while at least one user holds them and removed when
the last one releases them. Code that did ``from time import sleep`` before keeps the real
function. Used by the test harness, and by worker processes of a harness's process pool.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wfkit.clock import FakeClock
from wfkit.context import current_runtime, flow_run_context, task_run_context

__all__ = ["virtual_sleeps"]

_lock = threading.Lock()
_open_harnesses = 0
_real_time_sleep = time.sleep
_real_asyncio_sleep = asyncio.sleep


def _virtual_clock() -> FakeClock | None:
    if flow_run_context.get() is None and task_run_context.get() is None:
        return None
    rt = current_runtime()
    return rt.clock if rt.harness is not None and isinstance(rt.clock, FakeClock) else None


@functools.wraps(_real_time_sleep)
def _sleep(seconds: float) -> None:
    clock = _virtual_clock()
    if clock is None:
        _real_time_sleep(seconds)
    else:
        clock.sleep(seconds)


@functools.wraps(_real_asyncio_sleep)
async def _asleep(delay: float, result: Any = None) -> Any:
    clock = _virtual_clock()
    if clock is None or delay <= 0:
        return await _real_asyncio_sleep(delay, result)
    await clock.asleep(delay)
    return result


@contextmanager
def virtual_sleeps() -> Iterator[None]:
    """Install the sleep patches for the duration of the block (reference-counted)."""
    global _open_harnesses
    with _lock:
        if _open_harnesses == 0:
            time.sleep = _sleep  # type: ignore[assignment]
            asyncio.sleep = _asleep  # type: ignore[assignment]
        _open_harnesses += 1
    try:
        yield
    finally:
        with _lock:
            _open_harnesses -= 1
            if _open_harnesses == 0:
                time.sleep = _real_time_sleep
                asyncio.sleep = _real_asyncio_sleep
