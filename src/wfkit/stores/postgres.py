"""``postgresql://user@host/db``: a run store in a PostgreSQL database, shared by many hosts.

Each process writes the database directly (no server in between), as it writes a SQLite file:
``record_*`` calls append to the same in-memory buffer, committed within the commit interval
(``WFKIT_STORE_COMMIT_INTERVAL``, default 100 ms) and at the end of every top-level run, in one
transaction per flush (see :mod:`wfkit.stores._pg_writer`). Owners and heartbeats work across
hosts: a run whose process stopped beating is shown ``Crashed`` by every reader.

The database needs a role that can create tables in it (the schema is made on first use, and
migrated forward under an advisory lock). ``?mode=ro`` opens it read-only: nothing is written,
and the session is read-only too. Timestamps are integer microseconds since the epoch, as in
SQLite; cached results are ``BYTEA``, signed with a secret kept in ``wfkit_meta``.

Needs the ``postgres`` extra: ``pip install 'wfkit[postgres]'`` (psycopg 3 and psycopg_pool).
"""

from __future__ import annotations

import os
import secrets
import weakref
from collections.abc import Collection, Sequence
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from wfkit.exceptions import ConfigurationError, StoreError
from wfkit.settings import store_commit_interval, store_heartbeat_interval
from wfkit.stores import _pg_limits as _limits
from wfkit.stores._artifact_records import (
    ARTIFACT_COLUMNS,
    ArtifactRecord,
    artifact_from_row,
    artifact_row,
)
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
from wfkit.stores._event_records import EVENT_COLUMNS, EventRecord, event_from_row, event_row
from wfkit.stores._limits import SlotGrant
from wfkit.stores._pg_cache_locks import PgCacheLock, PgCacheLocks
from wfkit.stores._pg_queries import LIVE_OWNER, PgQueries, records, summed
from wfkit.stores._pg_schema import SCHEMA_VERSION, parse_url
from wfkit.stores._pg_writer import PgWriter
from wfkit.stores._sql_limits import LimitsInTables
from wfkit.stores._sql_pages import RunPages
from wfkit.stores._sqlite_rows import _EPOCH, _cache_record, _cache_row, _from_us, _to_us
from wfkit.stores._trust import KEY_SIZE

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun

__all__ = ["SCHEMA_VERSION", "PostgresStore", "store_retry_timeout"]

_START = "coalesce(start_us, first_us)"  # as the flow_runs_start index has it
_CACHE_COLUMNS = "key, serializer, expires_us, task_name, created_us, value"
_UPSERT_CACHE = (
    f"INSERT INTO cache ({_CACHE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) "
    "DO UPDATE SET serializer = excluded.serializer, expires_us = excluded.expires_us, "
    "task_name = excluded.task_name, created_us = excluded.created_us, value = excluded.value"
)
_SELECT_CACHE = f"SELECT {_CACHE_COLUMNS} FROM cache"
_UPSERT_ARTIFACT = (
    f"INSERT INTO artifacts ({ARTIFACT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET data = excluded.data, "
    "description = excluded.description, updated_us = excluded.updated_us"
)
_INSERT_EVENT = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({', '.join(['%s'] * 9)})"
_DEFAULT_RETRY_TIMEOUT = 30.0


def store_retry_timeout(value: float | None = None) -> float:
    """Seconds a flush keeps retrying a lost server: ``value``, else the
    ``WFKIT_STORE_RETRY_TIMEOUT`` environment variable, else 30.

    Raises:
        ConfigurationError: it is not a number of seconds from 0 to 3600.
    """
    name = "retry_timeout"
    given: object = value
    if value is None:
        given = os.environ.get("WFKIT_STORE_RETRY_TIMEOUT")
        if given is None:
            return _DEFAULT_RETRY_TIMEOUT
        name = "WFKIT_STORE_RETRY_TIMEOUT"
    try:
        seconds = float(given)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ConfigurationError(
            f"{name}={given!r} is invalid: give the seconds a flush retries a lost PostgreSQL "
            "server, from 0 to 3600 (default 30)."
        )
    return seconds


class PostgresStore(LimitsInTables, RunPages, PgQueries):
    """A run store in a PostgreSQL database; see the module docstring.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database``, with libpq's options;
            ``?mode=ro`` opens it read-only.
        commit_interval: the most seconds a recorded row stays buffered (default the
            ``WFKIT_STORE_COMMIT_INTERVAL`` setting, 0.1).
        heartbeat_interval: seconds between this process's heartbeats while it has live runs
            (default ``WFKIT_HEARTBEAT_INTERVAL``, 10); other hosts judge its runs Crashed
            after three.
        retry_timeout: seconds the flush at the end of a run retries a lost server (default
            ``WFKIT_STORE_RETRY_TIMEOUT``, 30).

    Raises:
        ConfigurationError: the URL names no database or has an unknown option; an interval
            is out of range; psycopg is not installed.
        StoreError: the server cannot be reached or refused the login, the database holds
            another application's tables of the same names, or a newer wfkit schema.
    """

    _limit_sql: ClassVar[ModuleType] = _limits  # (see LimitsInTables)
    _mark: ClassVar[str] = "%s"  # (see RunPages)

    def __init__(
        self,
        url: str,
        *,
        commit_interval: float | None = None,
        heartbeat_interval: float | None = None,
        retry_timeout: float | None = None,
    ) -> None:
        self.url = url
        self._pg = parse_url(url)
        self.read_only = self._pg.read_only
        self._w = PgWriter(
            self._pg,
            store_commit_interval(commit_interval),
            store_heartbeat_interval(heartbeat_interval),
            store_retry_timeout(retry_timeout),
        )
        self._secret: bytes | None = None
        self._locks = PgCacheLocks(self._pg)
        self._finalizer = weakref.finalize(self, _close, self._w, self._locks)

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Open the store at a ``postgresql://`` (or ``postgres://``) URL."""
        return cls(url)

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
        """Write everything buffered in one transaction, retrying a lost server for the
        retry timeout.

        Raises:
            StoreError: the rows could not be written (the message counts them); they stay
                buffered for the next flush.
        """
        self._w.flush()

    def close(self) -> None:
        """Flush and close the connections; closing twice does nothing."""
        self._finalizer()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self._pg.shown!r})"

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
        """Flow runs in start order, filtered by every argument given (see
        :meth:`wfkit.stores.RunReader.flow_runs`)."""
        where, args = _run_filter(flow_name, state, tags, since, until)
        limit = check_limit(limit)
        if limit is not None:
            where += f" ORDER BY {_START} DESC NULLS LAST, seq DESC LIMIT {limit}"
        else:
            where += f" ORDER BY {_START} NULLS FIRST, seq"
        runs = self._w.read_runs(records().FlowRun, where, args)
        return runs[::-1] if limit is not None else runs

    def flow_run_counts(
        self,
        flow_name: str | None = None,
        tags: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, int]:
        """How many flow runs matching the filters are in each state, by state name (the
        live runs of a process that is gone count as ``Crashed``)."""
        where, args = _run_filter(flow_name, None, tags, since, until)
        self._w.record_crashed()  # (read-only: nothing is recorded, _shown_states shows it)
        sql = f"SELECT state_name, count(*), {LIVE_OWNER} FROM flow_runs {where} GROUP BY 1, 3"
        return summed(self._shown_states(self._w.read([(sql, args)])[0], 0))

    def flow_run(self, run_id: str) -> FlowRun:
        """One flow run by id.

        Raises:
            StoreError: there is no flow run with that id.
        """
        runs = self._w.read_runs(records().FlowRun, "WHERE id = %s", [str(run_id)])
        if not runs:
            raise StoreError(f"No flow run with id {run_id!r} in store {self._pg.shown!r}.")
        return runs[0]

    def task_runs(
        self, flow_run_id: str | None = None, task_name: str | None = None
    ) -> list[TaskRun]:
        """Task runs in creation order, optionally filtered by flow run id and task name."""
        where, args = _where(("flow_run_id = %s", flow_run_id), ("task_name = %s", task_name))
        return self._w.read_runs(records().TaskRun, f"{where} ORDER BY seq", args)

    def logs(self, run_id: str | None = None) -> list[LogRecord]:
        """Log records in the order they were recorded; ``run_id`` matches a flow run id or a
        task run id."""
        where, args = _where(("(flow_run_id = %s OR task_run_id = %s)", run_id))
        sql = f"SELECT flow_run_id, task_run_id, level, logger, message, at_us FROM logs {where}"
        (rows,) = self._w.read([(f"{sql} ORDER BY seq", args)])
        LogRecord = records().LogRecord
        return [
            LogRecord(flow_run_id=f, task_run_id=t, level=lv, logger=lg, message=m, timestamp=ts)
            for f, t, lv, lg, m, at in rows
            for ts in [_from_us(at) or _EPOCH]  # a log line always had a timestamp
        ]

    # cache records: written through, so that every process sees them at once -----------
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
        self._w.execute(_UPSERT_CACHE, row, "write a cache record")

    def read_cache(self, key: str) -> CacheRecord | None:
        """The record stored under ``key``, expired or not; None if there is none."""
        rows, _ = self._w.execute(f"{_SELECT_CACHE} WHERE key = %s", (key,), "read the cache")
        return _cache_record(rows[0]) if rows else None

    def cache_records(self) -> list[CacheRecord]:
        """Every cache record, oldest first (by ``created_at``, then key)."""
        sql = f"{_SELECT_CACHE} ORDER BY created_us, key"
        return [_cache_record(row) for row in self._w.execute(sql, (), "read the cache")[0]]

    def delete_cache(self, key: str) -> bool:
        """Delete the record under ``key``; whether there was one."""
        self._check_writable("delete a cache record")
        sql = "DELETE FROM cache WHERE key = %s"
        return self._w.execute(sql, (key,), "delete a cache record")[1] > 0

    def prune_cache(self, now: datetime) -> int:
        """Delete the records whose ``expires_at`` is at or before ``now``; how many."""
        self._check_writable("prune the cache")
        sql = "DELETE FROM cache WHERE expires_us <= %s"
        return self._w.execute(sql, (_to_us(aware(now)),), "prune the cache")[1]

    def cache_secret(self) -> bytes:
        """The key that authenticates this store's cache records: 32 random bytes kept in
        ``wfkit_meta``, made by the first process that needs it (the others read it).

        Whoever can write the cache table can read it too, unless the database's owner
        restricts ``wfkit_meta`` (see the README); a read-only store without a key uses a
        throwaway one (every pickled record is then a miss).

        Raises:
            StoreError: it cannot be read or made.
        """
        if self._secret is None:
            made = secrets.token_bytes(KEY_SIZE).hex()
            if not self.read_only:
                self._w.execute(
                    "INSERT INTO wfkit_meta (key, value) VALUES ('cache_secret', %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (made,),
                    "make the cache secret",
                )
            sql = "SELECT value FROM wfkit_meta WHERE key = 'cache_secret'"
            rows, _ = self._w.execute(sql, (), "read the cache secret")
            self._secret = bytes.fromhex(rows[0][0] if rows else made)
        return self._secret

    def cache_lock(self, key: str) -> PgCacheLock:
        """A lock on ``key`` for ``isolation_level="SERIALIZABLE"`` that holds across every
        host using the database: a session-level advisory lock (see
        :mod:`wfkit.stores._pg_cache_locks`), freed by the server if its process dies."""
        return self._locks.lock(key)

    # concurrency limits: see wfkit.stores._sql_limits and _pg_limits ---------------------
    def acquire_slots(
        self, names: Sequence[str], occupy: int, now: float, holder: str, lease: bool
    ) -> SlotGrant:
        """Take ``occupy`` slots on every existing limit in ``names``, or none, in one
        transaction that locks those limits' rows; leases are this process's and end with
        it (on any host: see :mod:`wfkit.stores._pg_owners`)."""
        grant = super().acquire_slots(names, occupy, now, holder, lease)
        if grant.lease_id is not None:
            self._w.keep_beating()
        return grant

    # artifacts and events: written through, so that every host sees them at once --------
    def record_artifact(self, artifact: ArtifactRecord) -> None:
        """Write ``artifact`` (or replace the data of the one with its id), committed before
        this returns."""
        self._check_writable("record an artifact")
        self._w.execute(_UPSERT_ARTIFACT, artifact_row(artifact), "record an artifact")

    def artifacts(self, key: str | None = None, run_id: str | None = None) -> list[ArtifactRecord]:
        """Artifacts in creation order, of one key and/or one flow or task run."""
        where, args = _where(("key = %s", key), ("(flow_run_id = %s OR task_run_id = %s)", run_id))
        sql = f"SELECT {ARTIFACT_COLUMNS} FROM artifacts {where} ORDER BY seq"
        return [artifact_from_row(r) for r in self._w.execute(sql, args, "read artifacts")[0]]

    def artifact(self, artifact_id: str) -> ArtifactRecord | None:
        """The artifact with this id; None if there is none."""
        sql = f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE id = %s"
        rows, _ = self._w.execute(sql, (str(artifact_id),), "read an artifact")
        return artifact_from_row(rows[0]) if rows else None

    def record_event(self, event: EventRecord) -> None:
        """Write ``event``, committed before this returns."""
        self._check_writable("record an event")
        self._w.execute(_INSERT_EVENT, event_row(event), "record an event")

    def events(
        self, event: str | None = None, run_id: str | None = None, resource_id: str | None = None
    ) -> list[EventRecord]:
        """Events in emission order, filtered by name (``"prefix.*"`` matches a prefix), run
        and resource id."""
        name = None if event is None or event.endswith("*") else event
        prefix = event[:-1] if event is not None and event.endswith("*") else None
        where, args = _where(
            ("event = %s", name),
            ("event LIKE %s", None if prefix is None else _like_prefix(prefix)),
            ("(flow_run_id = %s OR task_run_id = %s)", run_id),
            ("resource_id = %s", resource_id),
        )
        sql = f"SELECT {EVENT_COLUMNS} FROM events {where} ORDER BY seq"
        return [event_from_row(r) for r in self._w.execute(sql, args, "read events")[0]]

    def info(self) -> dict[str, Any]:
        """What ``wf store info`` shows: the URL (no password), schema version, row counts."""
        tables = ("flow_runs", "task_runs", "flow_run_states", "task_run_states", "logs", "cache")
        counts = [
            r[0][0] for r in self._w.read([(f"SELECT count(*) FROM {t}", ()) for t in tables])
        ]
        return {
            "url": self._pg.shown,
            "schema_version": SCHEMA_VERSION,
            "flow_runs": counts[0],
            "task_runs": counts[1],
            "states": counts[2] + counts[3],
            "logs": counts[4],
            "cache_records": counts[5],
        }

    def _check_writable(self, doing: str) -> None:
        if self.read_only:
            raise self._w.read_only_error(doing)


def _close(writer: PgWriter, locks: PgCacheLocks) -> None:
    """Close the store's connections: its writer's (flushing first), then the idle lock
    connections."""
    try:
        writer.close(quiet=True)
    finally:
        locks.close()


def _run_filter(
    flow_name: str | None,
    state: str | None,
    tags: Collection[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[str, list[Any]]:
    """The WHERE clause of :meth:`PostgresStore.flow_runs`'s filters, and its arguments."""
    folded = state.casefold() if isinstance(state, str) else state
    return _where(
        ("flow_name = %s", flow_name),
        ("(lower(state_name) = %s OR lower(state_type) = %s)", folded),
        (f"{_START} >= %s", _to_us(check_moment("since", since))),
        (f"{_START} < %s", _to_us(check_moment("until", until))),
        *(("tags::jsonb ? %s", tag) for tag in check_tags(tags) or ()),
    )


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching the strings that start with ``prefix`` (its ``%``, ``_`` and
    backslashes escaped)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause joining the conditions whose value is not None, and its arguments."""
    used = [(sql, value) for sql, value in conditions if value is not None]
    args = [value for sql, value in used for _ in range(sql.count("%s"))]
    return (f"WHERE {' AND '.join(sql for sql, _ in used)}" if used else ""), args
