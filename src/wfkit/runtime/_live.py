"""Reading a live run's attribute for ``wfkit.runtime.flow_run`` / ``task_run``."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any


def read(module: str, context: ContextVar[Any], neutral: dict[str, Any], attribute: str) -> Any:
    """The ``attribute`` of the run in ``context``, or its neutral value outside a run."""
    if attribute not in neutral:
        raise AttributeError(
            f"{module} has no attribute {attribute!r}; available: {sorted(neutral)}"
        )
    ctx = context.get()
    if ctx is None:
        value = neutral[attribute]
        return value.copy() if isinstance(value, (dict, list)) else value
    run = ctx.run
    if attribute == "parameters":
        return dict(run.parameters)
    if attribute == "tags":
        return list(run.tags)
    return getattr(run, attribute)
