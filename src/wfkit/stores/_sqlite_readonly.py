"""Opening a SQLite store read-only (``sqlite:///path.db?mode=ro``), as the CLI and UI do.

A read-only store never writes to the file: it does not register as an owner, migrate the
schema, record anything or touch cache records. It still shows the runs of dead owners as
``Crashed``, without recording it. To do that for every query, its own and those of the
modules that read through it, the connection gets TEMP views named like the run tables
(``flow_runs``, ``task_runs``): SQLite resolves an unqualified table name in the ``temp``
schema first, so every query sees the state ``Crashed`` on the row of each run that is not
final and whose owner is in ``temp.dead_owners``. Histories get their ``Crashed`` state from
:func:`crashed_states` (a view over the state tables would hide their index from SQLite:
its planner does not push a run filter into a ``UNION ALL``, and scanned every state).
``temp`` lives in this connection only; the file is never modified.

``temp.dead_owners`` is refreshed before every read with the same judgement a writer makes
(:mod:`._sqlite_owners`); a dead owner keeps the moment this reader first saw it dead, so
repeated reads show the same ``Crashed`` time.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from wfkit.exceptions import StoreError
from wfkit.states import StateType
from wfkit.stores._base import STATE_TYPE_VALUES
from wfkit.stores._sqlite_owners import Progress, dead_owners
from wfkit.stores._sqlite_schema import (
    _EXAMPLE_URLS,
    NOT_FINAL,
    SCHEMA_VERSION,
    _casefold,
    _quick_check,
    _schema_version,
    check_header,
    refuse_directory,
    retrying,
)

__all__ = ["connect_read_only", "crashed_states", "refresh_dead_owners"]

_CRASHED = STATE_TYPE_VALUES[StateType.CRASHED]
_STATE_COLUMNS = ("state_type", "state_name", "state_us")


def connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection to the store file at ``path``, with the Crashed overlay.

    Raises:
        StoreError: there is no store at ``path``, it is not a wfkit store, it is damaged,
            or its schema is older or newer than this wfkit's (nothing is modified).
    """
    _check_file(path)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(
            uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot open the run store file {str(path)!r}: {exc}.") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.create_function("wf_casefold", 1, _casefold, deterministic=True)
        retrying(lambda: _quick_check(conn, path))
        version = retrying(lambda: _schema_version(conn, path))
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"The run store {str(path)!r} has schema version {version}; this wfkit reads "
                f"version {SCHEMA_VERSION}, and a read-only store cannot upgrade it. Open it "
                "once for writing (any flow run recorded there, or "
                f"open_store('sqlite:///{path}')), which migrates it in place, then read again."
            )
        _install_overlay(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(
            f"Cannot read the run store {str(path)!r} ({exc}). wfkit did not modify it; check "
            "that the file is readable, or point at another store."
        ) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _check_file(path: Path) -> None:
    refuse_directory(path)
    try:
        check_header(path, empty_ok=False)
    except FileNotFoundError:
        raise StoreError(
            f"There is no run store at {str(path)!r}: a read-only store must exist. Runs "
            "recorded there create it; or check the path (for example "
            f"{_EXAMPLE_URLS})."
        ) from None
    except OSError as exc:
        raise StoreError(f"Cannot read the run store file {str(path)!r}: {exc}.") from exc


def _install_overlay(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TEMP TABLE dead_owners "
        "(id INTEGER PRIMARY KEY, message TEXT NOT NULL, at_us INTEGER NOT NULL)"
    )
    dead = f"owner IN (SELECT id FROM temp.dead_owners) AND {NOT_FINAL}"
    crashed = {
        "state_type": f"'{_CRASHED}'",
        "state_name": "'Crashed'",
        "state_us": "(SELECT at_us FROM temp.dead_owners WHERE id = owner)",
    }
    for kind in ("flow_run", "task_run"):
        # The view keeps the table's columns in their order (later schema versions included).
        columns = [row[1] for row in conn.execute(f"PRAGMA main.table_info({kind}s)")]
        selected = ", ".join(
            f"CASE WHEN {dead} THEN {crashed[c]} ELSE {c} END AS {c}" if c in _STATE_COLUMNS else c
            for c in columns
        )
        conn.execute(f"CREATE TEMP VIEW {kind}s AS SELECT {selected} FROM main.{kind}s")


def refresh_dead_owners(conn: sqlite3.Connection, now_us: int, progress: Progress) -> None:
    """Add the owners that are now dead (with live runs) to the connection's
    ``temp.dead_owners``; those already there keep the time they were first seen dead."""
    found = dead_owners(conn, None, now_us, progress)
    if found:
        conn.executemany(
            "INSERT OR IGNORE INTO temp.dead_owners (id, message, at_us) VALUES (?, ?, ?)",
            [(owner_id, message, now_us) for owner_id, message in found],
        )


def crashed_states(kind: str, selection: str) -> str:
    """A query for the (run seq, message, at_us) of each run of ``kind`` (``"flow_run"``,
    ``"task_run"``) chosen by ``selection`` (a WHERE clause over the runs) whose owner is
    dead: the ``Crashed`` state its history ends with on a read-only connection."""
    return (
        f"SELECT r.seq, d.message, d.at_us FROM main.{kind}s AS r "
        f"JOIN temp.dead_owners AS d ON d.id = r.owner WHERE r.{NOT_FINAL} "
        f"AND r.seq IN (SELECT seq FROM {kind}s {selection})"
    )
