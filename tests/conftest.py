"""Shared fixtures for wfkit's own tests.

- ``runtime``: an isolated engine runtime (a :class:`~wfkit.clock.FakeClock` starting at
  2026-01-01T00:00:00Z, a fresh ``memory://`` store and a seeded RNG); read runs back from
  ``runtime.store`` and virtual time from ``runtime.clock``.
- ``mode``: parametrizes a test over the sync and the async calling convention. Build flows
  and tasks from a plain (sync) body with ``mode.flow(body, **options)`` /
  ``mode.task(body, **options)`` and run them with ``mode.call(obj, *args)``; in async mode
  the body is wrapped in an ``async def`` and the call goes through ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import wfkit
from wfkit.clock import FakeClock
from wfkit.context import Runtime, use_runtime

pytest_plugins = ["pytester"]

START = "2026-01-01T00:00:00Z"
SEED = 1234


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """An isolated runtime: FakeClock at ``START``, a memory store, ``random.Random(SEED)``."""
    with use_runtime(clock=FakeClock(START), store="memory://", rng=random.Random(SEED)) as rt:
        yield rt


class Mode:
    """Builds flows and tasks in one calling convention ("sync" or "async") and calls them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.is_async = name == "async"

    def flavour(self, body: Callable[..., Any]) -> Callable[..., Any]:
        """``body`` itself (sync), or an ``async def`` with the same signature calling it
        (a classmethod/staticmethod stays one, around the async function)."""
        if not self.is_async:
            return body
        if isinstance(body, (classmethod, staticmethod)):
            return type(body)(self.flavour(body.__func__))

        @functools.wraps(body)
        async def async_body(*args: Any, **kwargs: Any) -> Any:
            return body(*args, **kwargs)

        return async_body

    def flow(self, body: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """``@wfkit.flow(**options)`` over ``body`` in this mode's flavour (also a decorator)."""
        if body is None:
            return lambda fn: self.flow(fn, **options)
        return wfkit.flow(self.flavour(body), **options)

    def task(self, body: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """``@wfkit.task(**options)`` over ``body`` in this mode's flavour (also a decorator)."""
        if body is None:
            return lambda fn: self.task(fn, **options)
        return wfkit.task(self.flavour(body), **options)

    def make(self, kind: str, body: Callable[..., Any], /, **options: Any) -> Any:
        """A flow (``kind="flow"``) or task (``kind="task"``) over ``body``."""
        return self.flow(body, **options) if kind == "flow" else self.task(body, **options)

    def call(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a flow or task; an async one is run to completion with ``asyncio.run``."""
        result = target(*args, **kwargs)
        if self.is_async:
            return asyncio.run(result)
        return result

    def __repr__(self) -> str:
        return f"Mode({self.name!r})"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Runs the test once with sync flows/tasks and once with async ones (see :class:`Mode`)."""
    return Mode(request.param)
