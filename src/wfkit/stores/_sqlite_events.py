"""Events in the SQLite store: the ``events`` table (schema step "Issue 15"), written
through. Every function here takes the store's connection, under its lock."""

from __future__ import annotations

import sqlite3
from typing import Any

from wfkit.stores._event_records import EVENT_COLUMNS, EventRecord, event_from_row, event_row

__all__ = ["read", "write"]


def write(conn: sqlite3.Connection, e: EventRecord) -> None:
    """Insert the event."""
    conn.execute(
        f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", event_row(e)
    )


def read(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[EventRecord]:
    """The events ``where`` (a WHERE clause, or '') chooses, in emission order."""
    rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events {where} ORDER BY seq", args)
    return [event_from_row(row) for row in rows.fetchall()]
