"""Artifacts in the SQLite store: the ``artifacts`` table (schema step "Issue 15"), written
through (not buffered: artifacts are few, and other processes should see them at once).
Every function here takes the store's connection, under its lock."""

from __future__ import annotations

import sqlite3
from typing import Any

from wfkit.stores._artifact_records import (
    ARTIFACT_COLUMNS,
    ArtifactRecord,
    artifact_from_row,
    artifact_row,
)

__all__ = ["read", "write"]


def write(conn: sqlite3.Connection, artifact: ArtifactRecord) -> None:
    """Insert ``artifact``, or replace the data, description and update time of the one
    with its id (it keeps its place in creation order)."""
    conn.execute(
        f"INSERT INTO artifacts ({ARTIFACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET data = excluded.data, "
        "description = excluded.description, updated_us = excluded.updated_us",
        artifact_row(artifact),
    )


def read(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[ArtifactRecord]:
    """The artifacts ``where`` (a WHERE clause, or '') chooses, in creation order."""
    rows = conn.execute(f"SELECT {ARTIFACT_COLUMNS} FROM artifacts {where} ORDER BY seq", args)
    return [artifact_from_row(row) for row in rows.fetchall()]
