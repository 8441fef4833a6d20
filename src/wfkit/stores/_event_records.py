"""Events as a store keeps them (``wfkit.events.emit_event``, and asset materializations,
which are events too, as in Prefect)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

__all__ = ["EventRecord"]


class EventRecord(NamedTuple):
    """One event.

    Attributes:
        id: its id (a UUID string).
        event: its name, e.g. ``"order.shipped"``.
        resource: labels of what it is about; ``resource["prefect.resource.id"]`` names it.
        related: labels of other resources it involves (each with a ``prefect.resource.id``).
        payload: more data (JSON values).
        flow_run_id: the flow run it was emitted in (for a task run: that run's flow run).
        task_run_id: the task run it was emitted in, or None.
        occurred: when it happened (timezone-aware UTC).
    """

    id: str
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]]
    payload: dict[str, Any]
    flow_run_id: str | None
    task_run_id: str | None
    occurred: datetime
