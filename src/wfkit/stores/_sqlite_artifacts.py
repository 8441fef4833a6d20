"""Artifacts in the SQLite store: the ``artifacts`` table (schema step "Issue 15"), written
through (not buffered: artifacts are few, and other processes should see them at once).
Every function here takes the store's connection, under its lock."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from wfkit.stores._artifact_records import ArtifactRecord
from wfkit.stores._sqlite_rows import _EPOCH, _from_us, _to_us

__all__ = ["read", "write"]

_COLUMNS = "id, key, type, data, description, flow_run_id, task_run_id, created_us, updated_us"


def write(conn: sqlite3.Connection, artifact: ArtifactRecord) -> None:
    """Insert ``artifact``, or replace the data, description and update time of the one
    with its id (it keeps its place in creation order)."""
    a = artifact
    conn.execute(
        f"INSERT INTO artifacts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET data = excluded.data, "
        "description = excluded.description, updated_us = excluded.updated_us",
        (
            a.id,
            a.key,
            a.type,
            json.dumps(a.data),
            a.description,
            a.flow_run_id,
            a.task_run_id,
            _to_us(a.created),
            _to_us(a.updated),
        ),
    )


def read(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[ArtifactRecord]:
    """The artifacts ``where`` (a WHERE clause, or '') chooses, in creation order."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM artifacts {where} ORDER BY seq", args)
    return [
        ArtifactRecord(
            i, k, t, json.loads(d), desc, f, tr, _from_us(c) or _EPOCH, _from_us(u) or _EPOCH
        )
        for i, k, t, d, desc, f, tr, c, u in rows.fetchall()
    ]
