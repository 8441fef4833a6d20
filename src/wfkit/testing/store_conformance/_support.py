"""What the store conformance cases share: snapshot factories, timestamps, and the base class
that declares the ``store`` fixture and the capability flags."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wfkit.states import Completed, Pending, Running, State
from wfkit.stores import CacheRecord, FlowRunSnapshot, LogEntry, RunStore, TaskRunSnapshot

__all__ = [
    "T0",
    "StoreCases",
    "at",
    "finished",
    "flow_snapshot",
    "history",
    "log_entry",
    "record_flow",
    "record_task",
    "task_snapshot",
    "write_cache",
]

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
"""The moment the cases' timestamps count from (microseconds included, on purpose)."""


def at(seconds: float) -> datetime:
    """A timestamp ``seconds`` after :data:`T0` (timezone-aware UTC)."""
    return T0 + timedelta(seconds=seconds)


def flow_snapshot(state: State, run_id: str = "flow-1", **fields: Any) -> FlowRunSnapshot:
    """A flow run snapshot entering ``state``; ``fields`` override the defaults."""
    values: dict[str, Any] = {
        "id": run_id,
        "name": f"name-of-{run_id}",
        "flow_name": "etl",
        "flow_version": "1.0",
        "parameters": {},
        "tags": (),
        "parent_flow_run_id": None,
        "parent_task_run_id": None,
        "root_flow_run_id": run_id,
        "run_count": 1,
        "state": state,
        "host": "host-a",
        "pid": 4242,
    }
    values.update(fields)
    return FlowRunSnapshot(**values)


def task_snapshot(
    state: State, run_id: str = "task-1", flow_run_id: str | None = "flow-1", **fields: Any
) -> TaskRunSnapshot:
    """A task run snapshot entering ``state``; ``fields`` override the defaults."""
    values: dict[str, Any] = {
        "id": run_id,
        "name": f"name-of-{run_id}",
        "task_name": "extract",
        "flow_run_id": flow_run_id,
        "parameters": {},
        "tags": (),
        "cache_key": None,
        "upstream_ids": (),
        "run_count": 1,
        "state": state,
        "host": "host-a",
        "pid": 4242,
    }
    values.update(fields)
    return TaskRunSnapshot(**values)


def log_entry(
    message: str,
    flow_run_id: str | None = "flow-1",
    task_run_id: str | None = None,
    *,
    level: int = logging.INFO,
    timestamp: datetime = T0,
) -> LogEntry:
    """A log line recorded in a flow run (and a task run, if given)."""
    return LogEntry(
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        level=level,
        logger="wfkit.test",
        message=message,
        timestamp=timestamp,
    )


def record_flow(
    store: RunStore, states: Sequence[State], run_id: str = "flow-1", **fields: Any
) -> None:
    """Record one flow run going through ``states`` (one snapshot per state)."""
    for state in states:
        store.record_flow_run(flow_snapshot(state, run_id, **fields))


def record_task(
    store: RunStore, states: Sequence[State], run_id: str = "task-1", **fields: Any
) -> None:
    """Record one task run going through ``states`` (one snapshot per state)."""
    for state in states:
        store.record_task_run(task_snapshot(state, run_id, **fields))


def finished(start: float = 0.0, final: Callable[..., State] = Completed) -> list[State]:
    """Pending, Running and ``final``, one second apart from ``at(start)``."""
    return [
        Pending(timestamp=at(start)),
        Running(timestamp=at(start + 1)),
        final(timestamp=at(start + 2)),
    ]


def history(run: Any) -> list[tuple[str, str, datetime | None, str | None]]:
    """A read-back run's states as comparable tuples (type, name, timestamp, message)."""
    return [(s.type.value, s.name, s.timestamp, s.message) for s in run.states]


def write_cache(store: RunStore, key: str, value: bytes = b"v", **fields: Any) -> CacheRecord:
    """Write a cache record with defaults for the fields not given; the record written."""
    values: dict[str, Any] = {
        "serializer": "pickle",
        "expires_at": None,
        "task_name": "extract",
        "created_at": T0,
    }
    values.update(fields)
    store.write_cache(key, value, **values)
    return CacheRecord(key=key, value=value, **values)


class StoreCases:
    """The fixtures and flags every group of cases reads; see ``StoreConformance``."""

    keeps_parameter_objects: bool = False
    keeps_results: bool = False

    @pytest.fixture
    def store(self) -> RunStore:
        """The store under test: a subclass must override this fixture."""
        raise NotImplementedError(
            f"{type(self).__qualname__} must define a `store` fixture returning a new, empty "
            "store, for example:\n\n    @pytest.fixture\n    def store(self, tmp_path):\n"
            "        return MyStore(tmp_path / 'runs')"
        )

    def reopen(self, store: RunStore) -> RunStore:
        """``store`` as a later process would open it: close it and open it again from
        where it keeps its data. The default returns ``store`` itself (a store that lives
        in this process only); the suite closes what this returns."""
        return store

    @pytest.fixture
    def reopened(self, store: RunStore) -> Iterator[Callable[[], RunStore]]:
        """``reopened()``: :meth:`reopen` of the test's store, closed after the test."""
        opened: list[RunStore] = []

        def reopen() -> RunStore:
            opened.append(self.reopen(store))
            return opened[-1]

        yield reopen
        for s in opened:
            if s is not store:
                s.close()
