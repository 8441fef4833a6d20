"""Events: ``emit_event`` records a named event, about a resource, with the run it happened
in (as Prefect's ``emit_event``, kept in the run store instead of sent to a server).

Nothing reacts to events yet (Prefect's automations need its server); they are there to be
listed (:func:`list_events`, and the ``wf`` command and UI) and asserted on in tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from wfkit._run_ids import current_run_ids
from wfkit.context import current_clock, current_store
from wfkit.exceptions import ConfigurationError
from wfkit.stores import EventRecord

__all__ = ["EventRecord", "emit_event", "list_events"]

RESOURCE_ID = "prefect.resource.id"


def emit_event(
    event: str,
    resource: Mapping[str, str],
    occurred: datetime | None = None,
    related: Sequence[Mapping[str, str]] | None = None,
    payload: Mapping[str, Any] | None = None,
    id: uuid.UUID | None = None,  # noqa: A002 - Prefect's name for it
) -> EventRecord:
    """Record the event ``event`` about ``resource`` with the current run (none outside a
    run); the record.

    Args:
        event: its name, e.g. ``"order.shipped"``.
        resource: string labels naming what it is about; must hold ``"prefect.resource.id"``.
        occurred: when it happened (default: now, on the run's clock).
        related: labels of other resources involved, each with a ``"prefect.resource.id"``.
        payload: more data, JSON values.
        id: its id (default: a new UUID).

    Raises:
        ConfigurationError: an empty name, a resource without an id, labels that are not
            strings, or a payload JSON cannot hold.
    """
    if not isinstance(event, str) or not event.strip():
        raise ConfigurationError(
            f"event={event!r} is not an event name; pass e.g. 'order.shipped'."
        )
    labels = _labels("resource", resource)
    others = [_labels("related", r) for r in (related or ())]
    data = dict(payload or {})
    _check_json(data)
    flow_run_id, task_run_id = current_run_ids()
    record = EventRecord(
        str(id or uuid.uuid4()),
        event,
        labels,
        others,
        data,
        flow_run_id,
        task_run_id,
        occurred if occurred is not None else current_clock().now(),
    )
    current_store().record_event(record)
    return record


def list_events(
    event: str | None = None, run_id: str | None = None, resource_id: str | None = None
) -> list[EventRecord]:
    """Events in the run store in force, in emission order: of one name (``"prefix.*"``
    for a prefix), one run, or one resource id."""
    return current_store().events(event, run_id, resource_id)


def _labels(name: str, labels: object) -> dict[str, str]:
    if (
        not isinstance(labels, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
        or RESOURCE_ID not in labels
    ):
        raise ConfigurationError(
            f"{name}={labels!r} is not a resource: pass a dict of string labels holding "
            f"{RESOURCE_ID!r}, e.g. {{{RESOURCE_ID!r}: 'warehouse.shelf.7'}}."
        )
    return dict(labels)


def _check_json(payload: dict[str, Any]) -> None:
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"payload={payload!r} holds a value JSON cannot hold ({exc}); convert it first."
        ) from exc
