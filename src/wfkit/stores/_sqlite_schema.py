"""The SQLite store's file: creating it safely, its versioned schema and forward-only
migrations, and refusing files wfkit cannot vouch for (never modifying them).

A file that fails SQLite's ``PRAGMA quick_check`` is damaged: it is refused, so that wfkit never
writes into a broken b-tree, and left byte-for-byte as it was. The check runs on every open of
a store up to ``_QUICK_CHECK_MAX_BYTES``; a larger one is opened unchecked (a debug line on the
``wfkit.stores`` logger says so), because checking it would cost every process that opens it
more than ~50 ms. The pending migration steps run in one transaction with the write of the
new version (SQLite's DDL is transactional), so a process killed mid-migration leaves the file
at the old version, and the next open migrates it again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from wfkit.exceptions import StoreError

_T = TypeVar("_T")
_RETRY_DELAYS = (0.01, 0.05, 0.2, 0.5)  # then give up: the lock is held for minutes
_EXAMPLE_URLS = "'sqlite:///./wfkit.db' (relative) or 'sqlite:////home/me/wfkit.db' (absolute)"
# Stores up to this size are checked with PRAGMA quick_check when opened. Measured here (2
# shared cores, file in the OS page cache, SQLite 3.40): wfkit stores of 9, 46 and 116 MB took
# 18, 65 and 165 ms, ~0.7 MB per ms; one of 32 MB took 38-46 ms. A new one: ~30 µs.
_QUICK_CHECK_MAX_BYTES = 32 * 1024 * 1024
_QUICK_CHECK_ERRORS = 3  # quick_check stops after this many problems: enough to show, and fast
_log = logging.getLogger("wfkit.stores")

#: The SQL condition "this run is not final". The partial indexes of schema version 3 are
#: declared with this exact text (so it never changes), and SQLite uses them only for a
#: query that says the same.
NOT_FINAL = "state_type NOT IN ('CANCELLED', 'COMPLETED', 'CRASHED', 'FAILED')"

#: The SQL condition "a top-level run that finished": the partial index ``flow_runs_finished``
#: of schema version 4 is declared with this exact text, as ``NOT_FINAL`` above.
FINISHED_ROOT = (
    "parent_flow_run_id IS NULL AND state_type IN ('CANCELLED', 'COMPLETED', 'CRASHED', 'FAILED')"
)

#: Each step moves the schema from version ``i`` to ``i + 1``. Steps are never edited once
#: released: a change to the schema is a new step appended here.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE wfkit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
        """CREATE TABLE flow_runs (
            seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT,
            flow_name TEXT, flow_version TEXT, parameters TEXT,
            tags TEXT, parent_flow_run_id TEXT, parent_task_run_id TEXT,
            root_flow_run_id TEXT, run_count INTEGER, state_type TEXT,
            state_name TEXT, state_us INTEGER, start_us INTEGER, first_us INTEGER,
            heartbeat_us INTEGER, host TEXT, pid INTEGER)""",
        "CREATE INDEX flow_runs_flow_name ON flow_runs (flow_name)",
        "CREATE INDEX flow_runs_start ON flow_runs (coalesce(start_us, first_us))",
        """CREATE TABLE task_runs (
            seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT,
            task_name TEXT, flow_run_id TEXT, parameters TEXT,
            tags TEXT, cache_key TEXT, upstream_ids TEXT,
            run_count INTEGER, state_type TEXT, state_name TEXT,
            state_us INTEGER, host TEXT, pid INTEGER)""",
        "CREATE INDEX task_runs_flow_run_id ON task_runs (flow_run_id)",
        "CREATE INDEX task_runs_task_name ON task_runs (task_name)",
        # States point at their run's seq, not its text id: new runs get increasing seqs, so
        # the index grows at its end instead of at random places (most of a flush's cost).
        """CREATE TABLE flow_run_states (
            seq INTEGER PRIMARY KEY, run_seq INTEGER NOT NULL, type TEXT,
            name TEXT, at_us INTEGER, message TEXT)""",
        "CREATE INDEX flow_run_states_run ON flow_run_states (run_seq)",
        """CREATE TABLE task_run_states (
            seq INTEGER PRIMARY KEY, run_seq INTEGER NOT NULL, type TEXT,
            name TEXT, at_us INTEGER, message TEXT)""",
        "CREATE INDEX task_run_states_run ON task_run_states (run_seq)",
        """CREATE TABLE logs (
            seq INTEGER PRIMARY KEY, flow_run_id TEXT, task_run_id TEXT,
            level INTEGER, logger TEXT, message TEXT, at_us INTEGER)""",
        "CREATE INDEX logs_flow_run_id ON logs (flow_run_id) WHERE flow_run_id IS NOT NULL",
        "CREATE INDEX logs_task_run_id ON logs (task_run_id) WHERE task_run_id IS NOT NULL",
    ),
    (
        # Cache records. Results can be large, so this is a rowid table: a WITHOUT ROWID table
        # keeps whole rows in its key's b-tree, which suits only small rows. The blob goes
        # last, so that reading the other columns does not read it.
        """CREATE TABLE cache (
            key TEXT PRIMARY KEY, serializer TEXT NOT NULL, expires_us INTEGER,
            task_name TEXT, created_us INTEGER NOT NULL, value BLOB NOT NULL)""",
        "CREATE INDEX cache_expires ON cache (expires_us) WHERE expires_us IS NOT NULL",
    ),
    (
        # Owners: the processes that record runs (see wfkit.stores._sqlite_owners). Each run
        # names the owner that last wrote it; the partial indexes hold only the runs that are
        # not final, so finding a dead owner's runs never scans the finished ones.
        """CREATE TABLE owners (
            id INTEGER PRIMARY KEY, host TEXT NOT NULL, pid_space TEXT NOT NULL,
            pid INTEGER NOT NULL, start_ticks INTEGER NOT NULL, heartbeat_us INTEGER NOT NULL,
            interval_us INTEGER NOT NULL, beats INTEGER NOT NULL DEFAULT 0,
            UNIQUE (host, pid_space, pid, start_ticks))""",
        "ALTER TABLE flow_runs ADD COLUMN owner INTEGER",
        "ALTER TABLE task_runs ADD COLUMN owner INTEGER",
        f"CREATE INDEX flow_runs_live ON flow_runs (owner) WHERE {NOT_FINAL}",
        f"CREATE INDEX task_runs_live ON task_runs (owner) WHERE {NOT_FINAL}",
    ),
    (
        # Version 4: what ``wf`` and the web page read (wfkit.stores._sqlite_queries), served
        # by indexes. Each flow run records where its flow function is (``wf runs retry``).
        "ALTER TABLE flow_runs ADD COLUMN flow_path TEXT",
        # A flow's runs in start order (``wf runs ls --flow``); replaces the plain index.
        "DROP INDEX flow_runs_flow_name",
        "CREATE INDEX flow_runs_flow_start ON flow_runs (flow_name, coalesce(start_us, first_us))",
        "CREATE INDEX flow_runs_name ON flow_runs (name)",  # RUN given as a run name
        "CREATE INDEX flow_runs_root ON flow_runs (root_flow_run_id)",  # a run's tree; prune
        # Finished top-level runs by the time they finished: what prune looks for.
        f"CREATE INDEX flow_runs_finished ON flow_runs (state_us) WHERE {FINISHED_ROOT}",
        # Task counts by state and per-task summaries read this index alone (a covering
        # index), never the rows; it replaces the index on flow_run_id, its prefix.
        "DROP INDEX task_runs_flow_run_id",
        """CREATE INDEX task_runs_summary ON task_runs
            (flow_run_id, task_name, state_name, run_count)""",
    ),
    # ---------------------------------------------------------------------------------------
    # Issue 15: limits, artifacts, assets, events
    (
        # Concurrency limits (see wfkit.stores._sqlite_limits): `draining` is what rate_limit
        # took, as it stood at `updated_s` (epoch seconds on the caller's clock); leases are
        # what concurrency() holds, one row per limit, owned by a process (owners.id).
        """CREATE TABLE concurrency_limits (
            name TEXT PRIMARY KEY, slots INTEGER NOT NULL, decay REAL NOT NULL,
            draining REAL NOT NULL DEFAULT 0, updated_s REAL NOT NULL DEFAULT 0,
            created_us INTEGER NOT NULL) WITHOUT ROWID""",
        # A lease given back keeps its row, with `released_s`, while that time is ahead of
        # an asker's clock (fake clocks: see wfkit.stores._limits.judge).
        """CREATE TABLE limit_leases (
            lease TEXT NOT NULL, name TEXT NOT NULL, owner INTEGER, holder TEXT NOT NULL,
            slots INTEGER NOT NULL, released_s REAL, PRIMARY KEY (lease, name)) WITHOUT ROWID""",
        "CREATE INDEX limit_leases_name ON limit_leases (name)",
        "CREATE INDEX limit_leases_owner ON limit_leases (owner)",
        # Artifacts (see wfkit.stores._sqlite_artifacts); `data` is JSON.
        """CREATE TABLE artifacts (
            seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, key TEXT, type TEXT NOT NULL,
            data TEXT NOT NULL, description TEXT, flow_run_id TEXT, task_run_id TEXT,
            created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL)""",
        "CREATE INDEX artifacts_key ON artifacts (key) WHERE key IS NOT NULL",
        "CREATE INDEX artifacts_flow_run ON artifacts (flow_run_id)",
        "CREATE INDEX artifacts_task_run ON artifacts (task_run_id)",
        # Events (see wfkit.stores._sqlite_events), asset materializations among them.
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, event TEXT NOT NULL,
            resource TEXT NOT NULL, resource_id TEXT, related TEXT NOT NULL,
            payload TEXT NOT NULL, flow_run_id TEXT, task_run_id TEXT,
            occurred_us INTEGER NOT NULL)""",
        "CREATE INDEX events_event ON events (event)",
        "CREATE INDEX events_resource ON events (resource_id)",
        "CREATE INDEX events_flow_run ON events (flow_run_id)",
        "CREATE INDEX events_task_run ON events (task_run_id)",
    ),
)


#: The schema version this code reads and writes.
SCHEMA_VERSION = len(_MIGRATIONS)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    """Open (creating if needed) and check the store file, then bring its schema up to date."""
    _prepare_file(path)
    uri = f"{path.resolve().as_uri()}?mode=rw"  # never let SQLite create it (permissions)
    try:
        conn = sqlite3.connect(
            uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot open the run store file {str(path)!r}: {exc}.") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.create_function("wf_casefold", 1, _casefold, deterministic=True)
        # Read-only checks first: nothing is written to a file we would refuse.
        _check_intact(conn, path, timeout)
        version = retrying(lambda: _schema_version(conn, path))
        mode = retrying(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        if str(mode).lower() != "wal":
            raise StoreError(
                f"The run store {str(path)!r} cannot use SQLite's WAL journal (got {mode!r}); "
                "put it on a local file system that supports shared memory."
            )
        conn.execute("PRAGMA synchronous = NORMAL")
        # Checkpoints (which fsync) every ~40 MB of WAL instead of ~4 MB: random run ids
        # dirty many index pages per flush, and checkpointing them dominated the write cost.
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        if version < SCHEMA_VERSION:
            retrying(lambda: _migrate(conn, path))
    except sqlite3.OperationalError as exc:  # read-only, locked, no room for the WAL, ...
        conn.close()
        raise StoreError(
            f"Cannot use the run store {str(path)!r}: {exc}. Check that the file and its "
            "directory are writable and that no other program keeps the database locked."
        ) from exc
    except sqlite3.Error as exc:  # not a database, or a damaged one
        conn.close()
        raise StoreError(
            f"{str(path)!r} is not a wfkit store SQLite can read ({exc}); it may be damaged or "
            "another kind of file. wfkit did not modify it: move it aside or point WFKIT_STORE "
            f"at another file, for example {_EXAMPLE_URLS}."
        ) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def refuse_directory(path: Path) -> None:
    """Raise StoreError if the store path ``path`` is a directory."""
    if path.is_dir():
        raise StoreError(
            f"The run store path {str(path)!r} is a directory; give a file path such as "
            f"{str(path / 'wfkit.db')!r}."
        )


def check_header(path: Path, *, empty_ok: bool) -> None:
    """Raise StoreError unless the existing file ``path`` starts as a SQLite database does
    (or, with ``empty_ok``, is empty: a store just created)."""
    with open(path, "rb") as file:
        header = file.read(len(_SQLITE_MAGIC))
    if header != _SQLITE_MAGIC and (header or not empty_ok):
        raise StoreError(
            f"{str(path)!r} is not a SQLite database, so it is not a wfkit store. wfkit did "
            "not modify it: move it aside or point WFKIT_STORE at another file, for example "
            f"{_EXAMPLE_URLS}."
        )


def _prepare_file(path: Path) -> None:
    """Create the parent directory and an owner-only empty file, or check the existing one."""
    refuse_directory(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        check_header(path, empty_ok=True)
    except OSError as exc:
        raise StoreError(
            f"Cannot create the run store file {str(path)!r}: {exc}. Check that its directory "
            "is writable, or point WFKIT_STORE at another file."
        ) from exc
    else:
        os.close(fd)


def _check_intact(conn: sqlite3.Connection, path: Path, timeout: float) -> None:
    """Refuse a damaged file (see the module docstring), reading it on ``conn`` or, when its
    write-ahead log holds frames, on a read-only connection of its own."""
    try:
        has_frames = os.stat(f"{path}-wal").st_size > 0
    except FileNotFoundError:
        has_frames = False
    if not has_frames:
        # Closing the last read-write connection checkpoints the log into the file: harmless
        # here (nothing to copy, the file keeps its bytes and mtime), so ``conn`` checks.
        retrying(lambda: _quick_check(conn, path))
        return
    # A log with frames (a writer was killed, or is running) would be copied into the file
    # when ``conn`` closes, changing a file we may refuse; a read-only connection never does.
    checker = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
    try:
        checker.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        retrying(lambda: _quick_check(checker, path))
    finally:
        checker.close()


def _quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Raise StoreError if SQLite's quick_check finds ``conn``'s database damaged."""
    try:
        (size,) = conn.execute(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        ).fetchone()
        if size > _QUICK_CHECK_MAX_BYTES:
            _log.debug(
                "wfkit: the run store %r (%d bytes) was not integrity-checked on open: stores "
                "over %d bytes would take more than ~50 ms.",
                str(path),
                size,
                _QUICK_CHECK_MAX_BYTES,
            )
            return
        problems = [row[0] for row in conn.execute(f"PRAGMA quick_check({_QUICK_CHECK_ERRORS})")]
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_CORRUPT:
            raise  # not a database, locked, ...: the caller explains those
        problems = [str(exc)]
    if problems != ["ok"]:
        raise StoreError(
            f"The run store {str(path)!r} is damaged: SQLite's integrity check (PRAGMA "
            f"quick_check) reports {'; '.join(problems)[:500]!r}. wfkit refused to write to it "
            "and did not modify it. Restore it from a backup, or save what SQLite can still "
            f"read with: sqlite3 {str(path)!r} .recover | sqlite3 recovered.db, then point "
            "WFKIT_STORE at the recovered file (or move the damaged one aside: wfkit then "
            "starts a new store)."
        )


def _schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version (0: empty database), refusing files wfkit must not touch."""
    tables = {
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith("sqlite_")
    }
    if "wfkit_meta" not in tables:
        if tables:
            raise StoreError(
                f"{str(path)!r} is a SQLite database of another program (tables: "
                f"{', '.join(sorted(tables)[:5])}), not a wfkit store. wfkit did not modify it; "
                f"point WFKIT_STORE at another file, for example {_EXAMPLE_URLS}."
            )
        return 0
    row = conn.execute("SELECT value FROM wfkit_meta WHERE key = 'schema_version'").fetchone()
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise StoreError(
            f"The run store {str(path)!r} has no valid schema_version in wfkit_meta (found "
            f"{row!r}). wfkit did not modify it; move it aside to start a new store."
        ) from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"The run store {str(path)!r} has schema version {version}, but this wfkit supports "
            f"versions up to {SCHEMA_VERSION}: it was written by a newer wfkit. Upgrade wfkit "
            "(pip install -U wfkit) to use it; the file was not modified."
        )
    return version


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to SCHEMA_VERSION in one transaction: all of it happens, or none."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _schema_version(conn, path)  # again: another process may have migrated
        for step in _MIGRATIONS[version:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO wfkit_meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def retrying(action: Callable[[], _T]) -> _T:
    """Run ``action``, retrying with backoff while another connection holds a lock."""
    for delay in (*_RETRY_DELAYS, None):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            busy = code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)
            if not busy or delay is None:
                raise
            threading.Event().wait(delay)  # not time.sleep: a test harness may patch it
    raise AssertionError("unreachable")  # pragma: no cover


def _casefold(text: str | None) -> str | None:
    return None if text is None else text.casefold()
