"""The current task run: ``id, name, task_name, parameters, tags, run_count`` (neutral
values outside a task run)."""

from __future__ import annotations

from typing import Any

from wfkit.context import task_run_context

_NEUTRAL: dict[str, Any] = {
    "id": None,
    "name": None,
    "task_name": None,
    "parameters": {},
    "tags": [],
    "run_count": 0,
}


def __getattr__(attribute: str) -> Any:
    if attribute not in _NEUTRAL:
        raise AttributeError(
            f"wfkit.runtime.task_run has no attribute {attribute!r}; available: {sorted(_NEUTRAL)}"
        )
    ctx = task_run_context.get()
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
