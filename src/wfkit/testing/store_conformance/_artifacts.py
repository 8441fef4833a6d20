"""The conformance cases for artifacts (the ``ArtifactStore`` protocol)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wfkit.stores import ArtifactRecord, RunStore
from wfkit.testing.store_conformance._support import StoreCases, at

__all__ = ["ArtifactCases", "artifact"]


_DEFAULTS: dict[str, Any] = {
    "key": None,
    "type": "markdown",
    "data": "# hi",
    "description": None,
    "flow_run_id": "flow-1",
    "task_run_id": None,
    "created": at(0),
    "updated": at(0),
}


def artifact(artifact_id: str = "a1", **fields: Any) -> ArtifactRecord:
    """An artifact record with plain defaults, changed by ``fields``."""
    return ArtifactRecord(**{"id": artifact_id, **_DEFAULTS, **fields})


class ArtifactCases(StoreCases):
    """Artifacts kept in creation order, found by key, run and id, replaced by id."""

    def test_an_artifact_round_trips_every_field(self, store: RunStore) -> None:
        table = artifact(
            "a1",
            key="report",
            type="table",
            data=[{"a": 1, "b": None}, {"a": 2.5, "b": "x"}],
            description="**rows**",
            task_run_id="task-1",
            created=at(5),
            updated=at(6),
        )
        store.record_artifact(table)
        assert store.artifact("a1") == table
        assert store.artifact("missing") is None

    def test_artifacts_are_listed_in_creation_order_by_key_and_by_run(
        self, store: RunStore
    ) -> None:
        store.record_artifact(artifact("a1", key="k", created=at(9)))
        store.record_artifact(artifact("a2", key="other", flow_run_id="flow-2"))
        store.record_artifact(artifact("a3", key="k", task_run_id="task-1", created=at(1)))

        def ids(found: list[ArtifactRecord]) -> list[str]:
            return [a.id for a in found]

        assert ids(store.artifacts()) == ["a1", "a2", "a3"]
        assert ids(store.artifacts(key="k")) == ["a1", "a3"]
        assert ids(store.artifacts(run_id="flow-1")) == ["a1", "a3"]
        assert ids(store.artifacts(run_id="task-1")) == ["a3"]
        assert ids(store.artifacts(key="other", run_id="flow-1")) == []

    def test_recording_an_id_again_replaces_it_in_place(self, store: RunStore) -> None:
        store.record_artifact(artifact("a1", type="progress", data=0.0))
        store.record_artifact(artifact("a2"))
        moved = artifact("a1", type="progress", data=50.0, description="half", updated=at(3))

        store.record_artifact(moved)

        assert [a.id for a in store.artifacts()] == ["a1", "a2"]
        assert store.artifact("a1") == moved

    def test_artifacts_outlive_the_store_object(
        self, store: RunStore, reopened: Callable[[], RunStore]
    ) -> None:
        store.record_artifact(artifact("a1", key="k", data=["x", 1]))
        kept = store.artifacts()
        assert reopened().artifacts() == kept
