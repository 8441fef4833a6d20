"""The PostgreSQL store's writer: the SQLite writer's buffer on a pool of connections.

:class:`PgWriter` keeps the buffer, the commit window, the idle committer, the heartbeats and
the fork handling of :class:`~wfkit.stores._sqlite_writer.Writer` (they are not about SQLite)
and replaces what touches the database:

- a flush is one transaction: the runs are copied (``COPY``) into this session's staging
  tables, one statement per kind upserts them and gives back their seqs (leaving out the
  runs that stay ``Crashed``), their states and the log lines go in by ``COPY``, and this
  owner's heartbeat is refreshed;
- a buffer that comes due while a flow records is handed to the process's committer thread
  (:meth:`PgWriter.flush_due`): the server works while the flow goes on, where SQLite's
  writes are done on the recording thread;
- connections come from a ``psycopg_pool`` pool, made when the store is opened and opened on
  first use (the first connection, which checks the schema and registers the owner, is a
  plain one: its error says why the server refused);
- a flush that cannot reach the server keeps its rows. The flush at the end of a top-level
  run (and on close) retries with backoff for ``retry_timeout`` seconds, then raises a
  :class:`~wfkit.exceptions.StoreError` that counts the rows not written; a flush the commit
  window starts tries once and waits longer before the next attempt, so that recording never
  stalls on a lost server.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import wfkit._realtime as _realtime
import wfkit.stores._sqlite_writer as _sw
from wfkit.exceptions import StoreError
from wfkit.states import State, StateType
from wfkit.stores._base import STATE_TYPE_VALUES
from wfkit.stores._pg_owners import (
    HEARTBEAT,
    beat_if_live,
    dead_owners,
    record_crashed,
    register_owner,
)
from wfkit.stores._pg_schema import PgUrl, canceled_hint, connect, ensure_schema
from wfkit.stores._sqlite_batch import _batch_rows, _storable
from wfkit.stores._sqlite_owners import now_us
from wfkit.stores._sqlite_rows import (
    _FLOW_COLUMNS,
    _FLOW_FIELDS,
    _KEEP_FIRST,
    _TASK_COLUMNS,
    _TASK_FIELDS,
    _from_us,
    _record,
)

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, TaskRun

__all__ = ["PgWriter"]

_R = TypeVar("_R", "FlowRun", "TaskRun")
_T = TypeVar("_T")
_log = logging.getLogger("wfkit.stores")
_CRASHED = STATE_TYPE_VALUES[StateType.CRASHED]
_FINAL = ("CANCELLED", "COMPLETED", "CRASHED", "FAILED")
_BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)  # then every 4 s until the retry timeout
_AUTO_BACKOFF_MAX = 5.0  # seconds between automatic flush attempts while the server is lost
_DATA_ERRORS = (UnicodeError, ValueError, TypeError, OverflowError)  # a value psycopg cannot send
_abandoned: list[Any] = []  # pools inherited through fork: never use, never close
# Rows each pooled connection staged since its staging tables were last vacuumed.
_staged: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def _store(kind: str, columns: Sequence[str]) -> str:
    """One statement that upserts the staged runs of ``kind``, empties their staging table
    (both parts see the rows as they were when the statement began) and returns the (id,
    seq) of each run it wrote. A run stored Crashed is left as it is (and not returned: its
    states are dropped too) unless the new row is Crashed too.

    (The states are not staged and joined to the runs by the server: after the staging
    tables are vacuumed their statistics say "empty", and the planner then joins a flush's
    thousands of states to its runs by a nested loop, at ~160 µs a task.)"""
    table, names = f"{kind}s", ", ".join(columns)
    updates = ", ".join(
        f"{c} = coalesce({table}.{c}, excluded.{c})" if c in _KEEP_FIRST else f"{c} = excluded.{c}"
        for c in columns[1:]
    )
    return (
        f"WITH written AS (INSERT INTO {table} ({names}) SELECT {names} FROM wfkit_stage_{table} "
        f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE {table}.state_type != '{_CRASHED}' "
        f"OR excluded.state_type = '{_CRASHED}' RETURNING id, seq), "
        f"emptied AS (DELETE FROM wfkit_stage_{table}) SELECT id, seq FROM written"
    )


def _staging(kind: str, columns: Sequence[str]) -> str:
    """This session's staging table of the runs of ``kind``. It is emptied by the statement
    that reads it (``_store``), not by ``ON COMMIT DELETE ROWS``: that truncates every such
    table at each commit, which cost 0.25 ms a table on a quiet machine and 2-4 ms under
    disk load (file operations). Its dead rows are vacuumed now and then instead
    (``_VACUUM_ROWS``), without giving the space back to the file system (the next flush
    reuses it)."""
    return (
        f"CREATE TEMP TABLE wfkit_stage_{kind}s WITH (vacuum_truncate = false) AS "
        f"SELECT {', '.join(columns)} FROM {kind}s WITH NO DATA"
    )


_KINDS = {"flow_run": _FLOW_COLUMNS, "task_run": _TASK_COLUMNS}
_STORES = {kind: _store(kind, columns) for kind, columns in _KINDS.items()}
_STAGING = [_staging(kind, columns) for kind, columns in _KINDS.items()]
_VACUUM = "VACUUM " + ", ".join(f"wfkit_stage_{kind}s" for kind in _KINDS)
_VACUUM_ROWS = 20_000  # runs a connection stages between two vacuums of its staging tables
_STAGE_COPIES = {
    kind: f"COPY wfkit_stage_{kind}s ({', '.join(columns)}) FROM STDIN"
    for kind, columns in _KINDS.items()
}
_COPY_STATES = {
    kind: f"COPY {kind}_states (run_seq, type, name, at_us, message) FROM STDIN" for kind in _KINDS
}
_COPY_LOGS = "COPY logs (flow_run_id, task_run_id, level, logger, message, at_us) FROM STDIN"


class _Dropped(StoreError):
    """Rows that could not be stored even cleaned: dropped, not put back in the buffer."""


class PgWriter(_sw.Writer):
    """The buffer and connections of one PostgreSQL store (see the module docstring)."""

    conn: Any  # the pool (None after a fork, until first used)

    def __init__(
        self,
        url: PgUrl,
        commit_interval: float,
        heartbeat_interval: float,
        retry_timeout: float,
    ) -> None:
        self.pg = url
        self.seen_dead: dict[int, int] = {}  # read-only: owner id -> when first seen dead
        self.retry_timeout = retry_timeout
        self._auto_backoff = 0.0
        self.handed_over = False  # the recording thread asked the committer to flush
        super().__init__(Path(url.shown), 0.0, commit_interval, heartbeat_interval, url.read_only)

    # connections ------------------------------------------------------------------------
    def _open(self) -> Any:
        """Check the schema (creating it), register this process as an owner and record dead
        owners' runs as Crashed, on one plain connection; then the (unopened) pool."""
        import psycopg_pool  # (optional extra: only a PostgreSQL store needs it)

        conn = connect(self.pg)
        try:
            ensure_schema(conn, self.pg)
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")
            else:
                now = now_us()
                self.owner = register_owner(conn, now, self.heartbeat_interval)
                record_crashed(conn, self.owner, now, self.progress)
        except Exception as exc:
            raise self._error(exc, "open the store") from exc
        finally:
            conn.close()
        return psycopg_pool.ConnectionPool(
            self.pg.conninfo,  # (its options make a read-only store's sessions read-only)
            min_size=1,
            max_size=4,
            open=False,
            kwargs={"autocommit": True},
            configure=None if self.read_only else _stage,
            check=psycopg_pool.ConnectionPool.check_connection,
            name=f"wfkit {self.pg.shown}",
        )

    def _pool(self) -> Any:
        pool: Any = self._connection()
        if pool.closed:
            pool.open(wait=False)
        return pool

    def closed_error(self) -> StoreError:
        return StoreError(
            f"The run store {self.pg.shown!r} is closed; open it again with open_store(url) "
            "to record or read runs."
        )

    def read_only_error(self, doing: str) -> StoreError:
        return StoreError(
            f"Cannot {doing}: the run store {self.pg.shown!r} was opened read-only (mode=ro). "
            "Open it without mode=ro to write."
        )

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return StoreError(
            f"Could not {doing} in the PostgreSQL run store ({self.pg.where()}): {reason}"
            + canceled_hint(exc)
        )

    def call(self, action: Callable[[Any], _T], doing: str, timeout: float = 5.0) -> _T:
        """``action(connection)`` on a pooled connection under the store's lock, retried
        once after a broken connection or a deadlock; a failure is a StoreError."""
        import psycopg  # (optional extra)
        import psycopg_pool  # (optional extra)

        transient = (psycopg.OperationalError, psycopg_pool.PoolTimeout)
        with self.db_lock:
            for attempt in (1, 2):
                try:
                    with self._pool().connection(timeout=timeout) as conn:
                        return action(conn)
                except transient as exc:
                    if attempt == 2 or self.closed:
                        raise self._error(exc, doing) from exc
                except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                    raise self._error(exc, doing) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # writing ----------------------------------------------------------------------------
    def flush_due(self, blocking: bool) -> None:
        """Hand the due buffer to the committer thread, which writes it while this thread
        goes on recording (the server's work overlaps the caller's); flush here when the
        buffer runs far ahead (``blocking``: the committer falls behind) or when every row
        must be committed before recording goes on (a commit interval of 0)."""
        if blocking or not self.interval:
            self.auto_flush(blocking)
        elif not self.handed_over:
            self.handed_over = True
            _sw._committer.wake()

    def commit_if_due(self) -> float | None:
        """For the committer: flush a buffer handed over by :meth:`flush_due` (soon again if
        another thread holds the connection), else as the SQLite writer does."""
        busy = False
        # (Not while a failed attempt's backoff runs: it moved ``oldest`` ahead.)
        if self.handed_over and _realtime.monotonic() >= self.oldest:
            if self.db_lock.acquire(blocking=False):
                try:
                    self.handed_over = False
                    self.auto_flush(blocking=False)
                finally:
                    self.db_lock.release()
            else:
                busy = True
        due = super().commit_if_due()
        if busy and due is not None:
            return min(due, _realtime.monotonic() + _sw._RETRY_SECONDS)
        return due

    def auto_flush(self, blocking: bool) -> None:
        """One attempt, unless another thread holds the connection and ``blocking`` is
        false; a failure is logged and the next attempt waits longer (up to 5 s)."""
        if self.db_lock.acquire(blocking=blocking):
            try:
                self.flush(patient=False)
                self._auto_backoff = 0.0
            except StoreError as exc:
                self._auto_backoff = min(max(2 * self._auto_backoff, 0.2), _AUTO_BACKOFF_MAX)
                with self.lock:
                    self.oldest = _realtime.monotonic() + self._auto_backoff
                _log.warning("wfkit: automatic flush of the run store failed: %s", exc)
            finally:
                self.db_lock.release()

    def flush(self, patient: bool = True) -> None:
        """Write the buffer in one transaction; ``patient``: retry a lost server with backoff
        for ``retry_timeout`` seconds.

        Raises:
            StoreError: it could not be written; the rows stay buffered.
        """
        with self.db_lock:
            with self.lock:
                if not self.pending:
                    return
                batch: tuple[Any, ...] = (self.flow_runs, self.task_runs, self.flow_states)
                batch += (self.task_states, self.logs)
                self.flow_runs, self.task_runs = {}, {}
                self.flow_states, self.task_states, self.logs = [], [], []
                self.pending = 0
            try:
                self._connection()  # (after a fork: registers the child as an owner)
                assert self.owner is not None  # registered when the store was opened
                owner = self.owner
                rows = list(_batch_rows(owner, *batch))  # (NaN NULLs: see _nan_as_null)
                self._write_patiently(rows, owner, patient)
                _sw._heart.poke(self.heartbeat_interval)  # the batch may hold live runs
            except _Dropped:
                raise
            except BaseException:
                self._put_back(batch)
                raise

    def _write_patiently(self, rows: list[list[Any]], owner: int, patient: bool) -> None:
        import psycopg  # (optional extra)

        deadline = _realtime.monotonic() + (self.retry_timeout if patient else 0.0)
        delays = iter(_BACKOFF)
        count = sum(len(part) for part in rows[2:])
        cleaned = False
        while True:
            try:
                return self.call(_writing(rows, owner), "write runs", 2.0)
            except (StoreError, *_DATA_ERRORS) as exc:
                cause = exc.__cause__ if isinstance(exc, StoreError) else exc
                if isinstance(cause, (psycopg.DataError, *_DATA_ERRORS)):
                    if cleaned:
                        raise _Dropped(
                            f"Could not store {count} buffered rows in the PostgreSQL run "
                            f"store ({self.pg.where()}) even with their values cleaned "
                            f"({cause!r}); they were dropped so that later runs can still be "
                            "recorded. Please report this."
                        ) from cause
                    rows = [[tuple(map(_cleaned, r)) for r in part] for part in rows]
                    cleaned = True
                    continue
                left = deadline - _realtime.monotonic()
                lost = isinstance(cause, psycopg.OperationalError | _pool_timeout())
                if left <= 0 or self.closed or not lost:
                    waited = f" for {self.retry_timeout:g} s" if patient else ""
                    raise StoreError(
                        f"{count} records (states and log lines) could not be written to the "
                        f"PostgreSQL run store ({self.pg.where()}){waited}: {exc} They stay "
                        "buffered in this process (a later flush retries them); what was "
                        "committed before is intact. Check that the server is up and "
                        "reachable, or raise WFKIT_STORE_RETRY_TIMEOUT."
                    ) from exc
                threading.Event().wait(min(next(delays, _BACKOFF[-1]), left))

    # reading ----------------------------------------------------------------------------
    def read(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Flush, then run ``queries`` in one snapshot (a REPEATABLE READ transaction)."""
        self.flush()

        def run(conn: Any) -> list[list[Any]]:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                return [conn.execute(sql, args).fetchall() for sql, args in queries]

        return self.call(run, "read runs")

    def execute(self, sql: str, args: Sequence[Any], doing: str) -> tuple[list[Any], int]:
        """Run one statement in its own transaction; its rows and row count."""

        def run(conn: Any) -> tuple[list[Any], int]:
            cursor = conn.execute(sql, args)
            return (cursor.fetchall() if cursor.description else []), cursor.rowcount

        return self.call(run, doing)

    def record_crashed(self) -> None:
        """Record dead owners' live runs as Crashed (a read-only store only shows them so)."""
        if not self.read_only:
            now = now_us()
            self.call(lambda c: record_crashed(c, self.owner, now, self.progress), "crash runs")

    def beat(self) -> bool:
        """For the heartbeat thread: refresh this owner's heartbeat while it has live runs."""
        if self.closed or self.owner is None:
            return False
        owner = self.owner
        return self.call(lambda conn: beat_if_live(conn, owner, now_us()), "send a heartbeat")

    def read_runs(self, cls: type[_R], selection: str, args: Sequence[Any]) -> list[_R]:
        """The runs chosen by ``selection`` (a WHERE/ORDER BY clause), with their histories;
        read-only, the live runs of dead owners end with a ``Crashed`` state not stored."""
        self.record_crashed()
        flow = cls.__name__ == "FlowRun"
        kind, fields = ("flow_run", _FLOW_FIELDS) if flow else ("task_run", _TASK_FIELDS)
        queries: list[tuple[str, Sequence[Any]]] = [
            (f"SELECT seq, owner, {', '.join(fields)} FROM {kind}s {selection}", args),
            (
                f"SELECT run_seq, type, name, at_us, message FROM {kind}_states WHERE run_seq "
                f"IN (SELECT seq FROM {kind}s {selection}) ORDER BY run_seq, seq",
                args,
            ),
        ]
        rows, state_rows = self.read(queries)
        histories: dict[int, list[State]] = {}
        for run_seq, type_, name, at_us, message in state_rows:
            state = State(StateType(type_), name, timestamp=_from_us(at_us), message=message)
            histories.setdefault(run_seq, []).append(state)
        if self.read_only:
            self._show_crashed(rows, histories)
        return [_record(cls, fields, row[2:], histories[row[0]]) for row in rows]

    def _show_crashed(self, rows: list[Any], histories: dict[int, list[State]]) -> None:
        """End the histories of the live runs of dead owners (``rows``: seq, owner, ...)
        with a ``Crashed`` state at the moment this store first saw the owner dead."""
        owners = {row[1] for row in rows if histories[row[0]][-1].type.value not in _FINAL}
        dead = self.dead_among(owners)
        now = now_us()
        for row in rows:
            history = histories[row[0]]
            if row[1] in dead and history[-1].type.value not in _FINAL:
                at = _from_us(self.seen_dead.setdefault(row[1], now))
                crashed = State(StateType.CRASHED, "Crashed", timestamp=at, message=dead[row[1]])
                history.append(crashed)

    def keep_beating(self) -> None:
        """Start the heartbeat thread (if it is not running): this process holds slots
        now, which other hosts free if its heartbeat stops (see ``beat_if_live``)."""
        _sw._heart.poke(self.heartbeat_interval)

    def dead_among(self, owners: set[int]) -> dict[int, str]:
        """Read-only: {id: why gone} of the ``owners`` that are gone (a store that writes
        has recorded their runs Crashed before reading, see :meth:`record_crashed`)."""
        if not owners or not self.read_only:
            return {}
        now = now_us()
        dead = self.call(lambda c: dead_owners(c, None, now, self.progress), "read owners")
        return {owner: why for owner, why in dead if owner in owners}

    def after_fork(self) -> None:
        """In a forked child: the parent's pool (its sockets, its threads) is not ours."""
        self._new_locks_and_buffer()
        self.handed_over = False  # (to the parent's committer)
        if self.conn is not None:
            _abandoned.append(self.conn)
            self.conn = None
        if self.owner is not None:
            self.owner = None  # registered again with the new connection


def _cleaned(value: Any) -> Any:
    """``value`` as PostgreSQL stores it (only after a write failed on a value): text without
    NUL characters or lone surrogates, integers that fit in a BIGINT."""
    value = _storable(value)
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _pool_timeout() -> type[Exception]:
    import psycopg_pool  # (optional extra)

    return psycopg_pool.PoolTimeout  # type: ignore[no-any-return]


def _stage(conn: Any) -> None:
    """Create a new pooled connection's staging tables (once: they live as long as it)."""
    for sql in _STAGING:
        conn.execute(sql)


@functools.cache
def _nan_as_null() -> type:
    """A dumper that writes a NaN as NULL: the rows of ``_batch_rows`` hold NaN for NULL
    (SQLite binds it faster than None), and dumping it so spares rebuilding every row."""
    from psycopg.adapt import Dumper  # (optional extra)

    class NanAsNull(Dumper):
        def dump(self, obj: float) -> bytes | None:
            return None if obj != obj else repr(obj).encode()

    return NanAsNull


def _writing(rows: list[list[Any]], owner: int) -> Callable[[Any], None]:
    return lambda conn: _write(conn, rows, owner)


def _write(conn: Any, rows: list[list[Any]], owner: int) -> None:
    flows, tasks, flow_states, task_states, logs = rows
    staged = _staged.get(conn, 0)  # dead rows in its staging tables
    if staged > _VACUUM_ROWS:
        conn.execute(_VACUUM)  # (outside the transaction, as VACUUM must be)
        staged = 0
    with conn.transaction():
        conn.execute(HEARTBEAT, (now_us(), owner))
        with conn.cursor() as cursor:
            cursor.adapters.register_dumper(float, _nan_as_null())
            for kind, runs, states in (
                ("flow_run", flows, flow_states),
                ("task_run", tasks, task_states),
            ):
                if runs:
                    _copy(cursor, _STAGE_COPIES[kind], runs)
                    seqs = dict(cursor.execute(_STORES[kind]).fetchall())
                    with cursor.copy(_COPY_STATES[kind]) as copy:
                        write, seq_of = copy.write_row, seqs.get
                        # (Named, not starred: a starred target builds a list a state.)
                        for run_id, type_, name, at_us, message in states:
                            seq = seq_of(run_id)
                            if seq is not None:  # else: the run stays Crashed
                                write((seq, type_, name, at_us, message))
            if logs:
                _copy(cursor, _COPY_LOGS, logs)
    _staged[conn] = staged + len(flows) + len(tasks)


def _copy(cursor: Any, statement: str, rows: list[tuple[Any, ...]]) -> None:
    with cursor.copy(statement) as copy:
        write = copy.write_row
        for row in rows:
            write(row)
