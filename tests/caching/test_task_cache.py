"""The engine's cache side of one task run (``TaskCache``), built the way the engine builds it
for every caching call: settings from the task's options, the run's logger only when a warning
needs it."""

from __future__ import annotations

import inspect
import logging
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from wfkit import task
from wfkit._engine.caching import TaskCache
from wfkit.cache_policies import FLOW_PARAMETERS, INPUTS
from wfkit.clock import FakeClock
from wfkit.context import Runtime
from wfkit.stores.memory import MemoryStore

from .conftest import START


class _Context:
    """A task run context that counts how often its run logger is made."""

    kind = "task"

    def __init__(self, store: Any) -> None:
        self.run = SimpleNamespace(id="task-run-1", flow_run_id="flow-run-1", name="double-1")
        self.runtime = Runtime(clock=FakeClock(START), store=store)
        self.loggers_made = 0
        self._logger: Any = None

    @property
    def run_logger(self) -> Any:
        return self._logger

    @run_logger.setter
    def run_logger(self, logger: Any) -> None:  # wfkit.logging.logger_for caches it here
        self.loggers_made += 1
        self._logger = logger


class _UnreadableStore(MemoryStore):
    def read_cache(self, key: str) -> Any:
        raise OSError("disk on fire")


def _double(x: int) -> int:
    return 2 * x


def _cache_for(store: Any, flow_ctx: Any = None, **options: Any) -> tuple[TaskCache, _Context]:
    work = task(cache_policy=INPUTS, **options)(_double)
    ctx = _Context(store)
    bound = inspect.signature(_double).bind(3)
    policy = work.options.effective_cache_policy()
    return TaskCache.for_run(work, policy, ctx, flow_ctx, bound), ctx


def test_a_miss_a_write_and_a_hit_never_make_the_runs_logger() -> None:
    cache, ctx = _cache_for(MemoryStore())
    key = cache.key()

    assert key is not None
    assert cache.lock_for(key) is None  # READ_COMMITTED: no lock
    assert cache.lookup(key) == (False, None)
    cache.write(key, 6)
    assert cache.lookup(key) == (True, 6)
    cache.release()
    assert ctx.loggers_made == 0


def test_a_warning_makes_the_runs_logger_once(caplog: pytest.LogCaptureFixture) -> None:
    cache, ctx = _cache_for(_UnreadableStore())
    key = cache.key()
    assert key is not None

    with caplog.at_level(logging.WARNING, logger="wfkit.task_runs"):
        assert cache.lookup(key) == (False, None)
        assert cache.lookup(key) == (False, None)

    assert ctx.loggers_made == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"Reading the cache record {key!r} failed (disk on fire); treating it as a miss."
    ] * 2


def test_the_settings_come_from_the_tasks_options() -> None:
    flow_ctx = SimpleNamespace(run=SimpleNamespace(parameters={"day": "mon"}))
    cache, _ = _cache_for(
        MemoryStore(),
        flow_ctx,
        cache_expiration=timedelta(minutes=5),
        refresh_cache=True,
        result_serializer="json",
    )

    assert (cache.expiration, cache.refresh, cache.serializer) == (
        timedelta(minutes=5),
        True,
        "json",
    )
    assert cache.flow_parameters == {"day": "mon"}
    assert cache.flow_parameters is not flow_ctx.run.parameters  # a policy cannot change the run's
    with_parameters = TaskCache.for_run(
        cache.task, INPUTS + FLOW_PARAMETERS, cache._context, flow_ctx, cache.bound
    )
    other_day = SimpleNamespace(run=SimpleNamespace(parameters={"day": "tue"}))
    other = TaskCache.for_run(
        cache.task, INPUTS + FLOW_PARAMETERS, cache._context, other_day, cache.bound
    )
    assert with_parameters.key() != other.key()
    defaults, _ = _cache_for(MemoryStore())
    assert (defaults.expiration, defaults.refresh, defaults.serializer) == (None, False, "pickle")
    assert defaults.flow_parameters is None
