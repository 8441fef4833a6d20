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

__all__ = ["FlowRun", "LogRecord", "TaskRun"]


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
