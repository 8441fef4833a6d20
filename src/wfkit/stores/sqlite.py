"""``sqlite:///path/to/file.db``: a run store in one embedded SQLite file.

Writing never touches SQLite on the caller's path: ``record_*`` calls append to an in-memory
buffer (run upserts coalesced by run id, state rows and log rows in order) and :meth:`flush`
writes the whole buffer in one ``BEGIN IMMEDIATE`` transaction. The buffer flushes itself when it
holds more than ``_MAX_PENDING`` rows, before every read, when the store is closed or garbage
collected, and when the interpreter exits; so a script that ends right after a run loses nothing.

Nothing waits long in the buffer either: its oldest row is committed within the commit interval
(``WFKIT_STORE_COMMIT_INTERVAL``, default 100 ms, measured in real time), so a process killed
by SIGKILL loses at most the rows of that last interval, and another process sees a run
within about that long of its start. A caller that keeps recording flushes on its own thread
at its first record past the interval; a buffer its caller has left (a long task body, an idle
script) is committed by one daemon thread per process (:class:`~wfkit.stores._sqlite_batch.
IdleCommitter`). A committer thread alone is not enough: a busy caller starves it of the GIL.

Several threads share one store (one connection, one writer path) and several processes may
write one file (WAL journal, a busy timeout and a few retries with backoff).

The file is created readable by its owner only; opening an existing file that other users can
write (or whose directory they can write) logs one warning on the ``wfkit.stores`` logger with
the ``chmod`` that fixes it. The secret key that authenticates cached results lives beside the
file, in ``<file>.key`` (owner-only; see :mod:`wfkit.stores._trust`). The schema is versioned
in ``wfkit_meta`` and moved forward by ``_MIGRATIONS``; a file wfkit cannot vouch for (not
SQLite, another program's database, a newer schema) is refused with
:class:`~wfkit.exceptions.StoreError` and left byte-for-byte as it was. Timestamps are stored
as integer microseconds since the Unix epoch. State ``data`` and ``exception`` are not stored:
read-back states carry neither.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import weakref
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from wfkit.exceptions import ConfigurationError, StoreError
from wfkit.settings import store_commit_interval, store_heartbeat_interval
from wfkit.stores import _sqlite_artifacts as _artifacts
from wfkit.stores import _sqlite_cache_locks as _cache_locks
from wfkit.stores import _sqlite_events as _events
from wfkit.stores import _sqlite_limits as _limits
from wfkit.stores._artifact_records import ArtifactRecord
from wfkit.stores._base import (
    CacheRecord,
    FlowRunSnapshot,
    LogEntry,
    TaskRunSnapshot,
    aware,
    check_limit,
    check_moment,
    check_tags,
)
from wfkit.stores._event_records import EventRecord
from wfkit.stores._sql_limits import LimitsInTables
from wfkit.stores._sql_pages import RunPages
from wfkit.stores._sqlite_cache import KeptCacheRecords
from wfkit.stores._sqlite_queries import SqliteQueries
from wfkit.stores._sqlite_rows import (
    _EPOCH,
    _SELECT_CACHE,
    _UPSERT_CACHE,
    _cache_record,
    _cache_row,
    _from_us,
    _to_us,
)
from wfkit.stores._sqlite_schema import (
    _EXAMPLE_URLS,
    SCHEMA_VERSION,
)
from wfkit.stores._sqlite_writer import Writer
from wfkit.stores._trust import KEY_SIZE, read_key, read_or_create_key, report_loose_permissions

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

_log = logging.getLogger("wfkit.stores")

_R = TypeVar("_R", "FlowRun", "TaskRun")
_T = TypeVar("_T")

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun


_SELECT_CACHE_KEY = f"{_SELECT_CACHE} WHERE key = ?"
# A flow run's start, as the flow_runs_start index has it: its first running state's time, or
# its first state's time if it never ran.
_START = "coalesce(start_us, first_us)"
_HAS_TAG = "EXISTS (SELECT 1 FROM json_each(flow_runs.tags) WHERE value = ?)"


class SqliteStore(LimitsInTables, RunPages, SqliteQueries):
    """A run store in one SQLite file; see the module docstring for how writes are buffered.

    Args:
        path: the database file; it and its parent directory are created if missing.
        url: the URL the store was opened with (default: built from ``path``).
        timeout: seconds to wait for another process's write lock before retrying.
        commit_interval: the most seconds a recorded row stays buffered (real time); default
            the ``WFKIT_STORE_COMMIT_INTERVAL`` setting (0.1). 0 commits every row at once.
        heartbeat_interval: seconds between this process's heartbeats while it has live runs
            (default the ``WFKIT_HEARTBEAT_INTERVAL`` setting, 10); a reader on another host
            judges its runs Crashed after three.
        read_only: read without ever writing (URL ``?mode=ro``): the file must exist, runs of
            dead processes are shown ``Crashed`` but not recorded so, and recording or
            changing cache records raises :class:`~wfkit.exceptions.StoreError`.

    Raises:
        StoreError: the file is not a wfkit store, has a newer schema, or cannot be opened
            (read-only: also when it is missing or has an older schema).
        ConfigurationError: ``commit_interval`` is not a number of seconds from 0 to 60, or
            ``heartbeat_interval`` not one from 0.001 to 3600.
    """

    _limit_sql: ClassVar[ModuleType] = _limits  # (see LimitsInTables)
    _mark: ClassVar[str] = "?"  # (see RunPages)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        url: str | None = None,
        timeout: float = 30.0,
        commit_interval: float | None = None,
        heartbeat_interval: float | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path).expanduser()
        self.read_only = bool(read_only)
        if url is None:
            url = f"sqlite:///{self.path}{'?mode=ro' if self.read_only else ''}"
        self.url = url
        interval = store_commit_interval(commit_interval)
        heartbeat = store_heartbeat_interval(heartbeat_interval)
        self._w = Writer(self.path, timeout, interval, heartbeat, read_only=self.read_only)
        self._kept = KeptCacheRecords()  # cache records served from memory while still valid
        self._secret: bytes | None = None  # read from <path>.key on first use
        report_loose_permissions(self.path)
        # Flushes and closes when the store is garbage collected or the interpreter exits,
        # without keeping the store alive (the writer holds no reference back to it).
        self._finalizer = weakref.finalize(self, self._w.close, quiet=True)

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """Open the store at ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``;
        ``?mode=ro`` opens it read-only.

        Raises:
            ConfigurationError: the URL names no file, or has a query other than ``mode=ro``
                or ``mode=rw``.
            StoreError: as for the constructor.
        """
        rest = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
        path, _, query = rest.partition("?")
        if not path.strip() or path == ":memory:" or path.endswith("/"):
            raise ConfigurationError(
                f"store url={url!r} does not name a database file. Put the file's path after "
                f"three slashes, for example {_EXAMPLE_URLS}; or use 'memory://'."
            )
        if query not in ("", "mode=ro", "mode=rw"):
            raise ConfigurationError(
                f"store url={url!r} has the query {query!r}, which wfkit does not know. Use "
                "'?mode=ro' to open the store read-only, or no query to read and write."
            )
        return cls(path, url=url, read_only=query == "mode=ro")

    # writing ----------------------------------------------------------------------------
    def record_flow_run(self, run: FlowRunSnapshot) -> None:
        """Buffer an upsert of the flow run and the state it just entered."""
        self._w.add("flow_states", run, "flow_runs")

    def record_task_run(self, run: TaskRunSnapshot) -> None:
        """Buffer an upsert of the task run and the state it just entered."""
        self._w.add("task_states", run, "task_runs")

    def record_log(self, entry: LogEntry) -> None:
        """Buffer a log line."""
        self._w.add("logs", entry)

    def flush(self) -> None:
        """Write everything buffered in one transaction.

        Raises:
            StoreError: the write failed; the rows stay buffered for the next flush.
        """
        self._w.flush()

    def close(self) -> None:
        """Flush and close the connection; closing twice does nothing."""
        self._finalizer()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # reading ----------------------------------------------------------------------------
    def flow_runs(
        self,
        flow_name: str | None = None,
        state: str | None = None,
        tags: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[FlowRun]:
        """Flow runs in start order, filtered by flow name, by state name or type
        (case-insensitively), by tags (all of them), by start time (``since`` <= start <
        ``until``); ``limit`` keeps the most recent N."""
        where, args = _run_filter(flow_name, state, tags, since, until)
        limit = check_limit(limit)
        if limit is not None:
            where += f" ORDER BY {_START} DESC, seq DESC LIMIT {limit}"
        else:
            where += f" ORDER BY {_START}, seq"
        runs = self._w.read_runs(_records().FlowRun, where, args)
        return runs[::-1] if limit is not None else runs

    def flow_run_counts(
        self,
        flow_name: str | None = None,
        tags: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, int]:
        """How many flow runs matching the filters are in each state, by state name."""
        where, args = _run_filter(flow_name, None, tags, since, until)
        table = self._runs_table("flow_runs")  # (a dead process's runs are counted Crashed)
        where = where.replace("flow_runs.tags", f"{table}.tags")  # (the tag test names it)
        sql = f"SELECT state_name, count(*) FROM {table} {where} GROUP BY state_name"
        (rows,) = self._w.read([(sql, args)])
        return dict(rows)

    def flow_run(self, run_id: str) -> FlowRun:
        """One flow run by id.

        Raises:
            StoreError: there is no flow run with that id.
        """
        runs = self._w.read_runs(_records().FlowRun, "WHERE id = ?", [str(run_id)])
        if not runs:
            raise StoreError(f"No flow run with id {run_id!r} in store {self.url!r}.")
        return runs[0]

    def task_runs(
        self, flow_run_id: str | None = None, task_name: str | None = None
    ) -> list[TaskRun]:
        """Task runs in creation order, optionally filtered by flow run id and task name."""
        where, args = _where(("flow_run_id = ?", flow_run_id), ("task_name = ?", task_name))
        return self._w.read_runs(_records().TaskRun, f"{where} ORDER BY seq", args)

    def logs(self, run_id: str | None = None) -> list[LogRecord]:
        """Log records in the order they were recorded; ``run_id`` matches a flow run id or a
        task run id."""
        where, args = _where(("(flow_run_id = ? OR task_run_id = ?)", run_id))
        sql = f"SELECT flow_run_id, task_run_id, level, logger, message, at_us FROM logs {where}"
        (rows,) = self._w.read([(f"{sql} ORDER BY seq", args)])
        return [
            _records().LogRecord(
                flow_run_id=f, task_run_id=t, level=lv, logger=lg, message=m, timestamp=ts
            )
            for f, t, lv, lg, m, at in rows
            for ts in [_from_us(at) or _EPOCH]  # a log line always had a timestamp
        ]

    # cache records: written through, never buffered, so other processes see them at once --
    def write_cache(
        self,
        key: str,
        value: bytes,
        serializer: str,
        expires_at: datetime | None,
        task_name: str | None,
        created_at: datetime,
    ) -> None:
        """Store ``value`` under ``key`` (replacing any record with that key), committed
        before this returns."""
        self._check_writable("write a cache record")
        row = _cache_row(key, value, serializer, expires_at, task_name, created_at)
        with self._w.db_lock:
            self._kept.drop(key)
            self._w.execute(_UPSERT_CACHE, row, "write a cache record")
            if self._w.conn is not None:
                self._kept.keep(self._w.conn, _cache_record(row))

    def read_cache(self, key: str) -> CacheRecord | None:
        """The record stored under ``key``, expired or not; None if there is none.

        A record this store read or wrote is served from memory while no other connection
        has committed to the file since (see :mod:`wfkit.stores._sqlite_cache`).
        """
        w, kept = self._w, self._kept
        with w.db_lock:
            conn = w._connection()
            try:
                record = kept.lookup(conn, key)
                if record is not None:
                    return record
                row = conn.execute(_SELECT_CACHE_KEY, (key,)).fetchone()
            except sqlite3.Error:  # busy, say: the general path retries, or explains
                kept.forget()
                rows, _ = w.execute(_SELECT_CACHE_KEY, (key,), "read the cache")
                return _cache_record(rows[0]) if rows else None
            if row is None:
                return None
            record = _cache_record(row)
            kept.keep(conn, record)
            return record

    def cache_records(self) -> list[CacheRecord]:
        """Every cache record, oldest first (by ``created_at``, then key)."""
        sql = f"{_SELECT_CACHE} ORDER BY created_us, key"
        rows, _ = self._w.execute(sql, (), "read the cache")
        return [_cache_record(row) for row in rows]

    def delete_cache(self, key: str) -> bool:
        """Delete the record under ``key``; whether there was one."""
        self._check_writable("delete a cache record")
        sql = "DELETE FROM cache WHERE key = ?"
        with self._w.db_lock:
            self._kept.drop(key)
            return self._w.execute(sql, (key,), "delete a cache record")[1] > 0

    def prune_cache(self, now: datetime) -> int:
        """Delete the records whose ``expires_at`` is at or before ``now``; how many."""
        self._check_writable("prune the cache")
        sql = "DELETE FROM cache WHERE expires_us <= ?"
        expiry = _to_us(aware(now))
        with self._w.db_lock:
            self._kept.forget()
            return self._w.execute(sql, (expiry,), "prune the cache")[1]

    def cache_secret(self) -> bytes:
        """The key that authenticates this store's cache records: the 32 bytes in
        ``<path>.key``, read on first use.

        If that file is missing, a new key is made (owner-only, atomically, never replacing a
        key another process made meanwhile); the records signed with the lost key can never
        be checked again, so they are deleted, with one warning saying how many.

        A read-only store never makes a key: without the file, it uses a throwaway key, so
        every pickled record is a cache miss (with the usual warning).

        Raises:
            StoreError: the key file cannot be read or created, or holds no key.
        """
        secret = self._secret
        if secret is None:
            secret = self._secret = self._load_secret()
        return secret

    if _cache_locks.AVAILABLE:  # (not on Windows: no fcntl)

        def cache_lock(self, key: str) -> _cache_locks.SqliteCacheLock:
            """A lock on ``key`` for ``isolation_level="SERIALIZABLE"`` that holds across the
            processes sharing this file: a record lock in ``<path>.locks``, freed by the
            operating system if its process dies (see :mod:`wfkit.stores._sqlite_cache_locks`)."""
            return _cache_locks.SqliteCacheLock(self.path, key)

    def _load_secret(self) -> bytes:
        with self._w.db_lock:
            if self._secret is not None:
                return self._secret
            key_path = self.path.with_name(f"{self.path.name}.key")
            if self.read_only:
                return read_key(key_path) or secrets.token_bytes(KEY_SIZE)
            secret, created = read_or_create_key(key_path)
            if created:
                self._kept.forget()
                deleted = self._w.execute("DELETE FROM cache", (), "delete old cache records")[1]
                if deleted:
                    _log.warning(
                        "wfkit: the run store's secret key file %r was missing, so a new key "
                        "was made; the %d cached results signed with the old key cannot be "
                        "checked and were deleted (they are computed again when needed).",
                        str(key_path),
                        deleted,
                    )
            return secret

    # artifacts: see wfkit.stores._sqlite_artifacts ---------------------------------------
    def record_artifact(self, artifact: ArtifactRecord) -> None:
        """Write ``artifact`` (or replace the data of the one with its id), committed before
        this returns."""
        self._check_writable("record an artifact")
        self._w.call(lambda c: _artifacts.write(c, artifact), "record an artifact")

    def artifacts(self, key: str | None = None, run_id: str | None = None) -> list[ArtifactRecord]:
        """Artifacts in creation order, of one key and/or one flow or task run."""
        where, args = _where(("key = ?", key), ("(flow_run_id = ? OR task_run_id = ?)", run_id))
        return self._w.call(lambda c: _artifacts.read(c, where, tuple(args)), "read artifacts")

    def artifact(self, artifact_id: str) -> ArtifactRecord | None:
        """The artifact with this id; None if there is none."""
        found = self._w.call(
            lambda c: _artifacts.read(c, "WHERE id = ?", (artifact_id,)), "read an artifact"
        )
        return found[0] if found else None

    # events: see wfkit.stores._sqlite_events -----------------------------------------------
    def record_event(self, event: EventRecord) -> None:
        """Write ``event``, committed before this returns."""
        self._check_writable("record an event")
        self._w.call(lambda c: _events.write(c, event), "record an event")

    def events(
        self, event: str | None = None, run_id: str | None = None, resource_id: str | None = None
    ) -> list[EventRecord]:
        """Events in emission order, filtered by name (``"prefix.*"`` matches a prefix), run
        and resource id."""
        name = None if event is None or event.endswith("*") else event
        prefix = event[:-1] if event is not None and event.endswith("*") else None
        where, args = _where(
            ("event = ?", name),
            ("substr(event, 1, length(?)) = ?", prefix),
            ("(flow_run_id = ? OR task_run_id = ?)", run_id),
            ("resource_id = ?", resource_id),
        )
        return self._w.call(lambda c: _events.read(c, where, tuple(args)), "read events")

    def info(self) -> dict[str, Any]:
        """What ``wf store info`` shows: path, schema version, row counts and size on disk."""
        tables = ("flow_runs", "task_runs", "flow_run_states", "task_run_states", "logs", "cache")
        counts = [
            r[0][0] for r in self._w.read([(f"SELECT count(*) FROM {t}", ()) for t in tables])
        ]
        size = {s: _file_size(f"{self.path}{s}") for s in ("", "-wal")}
        return {
            "url": self.url,
            "path": str(self.path.resolve()),
            "schema_version": SCHEMA_VERSION,
            "flow_runs": counts[0],
            "task_runs": counts[1],
            "states": counts[2] + counts[3],
            "logs": counts[4],
            "cache_records": counts[5],
            "size_bytes": size[""],
            "wal_bytes": size["-wal"],
        }

    def __repr__(self) -> str:
        return f"SqliteStore({self.url!r})"

    def _check_writable(self, doing: str) -> None:
        if self.read_only:
            raise self._w.read_only_error(doing)


def _run_filter(
    flow_name: str | None,
    state: str | None,
    tags: Collection[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[str, list[Any]]:
    """The WHERE clause of :meth:`SqliteStore.flow_runs`'s filters, and its arguments."""
    return _where(
        ("flow_name = ?", flow_name),
        (
            "(wf_casefold(state_name) = ? OR wf_casefold(state_type) = ?)",
            state and state.casefold(),
        ),
        (f"{_START} >= ?", _to_us(check_moment("since", since))),
        (f"{_START} < ?", _to_us(check_moment("until", until))),
        *((_HAS_TAG, tag) for tag in check_tags(tags) or ()),
    )


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause joining the conditions whose value is not None, and its arguments."""
    used = [(sql, value) for sql, value in conditions if value is not None]
    args = [value for sql, value in used for _ in range(sql.count("?"))]
    return (f"WHERE {' AND '.join(sql for sql, _ in used)}" if used else ""), args


def _file_size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def _records() -> Any:
    """The record classes, imported when something first reads: defining them costs a few
    milliseconds that a script which only runs flows does not pay."""
    from wfkit.stores import records  # (lazy: see above)

    return records
