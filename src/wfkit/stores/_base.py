"""The run store protocol and the snapshots the engine hands to it.

The engine never talks to a store directly: it emits state changes and log entries through
the plugin hooks (:mod:`wfkit.hookspecs`), and the built-in store-writer plugin passes them to
the current store's ``record_*`` methods. Snapshots are immutable named tuples so that hooks
can keep them, and so that building one per state change stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from wfkit.states import State

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun

__all__ = [
    "FlowRunSnapshot",
    "LogEntry",
    "RunStore",
    "TaskRunSnapshot",
    "check_limit",
    "state_matches",
]


class FlowRunSnapshot(NamedTuple):
    """A flow run as it is at one state change; ``state`` is the state it just entered."""

    id: str
    name: str
    flow_name: str
    flow_version: str | None
    parameters: Mapping[str, Any]
    tags: tuple[str, ...]
    parent_flow_run_id: str | None
    parent_task_run_id: str | None
    root_flow_run_id: str
    run_count: int
    state: State
    host: str
    pid: int


class TaskRunSnapshot(NamedTuple):
    """A task run as it is at one state change; ``state`` is the state it just entered."""

    id: str
    name: str
    task_name: str
    flow_run_id: str | None
    parameters: Mapping[str, Any]
    tags: tuple[str, ...]
    cache_key: str | None
    upstream_ids: tuple[str, ...]
    run_count: int
    state: State
    host: str
    pid: int


class LogEntry(NamedTuple):
    """One log line emitted inside a run."""

    flow_run_id: str | None
    task_run_id: str | None
    level: int
    logger: str
    message: str
    timestamp: datetime


@runtime_checkable
class RunStore(Protocol):
    """Where runs, their state histories and their logs are recorded.

    Writing: each ``record_*_run`` call upserts the run from the snapshot and appends
    ``snapshot.state`` to the run's history; histories keep the order of the calls. A store
    may buffer writes, but everything recorded is readable through the reading methods
    (which flush first) and durable after :meth:`flush`.

    Reading returns the record types of :mod:`wfkit.stores.records`.
    """

    url: str

    def record_flow_run(self, run: FlowRunSnapshot) -> None: ...

    def record_task_run(self, run: TaskRunSnapshot) -> None: ...

    def record_log(self, entry: LogEntry) -> None: ...

    def flush(self) -> None:
        """Make everything recorded so far durable."""
        ...

    def close(self) -> None: ...

    def flow_runs(
        self, flow_name: str | None = None, state: str | None = None, limit: int | None = None
    ) -> list[FlowRun]:
        """Flow runs in start order, optionally filtered by flow name and state name or type;
        ``limit`` keeps the most recent N."""
        ...

    def flow_run(self, run_id: str) -> FlowRun:
        """One flow run by id; ``StoreError`` if there is none."""
        ...

    def task_runs(
        self, flow_run_id: str | None = None, task_name: str | None = None
    ) -> list[TaskRun]:
        """Task runs in creation order, optionally filtered."""
        ...

    def logs(self, run_id: str | None = None) -> list[LogRecord]:
        """Log records in order; ``run_id`` matches a flow run or a task run id."""
        ...


def check_limit(limit: int | None) -> int | None:
    """Validate a ``limit`` argument: None (no limit) or a whole number >= 0."""
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        from wfkit.exceptions import ConfigurationError

        raise ConfigurationError(
            f"limit={limit!r} is invalid: pass None for all runs, or a whole number >= 0 "
            "for the most recent N."
        )
    return limit


def state_matches(state: State, wanted: str | None) -> bool:
    """Whether ``state`` matches a filter given as a state name or type, case-insensitively."""
    if wanted is None:
        return True
    w = wanted.casefold()
    return state.name.casefold() == w or state.type.value.casefold() == w
