"""Fixtures for the run store suite: a store of each kind, and snapshot factories."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wfkit.states import State
from wfkit.stores import FlowRunSnapshot, LogEntry, RunStore, TaskRunSnapshot
from wfkit.stores.memory import MemoryStore
from wfkit.stores.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A timestamp ``seconds`` after T0 (microsecond precision, timezone-aware UTC)."""
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
    return LogEntry(flow_run_id, task_run_id, level, "wfkit.test", message, timestamp)


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


def history(run: Any) -> list[tuple[str, str, datetime | None, str | None]]:
    """A read-back run's states as comparable tuples (type, name, timestamp, message)."""
    return [(s.type.value, s.name, s.timestamp, s.message) for s in run.states]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    """A fresh, empty run store of each kind (the SQLite one in ``tmp_path``)."""
    made: RunStore = (
        MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "runs.db")
    )
    yield made
    made.close()


@pytest.fixture
def reopened(store: RunStore) -> Iterator[Callable[[], RunStore]]:
    """``reopened()``: the same store as a later process sees it (SQLite: closed, then opened
    again from its file; memory: the store itself)."""
    opened: list[RunStore] = []

    def reopen() -> RunStore:
        if not isinstance(store, SqliteStore):
            return store
        store.close()
        opened.append(SqliteStore(store.path))
        return opened[-1]

    yield reopen
    for s in opened:
        s.close()
