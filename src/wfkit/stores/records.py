"""The records a store's reading API returns (and the test harness returns).

These are frozen pydantic models. This module imports pydantic, so it is loaded only when
something reads from a store, never on the path of ``import wfkit`` or of a run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from wfkit.states import State, StateType
from wfkit.stores._base import run_times

__all__ = ["FlowRun", "LogRecord", "TaskRun", "run_times"]


class _RunRecord(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

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
        return self.state.type


class FlowRun(_RunRecord):
    """A recorded flow run."""

    flow_name: str
    flow_version: str | None = None
    parent_flow_run_id: str | None = None
    parent_task_run_id: str | None = None
    root_flow_run_id: str | None = None


class TaskRun(_RunRecord):
    """A recorded task run."""

    task_name: str
    flow_run_id: str | None = None
    cache_key: str | None = None
    upstream_ids: tuple[str, ...] = ()


class LogRecord(BaseModel):
    """A log line recorded inside a run."""

    model_config = ConfigDict(frozen=True)

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
        import logging

        return logging.getLevelName(self.level)
