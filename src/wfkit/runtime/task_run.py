"""The current task run: ``id, name, task_name, parameters, tags, run_count`` (neutral
values outside a task run)."""

from __future__ import annotations

from typing import Any

from wfkit.context import task_run_context
from wfkit.runtime._live import read

_NEUTRAL: dict[str, Any] = {
    "id": None, "name": None, "task_name": None, "parameters": {}, "tags": [], "run_count": 0,
}  # fmt: skip


def __getattr__(attribute: str) -> Any:
    return read(__name__, task_run_context, _NEUTRAL, attribute)


def __dir__() -> list[str]:
    return sorted(_NEUTRAL)
