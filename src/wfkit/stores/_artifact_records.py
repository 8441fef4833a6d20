"""Artifacts as a store keeps them: one record per artifact (a progress artifact's record is
replaced when its progress changes); several may share a key, the latest being the key's
current version, as in Prefect."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from wfkit.stores._sqlite_rows import _EPOCH, _from_us, _to_us

__all__ = ["ARTIFACT_COLUMNS", "ArtifactRecord", "artifact_from_row", "artifact_row"]

#: The columns of a stored artifact (SQLite's and PostgreSQL's), in :func:`artifact_row` order.
ARTIFACT_COLUMNS = (
    "id, key, type, data, description, flow_run_id, task_run_id, created_us, updated_us"
)


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


def artifact_row(a: ArtifactRecord) -> tuple[Any, ...]:
    """The values of :data:`ARTIFACT_COLUMNS` for ``a`` (``data`` as JSON text)."""
    return (
        a.id,
        a.key,
        a.type,
        json.dumps(a.data),
        a.description,
        a.flow_run_id,
        a.task_run_id,
        _to_us(a.created),
        _to_us(a.updated),
    )


def artifact_from_row(row: Sequence[Any]) -> ArtifactRecord:
    """The artifact stored as ``row`` (the values of :data:`ARTIFACT_COLUMNS`)."""
    i, key, type_, data, description, flow_run_id, task_run_id, created, updated = row
    return ArtifactRecord(
        i,
        key,
        type_,
        json.loads(data),
        description,
        flow_run_id,
        task_run_id,
        _from_us(created) or _EPOCH,
        _from_us(updated) or _EPOCH,
    )
