"""Events as a store keeps them (``wfkit.events.emit_event``, and asset materializations,
which are events too, as in Prefect)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from wfkit.stores._sqlite_rows import _EPOCH, _from_us, _to_us

__all__ = ["EVENT_COLUMNS", "EventRecord", "event_from_row", "event_row"]

#: The columns of a stored event (SQLite's and PostgreSQL's), in :func:`event_row` order.
EVENT_COLUMNS = (
    "id, event, resource, related, payload, flow_run_id, task_run_id, occurred_us, resource_id"
)


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


def event_row(e: EventRecord) -> tuple[Any, ...]:
    """The values of :data:`EVENT_COLUMNS` for ``e`` (labels and payload as JSON text)."""
    return (
        e.id,
        e.event,
        json.dumps(e.resource),
        json.dumps(e.related),
        json.dumps(e.payload),
        e.flow_run_id,
        e.task_run_id,
        _to_us(e.occurred),
        e.resource.get("prefect.resource.id"),
    )


def event_from_row(row: Sequence[Any]) -> EventRecord:
    """The event stored as ``row`` (the values of :data:`EVENT_COLUMNS`)."""
    i, event, resource, related, payload, flow_run_id, task_run_id, occurred, _ = row
    return EventRecord(
        i,
        event,
        json.loads(resource),
        json.loads(related),
        json.loads(payload),
        flow_run_id,
        task_run_id,
        _from_us(occurred) or _EPOCH,
    )
