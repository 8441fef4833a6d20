"""The current flow run: ``id, name, flow_name, flow_version, parameters, tags, run_count,
parent_flow_run_id, root_flow_run_id, scheduled_start_time`` (neutral values outside a run).
Inside a task, these describe the flow run the task belongs to."""

from __future__ import annotations

from typing import Any

from wfkit.context import flow_run_context
from wfkit.runtime._live import read

_NEUTRAL: dict[str, Any] = {
    "id": None, "name": None, "flow_name": None, "flow_version": None, "parameters": {},
    "tags": [], "run_count": 0, "parent_flow_run_id": None, "root_flow_run_id": None,
    "scheduled_start_time": None,
}  # fmt: skip


def __getattr__(attribute: str) -> Any:
    return read(__name__, flow_run_context, _NEUTRAL, attribute)


def __dir__() -> list[str]:
    return sorted(_NEUTRAL)
