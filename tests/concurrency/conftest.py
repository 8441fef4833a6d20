"""Fixtures for the concurrency tests.

- ``h``: a fresh test harness (isolated memory store + FakeClock; ``time.sleep`` /
  ``asyncio.sleep`` inside runs are virtual).
- ``store``: a fresh ``memory://`` store under the real clock (for tests that need real
  blocking: events, timeouts in worker threads).
- ``in_thread``: run a callable in a daemon thread (with the caller's context) and join it
  with a timeout, so a deadlock fails the test instead of hanging the session.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wfkit.context import use_runtime
from wfkit.testing import harness


@pytest.fixture
def h() -> Iterator[Any]:
    with harness(start="2026-01-01T00:00:00Z") as hh:
        yield hh


@pytest.fixture
def store() -> Iterator[Any]:
    with use_runtime(store="memory://") as rt:
        yield rt.store


def run_in_thread(fn: Callable[[], Any], timeout: float = 60) -> Any:
    """``fn()`` in a daemon thread that sees the caller's context; fails the test if it has
    not finished after ``timeout`` seconds (a deadlock), re-raises what it raised."""
    context = contextvars.copy_context()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = context.run(fn)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, name="concurrency-test-caller", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{fn!r} did not finish within {timeout} s: deadlock?")
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture
def in_thread() -> Callable[..., Any]:
    return run_in_thread
