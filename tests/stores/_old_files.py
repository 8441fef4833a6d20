"""Store files as older releases of wfkit left them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from wfkit.stores import _sqlite_schema


def version_1_store(path: Path) -> None:
    """A store as the first released schema left it, with one flow run in it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in _sqlite_schema._MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO wfkit_meta VALUES ('schema_version', '1')")
    conn.execute(
        "INSERT INTO flow_runs (seq, id, flow_name, parameters, tags, run_count, state_type, "
        "state_name) VALUES (1, 'old-run', 'etl', '{}', '[]', 0, 'PENDING', 'Pending')"
    )
    conn.execute(
        "INSERT INTO flow_run_states (run_seq, type, name) VALUES (1, 'PENDING', 'Pending')"
    )
    conn.close()
