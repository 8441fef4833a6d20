"""Events of the ``memory://`` store: a list in emission order, under one lock."""

from __future__ import annotations

import threading

from wfkit.stores._event_records import EventRecord

__all__ = ["MemoryEvents", "matches"]


def matches(e: EventRecord, event: str | None, run_id: str | None, resource_id: str | None) -> bool:
    """Whether ``e`` passes the filters of :meth:`~wfkit.stores.EventStore.events`."""
    return (
        (
            event is None
            or e.event == event
            or (event.endswith("*") and e.event.startswith(event[:-1]))
        )
        and (run_id is None or run_id in (e.flow_run_id, e.task_run_id))
        and (resource_id is None or e.resource.get("prefect.resource.id") == resource_id)
    )


class MemoryEvents:
    """The event methods of :class:`~wfkit.stores.memory.MemoryStore`."""

    def __init__(self) -> None:
        self._events_lock = threading.Lock()
        self._events: list[EventRecord] = []

    def record_event(self, event: EventRecord) -> None:
        """Keep ``event``."""
        with self._events_lock:
            self._events.append(event)

    def events(
        self, event: str | None = None, run_id: str | None = None, resource_id: str | None = None
    ) -> list[EventRecord]:
        """Events in emission order, filtered by name, run and resource id."""
        with self._events_lock:
            kept = list(self._events)
        return [e for e in kept if matches(e, event, run_id, resource_id)]
