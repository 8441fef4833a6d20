"""Artifacts as a store keeps them: one record per artifact (a progress artifact's record is
replaced when its progress changes); several may share a key, the latest being the key's
current version, as in Prefect."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

__all__ = ["ArtifactRecord"]


class ArtifactRecord(NamedTuple):
    """One artifact.

    Attributes:
        id: its id (a UUID string).
        key: its key (lowercase letters, digits and dashes), or None.
        type: ``markdown``, ``table``, ``link``, ``image`` or ``progress``.
        data: its content: text for markdown, a link or an image URL; a list of rows (dicts
            or lists) for a table; a number from 0 to 100 for progress. JSON values only.
        description: its description (markdown), or None.
        flow_run_id: the flow run it was created in (for a task run: that run's flow run).
        task_run_id: the task run it was created in, or None.
        created: when it was created, on the run's clock (timezone-aware UTC).
        updated: when its data last changed (progress), else ``created``.
    """

    id: str
    key: str | None
    type: str
    data: Any
    description: str | None
    flow_run_id: str | None
    task_run_id: str | None
    created: datetime
    updated: datetime
