"""Artifacts of the ``memory://`` store: a dict by id, in creation order, under one lock."""

from __future__ import annotations

import threading

from wfkit.stores._artifact_records import ArtifactRecord

__all__ = ["MemoryArtifacts"]


class MemoryArtifacts:
    """The artifact methods of :class:`~wfkit.stores.memory.MemoryStore`."""

    def __init__(self) -> None:
        self._artifacts_lock = threading.Lock()
        self._artifacts: dict[str, ArtifactRecord] = {}

    def record_artifact(self, artifact: ArtifactRecord) -> None:
        """Keep ``artifact``, replacing the one with its id (keeping its place)."""
        with self._artifacts_lock:
            self._artifacts[artifact.id] = artifact

    def artifacts(self, key: str | None = None, run_id: str | None = None) -> list[ArtifactRecord]:
        """Artifacts in creation order, of one key and/or one flow or task run."""
        with self._artifacts_lock:
            kept = list(self._artifacts.values())
        return [
            a
            for a in kept
            if (key is None or a.key == key)
            and (run_id is None or run_id in (a.flow_run_id, a.task_run_id))
        ]

    def artifact(self, artifact_id: str) -> ArtifactRecord | None:
        """The artifact with this id; None if there is none."""
        with self._artifacts_lock:
            return self._artifacts.get(artifact_id)
