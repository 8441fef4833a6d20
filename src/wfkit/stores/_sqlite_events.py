"""Events in the SQLite store: the ``events`` table (schema step "Issue 15"), written
through. Every function here takes the store's connection, under its lock."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from wfkit.stores._event_records import EventRecord
from wfkit.stores._sqlite_rows import _EPOCH, _from_us, _to_us

__all__ = ["read", "write"]

_COLUMNS = "id, event, resource, related, payload, flow_run_id, task_run_id, occurred_us"


def write(conn: sqlite3.Connection, e: EventRecord) -> None:
    """Insert the event."""
    conn.execute(
        f"INSERT INTO events ({_COLUMNS}, resource_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            e.id,
            e.event,
            json.dumps(e.resource),
            json.dumps(e.related),
            json.dumps(e.payload),
            e.flow_run_id,
            e.task_run_id,
            _to_us(e.occurred),
            e.resource.get("prefect.resource.id"),
        ),
    )


def read(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[EventRecord]:
    """The events ``where`` (a WHERE clause, or '') chooses, in emission order."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM events {where} ORDER BY seq", args)
    return [
        EventRecord(
            i, ev, json.loads(res), json.loads(rel), json.loads(p), f, t, _from_us(at) or _EPOCH
        )
        for i, ev, res, rel, p, f, t, at in rows.fetchall()
    ]
