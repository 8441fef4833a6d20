"""The conformance cases for events (the ``EventStore`` protocol)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wfkit.stores import EventRecord, RunStore
from wfkit.testing.store_conformance._support import StoreCases, at

__all__ = ["EventCases", "event"]


_DEFAULTS: dict[str, Any] = {
    "event": "order.shipped",
    "resource": {"prefect.resource.id": "order.1"},
    "related": [],
    "payload": {},
    "flow_run_id": "flow-1",
    "task_run_id": None,
    "occurred": at(0),
}


def event(event_id: str = "e1", **fields: Any) -> EventRecord:
    """An event record with plain defaults, changed by ``fields``."""
    return EventRecord(**{"id": event_id, **_DEFAULTS, **fields})


class EventCases(StoreCases):
    """Events kept in the order recorded, filtered by name or prefix, run and resource."""

    def test_an_event_round_trips_every_field(self, store: RunStore) -> None:
        full = event(
            "e1",
            resource={"prefect.resource.id": "s3://b/x.csv", "prefect.resource.name": "X"},
            related=[{"prefect.resource.id": "s3://b/raw.csv", "prefect.resource.role": "asset"}],
            payload={"rows": 3, "nested": {"a": [1, None]}},
            task_run_id="task-1",
            occurred=at(7),
        )
        store.record_event(full)
        assert store.events() == [full]

    def test_events_are_filtered_by_name_prefix_run_and_resource(self, store: RunStore) -> None:
        store.record_event(event("e1", event="a.b.ok"))
        store.record_event(event("e2", event="a.bc", flow_run_id="flow-2"))
        store.record_event(
            event("e3", event="x", task_run_id="task-1", resource={"prefect.resource.id": "r"})
        )

        def ids(found: list[EventRecord]) -> list[str]:
            return [e.id for e in found]

        assert ids(store.events()) == ["e1", "e2", "e3"]
        assert ids(store.events("a.bc")) == ["e2"]
        assert ids(store.events("a.b.*")) == ["e1"]
        assert ids(store.events(run_id="flow-1")) == ["e1", "e3"]
        assert ids(store.events(run_id="task-1")) == ["e3"]
        assert ids(store.events(resource_id="r")) == ["e3"]
        assert ids(store.events("x", run_id="flow-2")) == []

    def test_events_outlive_the_store_object(
        self, store: RunStore, reopened: Callable[[], RunStore]
    ) -> None:
        store.record_event(event("e1", payload={"k": "v"}))
        kept = store.events()
        assert reopened().events() == kept
