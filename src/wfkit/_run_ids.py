"""Which run something published now belongs to (artifacts, events, materializations)."""

from __future__ import annotations

from wfkit.context import flow_run_context, task_run_context

__all__ = ["current_run_ids"]


def current_run_ids() -> tuple[str | None, str | None]:
    """(flow run id, task run id) of the run in force: a task run's flow run and itself, a
    flow run and None, or (None, None) outside any run."""
    task_ctx = task_run_context.get()
    if task_ctx is not None:
        return task_ctx.run.flow_run_id, task_ctx.run.id
    flow_ctx = flow_run_context.get()
    return (flow_ctx.run.id if flow_ctx is not None else None), None
