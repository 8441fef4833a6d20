"""The records a store's reading API returns (and the test harness returns).

They are frozen, slotted dataclasses that the stores build from their own data: immutable,
compared field by field, made with keyword arguments, and not validated (a store reads back
what it wrote). This module imports no pydantic; defining the classes costs a few
milliseconds, so the stores import it on the first read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wfkit.states import State, StateType

__all__ = [
    "FlowRun",
    "LogPage",
    "LiveOwner",
    "LogRecord",
    "PruneResult",
    "StoreSummary",
    "TaskRun",
    "TaskRunGroup",
]


# The base only declares the common fields: FlowRun and TaskRun make their own methods (each
# method dataclass generates costs a compile at import). Its docstring spares dataclass from
# writing one from the signature (object's, for this base: parsed with tokenize, milliseconds).
@dataclass(frozen=True, slots=True, kw_only=True, init=False, repr=False, eq=False)
class _RunRecord:
    """What flow and task runs have in common."""

    id: str
    name: str
    state: State
    states: tuple[State, ...]
    run_count: int
    parameters: dict[str, Any]
    tags: tuple[str, ...]
    start_time: datetime | None
    end_time: datetime | None
    host: str | None = None
    pid: int | None = None

    @property
    def state_names(self) -> list[str]:
        """The names of the states in the run's history, in order."""
        return [s.name for s in self.states]

    @property
    def state_type(self) -> StateType:
        """The type of the run's current state."""
        return self.state.type


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowRun(_RunRecord):
    """A recorded flow run."""

    flow_name: str
    flow_version: str | None = None
    parent_flow_run_id: str | None = None
    parent_task_run_id: str | None = None
    root_flow_run_id: str | None = None
    flow_path: str | None = None
    """Where the flow function is found, ``module:qualname``; None for runs recorded before
    wfkit recorded it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRun(_RunRecord):
    """A recorded task run."""

    task_name: str
    flow_run_id: str | None = None
    cache_key: str | None = None
    upstream_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    """A log line recorded inside a run."""

    flow_run_id: str | None
    task_run_id: str | None
    level: int
    logger: str
    message: str
    timestamp: datetime

    @property
    def run_id(self) -> str | None:
        """The task run id if the line was logged in a task, else the flow run id."""
        return self.task_run_id or self.flow_run_id

    @property
    def level_name(self) -> str:
        """The level's name (``"INFO"``, ``"WARNING"``...)."""
        return logging.getLevelName(self.level)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogPage:
    """Log records after a cursor (:meth:`~wfkit.stores.RunReader.logs_after`).

    Attributes:
        records: the lines, in the order they were recorded.
        cursor: pass it as ``after`` to read only the lines recorded after these (an opaque
            position that only grows; the ``after`` given if there were no lines).
    """

    records: tuple[LogRecord, ...]
    cursor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRunGroup:
    """The task runs of one task in one flow run, summarised
    (:meth:`~wfkit.stores.RunReader.task_run_groups`).

    Attributes:
        task_name: the task.
        runs: how many task runs it has in the flow run.
        states: how many of them are in each state, by state name.
        attempts: the sum of their run counts (a retried task run counts each attempt).
    """

    task_name: str
    runs: int
    states: dict[str, int]
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveOwner:
    """A process with runs still going on in the store.

    Attributes:
        host: its host name.
        pid: its process id.
        heartbeat: when it last showed it was alive (None where the store keeps no heartbeat).
        live_runs: how many of its flow runs are not final.
    """

    host: str
    pid: int
    heartbeat: datetime | None
    live_runs: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSummary:
    """What a store holds (:meth:`~wfkit.stores.RunReader.summary`; ``wf store info``).

    Attributes:
        url: the store's URL.
        flow_runs: flow runs by the name of their current state.
        task_runs: task runs by the name of their current state.
        logs: how many log lines.
        cache_records: how many cache records.
        owners: the processes with runs going on.
        details: what only this kind of store has, JSON-ready: for SQLite its ``path``,
            ``schema_version``, ``size_bytes`` and ``wal_bytes``.
    """

    url: str
    flow_runs: dict[str, int]
    task_runs: dict[str, int]
    logs: int
    cache_records: int
    owners: tuple[LiveOwner, ...]
    details: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneResult:
    """What :meth:`~wfkit.stores.RunReader.prune_runs` removed (or, in a dry run, would).

    Attributes:
        flow_runs, task_runs, states, logs: how many of each.
    """

    flow_runs: int = 0
    task_runs: int = 0
    states: int = 0
    logs: int = 0
