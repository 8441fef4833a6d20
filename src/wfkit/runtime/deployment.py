"""The current deployment, as Prefect's ``prefect.runtime.deployment`` has it: ``id, name,
version, flow_run_id, parameters``. wfkit has no deployments, so ``id``, ``name`` and
``version`` are always None; as in Prefect, ``flow_run_id`` and ``parameters`` are those of
the current flow run (None and ``{}`` outside one)."""

from __future__ import annotations

from typing import Any

from wfkit.context import flow_run_context

_FIELDS = ("flow_run_id", "id", "name", "parameters", "version")


def __getattr__(attribute: str) -> Any:
    if attribute not in _FIELDS:
        raise AttributeError(
            f"{__name__} has no attribute {attribute!r}; available: {sorted(_FIELDS)}"
        )
    ctx = flow_run_context.get()
    if attribute == "flow_run_id":
        return ctx.run.id if ctx is not None else None
    if attribute == "parameters":
        return dict(ctx.run.parameters) if ctx is not None else {}
    return None


def __dir__() -> list[str]:
    return sorted(_FIELDS)
