"""The current flow run: ``id, name, flow_name, flow_version, parameters, tags, run_count,
parent_flow_run_id, root_flow_run_id, scheduled_start_time`` (neutral values outside a run).
Inside a task, these describe the flow run the task belongs to."""

from __future__ import annotations

from typing import Any

from wfkit.context import flow_run_context

_NEUTRAL: dict[str, Any] = {
    "id": None,
    "name": None,
    "flow_name": None,
    "flow_version": None,
    "parameters": {},
    "tags": [],
    "run_count": 0,
    "parent_flow_run_id": None,
    "root_flow_run_id": None,
    "scheduled_start_time": None,
}


def __getattr__(attribute: str) -> Any:
    if attribute not in _NEUTRAL:
        raise AttributeError(
            f"wfkit.runtime.flow_run has no attribute {attribute!r}; available: {sorted(_NEUTRAL)}"
        )
    ctx = flow_run_context.get()
    if ctx is None:
        value = _NEUTRAL[attribute]
        return value.copy() if isinstance(value, (dict, list)) else value
    run = ctx.run
    if attribute == "parameters":
        return dict(run.parameters)
    if attribute == "tags":
        return list(run.tags)
    return getattr(run, attribute)


def __dir__() -> list[str]:
    return sorted(_NEUTRAL)
