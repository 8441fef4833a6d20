"""Fixtures for the engine-level caching tests.

- ``h``: a fresh test harness (isolated memory store + FakeClock starting at ``START``).
- ``calls``: a thread-safe recorder of task-body executions (see :class:`Calls`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from wfkit.testing import Harness, harness

START = "2026-01-01T00:00:00Z"


class Calls:
    """Records the arguments of every body execution; safe to use from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.args: list[Any] = []

    def __call__(self, *args: Any) -> int:
        """Record one execution; returns how many executions there have been so far."""
        with self._lock:
            self.args.append(args[0] if len(args) == 1 else args)
            return len(self.args)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.args)


@pytest.fixture
def h() -> Iterator[Harness]:
    with harness(start=START) as hh:
        yield hh


@pytest.fixture(params=["memory", "sqlite"])
def store_h(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Harness]:
    """A harness over each store kind (memory, and a SQLite file under ``tmp_path``)."""
    with harness(start=START, store=request.param, directory=tmp_path) as hh:
        yield hh


@pytest.fixture
def calls() -> Calls:
    return Calls()
