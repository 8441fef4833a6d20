"""The SQLite store's writer: one connection, the in-memory buffer and its commits.

A :class:`Writer` is what a :class:`~wfkit.stores.sqlite.SqliteStore` writes and reads
through: ``add`` buffers a row, the buffer is committed when it grows past ``_MAX_PENDING``
rows, when its oldest row is older than the commit interval (on the recording thread, or by
the process's :class:`~wfkit.stores._sqlite_batch.IdleCommitter` for a buffer its caller has
left), before every read and on close. It also keeps the process's owner row beating
(:class:`~wfkit.stores._sqlite_owners.HeartbeatThread`) and starts afresh in a forked child.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import wfkit._realtime as _realtime
from wfkit.exceptions import StoreError
from wfkit.states import State, StateType
from wfkit.stores._base import FlowRunSnapshot, LogEntry, TaskRunSnapshot
from wfkit.stores._sqlite_batch import DATA_ERRORS, IdleCommitter, write_batch
from wfkit.stores._sqlite_owners import (
    HeartbeatThread,
    Progress,
    beat_if_live,
    connect_as_owner,
    now_us,
    record_crashed,
)
from wfkit.stores._sqlite_readonly import (
    connect_read_only,
    crashed_states,
    refresh_dead_owners,
)
from wfkit.stores._sqlite_rows import _FLOW_FIELDS, _TASK_FIELDS, _from_us, _record
from wfkit.stores._sqlite_schema import retrying

__all__ = ["Writer"]

_R = TypeVar("_R", "FlowRun", "TaskRun")
_T = TypeVar("_T")

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, TaskRun

_log = logging.getLogger("wfkit.stores")
_MAX_PENDING = 1000  # buffered state + log rows that trigger a flush
# How soon the committer looks again at a due buffer it could not flush (another thread
# held the connection): often enough to keep the window, rarely enough not to spin.
_RETRY_SECONDS = 0.01

_log = logging.getLogger("wfkit.stores")
_live_writers: weakref.WeakSet[Writer] = weakref.WeakSet()
_abandoned: list[sqlite3.Connection] = []  # inherited through fork: never use, never close
_committer = IdleCommitter(lambda: list(_live_writers))
_heart = HeartbeatThread(lambda: list(_live_writers))


class Writer:
    """The connection, the buffer and the locks of one store: kept apart from the store so
    that the store's finalizer can flush them without keeping the store alive."""

    def __init__(
        self,
        path: Path,
        timeout: float,
        commit_interval: float,
        heartbeat_interval: float,
        read_only: bool = False,
    ) -> None:
        self.path, self.timeout, self.closed = path, timeout, False
        self.read_only = read_only
        self.interval = commit_interval  # seconds the oldest buffered row may wait
        self.heartbeat_interval = heartbeat_interval
        self.progress: Progress = {}  # what this store saw of other hosts' heartbeats
        self._new_locks_and_buffer()
        self.owner: int | None = None  # this process's row in the owners table
        self.conn: sqlite3.Connection | None = self._open()
        _live_writers.add(self)

    def _open(self) -> sqlite3.Connection:
        if self.read_only:  # not an owner: it records nothing
            return connect_read_only(self.path, self.timeout)
        conn, self.owner = connect_as_owner(
            self.path, self.timeout, self.heartbeat_interval, self.progress
        )
        return conn

    def _new_locks_and_buffer(self) -> None:
        self.lock = threading.Lock()  # guards the buffer; held only for a few appends
        self.db_lock = threading.RLock()  # guards the connection: one flush or read at a time
        self.flow_runs: dict[str, FlowRunSnapshot] = {}
        self.task_runs: dict[str, TaskRunSnapshot] = {}
        self.flow_states: list[FlowRunSnapshot] = []
        self.task_states: list[TaskRunSnapshot] = []
        self.logs: list[LogEntry] = []
        self.pending = 0
        self.oldest = 0.0  # real monotonic time of the oldest buffered row

    def closed_error(self) -> StoreError:
        return StoreError(
            f"The run store {str(self.path)!r} is closed; open it again with open_store(url) "
            "to record or read runs."
        )

    def read_only_error(self, doing: str) -> StoreError:
        return StoreError(
            f"Cannot {doing}: the run store {str(self.path)!r} was opened read-only (?mode=ro). "
            "Open it without mode=ro to write."
        )

    def _connection(self) -> sqlite3.Connection:
        if self.closed:
            raise self.closed_error()
        if self.conn is None:  # dropped after a fork: the child is a new owner
            self.conn = self._open()
        return self.conn

    # writing ----------------------------------------------------------------------------
    def add(self, rows: str, item: Any, runs: str | None = None) -> None:
        """Buffer one row in the buffer named ``rows`` (and upsert its run in ``runs``);
        flush when the buffer is full or its oldest row is due."""
        with self.lock:  # a flush swaps the buffers: look them up only under the lock
            if self.closed:
                raise self.closed_error()
            if self.read_only:
                raise self.read_only_error("record runs")
            if runs is not None:
                getattr(self, runs)[item.id] = item  # a known key keeps its creation position
            getattr(self, rows).append(item)
            now = _realtime.monotonic()
            started = not self.pending
            if started:
                self.oldest = now
            self.pending += 1
            # After the count: see IdleCommitter.wake. (Only a buffer with a shorter
            # interval than the one the committer waits for is due before it looks.)
            if started and now + self.interval < _committer.wait_until:
                _committer.wake()
            due = self.pending > _MAX_PENDING or now - self.oldest >= self.interval
        if due:
            # If another thread is flushing, let it: block only when the buffer runs far ahead.
            self.flush_due(blocking=self.pending > 10 * _MAX_PENDING)

    def flush_due(self, blocking: bool) -> None:
        """The recording thread found the buffer due: flush it there (a store whose server
        does the work may hand it to the committer instead)."""
        self.auto_flush(blocking)

    def auto_flush(self, blocking: bool) -> None:
        """Flush unless ``blocking`` is false and another thread holds the connection; a
        failure is logged, not raised."""
        if self.db_lock.acquire(blocking=blocking):
            try:
                self.flush()
            except StoreError as exc:
                # The rows stay buffered; the next explicit flush (end of the top-level run,
                # a read, close) retries and raises. Recording itself never fails for this.
                with self.lock:
                    self.oldest = _realtime.monotonic()
                _log.warning("wfkit: automatic flush of the run store failed: %s", exc)
            finally:
                self.db_lock.release()

    def commit_if_due(self) -> float | None:
        """For the committer: flush if the oldest buffered row is due; when to look again
        (real monotonic time), or None while the buffer is empty."""
        if self.closed or not self.pending:
            return None
        due = self.oldest + self.interval
        now = _realtime.monotonic()
        if now < due:
            return due
        self.auto_flush(blocking=False)
        if self.closed or not self.pending:
            return None
        return max(self.oldest + self.interval, now + _RETRY_SECONDS)

    def flush(self) -> None:
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
                conn = self._connection()
                assert self.owner is not None  # set with the connection
                write_batch(conn, batch, self.owner)
                _heart.poke(
                    self.heartbeat_interval
                )  # the batch may hold live runs: they need heartbeats
            except DATA_ERRORS as exc:
                raise StoreError(
                    f"Could not store {sum(len(part) for part in batch[2:])} buffered rows in the run store "
                    f"{str(self.path)!r} even with their values cleaned ({exc!r}); they were "
                    "dropped so that later runs can still be recorded. Please report this."
                ) from exc
            except BaseException as exc:
                self._put_back(batch)
                if not isinstance(exc, sqlite3.Error):
                    raise
                raise StoreError(
                    f"Could not write to the run store {str(self.path)!r}: {exc}. The runs stay "
                    "buffered for the next flush; check that the disk has space and that no "
                    "other program keeps the database locked."
                ) from exc

    def _put_back(self, batch: tuple[Any, ...]) -> None:
        # The batch is older than what was recorded meanwhile: it goes first, and the newer
        # snapshots of the same runs win.
        flow_runs, task_runs, flow_states, task_states, logs = batch
        with self.lock:
            self.flow_runs, self.task_runs = (
                {**flow_runs, **self.flow_runs},
                {**task_runs, **self.task_runs},
            )
            self.flow_states = flow_states + self.flow_states
            self.task_states = task_states + self.task_states
            self.logs = logs + self.logs
            self.pending += len(flow_states) + len(task_states) + len(logs)

    # reading ----------------------------------------------------------------------------
    def read(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Flush, then run ``queries`` in one read transaction."""
        self.flush()
        with self.db_lock:
            conn = self._connection()
            try:
                return retrying(lambda: _read(conn, queries))
            except sqlite3.Error as exc:
                raise StoreError(
                    f"Could not read the run store {str(self.path)!r}: {exc}. If the file is "
                    "damaged, move it aside (wfkit starts a new one) and report the problem."
                ) from exc

    def execute(self, sql: str, args: Sequence[Any], doing: str) -> tuple[list[Any], int]:
        """Run one statement now, in its own transaction, without flushing the buffer;
        its rows and row count. ``doing`` names the action for the error message."""

        def run(conn: sqlite3.Connection) -> tuple[list[Any], int]:
            cursor = conn.execute(sql, args)
            return cursor.fetchall(), cursor.rowcount

        return self.call(run, doing)

    def call(self, action: Callable[[sqlite3.Connection], _T], doing: str) -> _T:
        """``action(connection)`` under the connection's lock, retried while the file is
        locked; a failure is a StoreError saying it could not do ``doing``."""
        with self.db_lock:
            conn = self._connection()
            try:
                return retrying(lambda: action(conn))
            except sqlite3.Error as exc:
                raise StoreError(
                    f"Could not {doing} in the run store {str(self.path)!r}: {exc}. Check that "
                    "the disk has space and that no other program keeps the database locked."
                ) from exc

    def record_crashed(self) -> None:
        """Record the runs of dead owners as Crashed (see :mod:`._sqlite_owners`); a
        read-only store only shows them so (see :mod:`._sqlite_readonly`)."""
        if self.read_only:
            self.call(
                lambda conn: refresh_dead_owners(conn, now_us(), self.progress),
                "look for crashed runs",
            )
            return
        self.call(
            lambda conn: record_crashed(conn, self.owner, now_us(), self.progress),
            "record crashed runs",
        )

    def beat(self) -> bool:
        """For the heartbeat thread: refresh this process's heartbeat if it has live runs in
        this store; whether it has."""
        if self.closed or self.owner is None:
            return False
        owner = self.owner
        return self.call(lambda conn: beat_if_live(conn, owner, now_us()), "send a heartbeat")

    def read_runs(self, cls: type[_R], selection: str, args: Sequence[Any]) -> list[_R]:
        """The runs chosen by ``selection`` (a WHERE/ORDER BY clause), with their histories."""
        self.record_crashed()  # a reader sees a dead process's runs as Crashed at once
        kind, fields = (
            ("flow_run", _FLOW_FIELDS) if cls.__name__ == "FlowRun" else ("task_run", _TASK_FIELDS)
        )
        queries = [
            (f"SELECT seq, {', '.join(fields)} FROM {kind}s {selection}", args),
            (
                f"SELECT run_seq, type, name, at_us, message FROM {kind}_states WHERE run_seq "
                f"IN (SELECT seq FROM {kind}s {selection}) ORDER BY seq",
                args,
            ),
        ]
        if self.read_only:  # the Crashed states it shows but does not record
            queries.append((crashed_states(kind, selection), args))
        rows, state_rows, *shown = self.read(queries)
        histories: dict[int, list[State]] = {}
        for run_seq, type_, name, at_us, message in state_rows:
            state = State(StateType(type_), name, timestamp=_from_us(at_us), message=message)
            histories.setdefault(run_seq, []).append(state)
        for run_seq, message, at_us in shown[0] if shown else ():
            crashed = State(
                StateType.CRASHED, "Crashed", timestamp=_from_us(at_us), message=message
            )
            histories[run_seq].append(crashed)
        return [_record(cls, fields, row[1:], histories[row[0]]) for row in rows]

    def close(self, quiet: bool = False) -> None:
        """Flush and close; with ``quiet`` (finalizer, exit) print a failure instead."""
        if self.closed:
            return
        try:
            self.flush()
        except Exception as exc:
            if not quiet:
                raise
            print(f"wfkit: lost buffered runs closing the run store: {exc}", file=sys.stderr)
        with self.db_lock:
            self.closed = True
            if self.conn is not None:
                self.conn.close()
                self.conn = None
        _live_writers.discard(self)

    def after_fork(self) -> None:
        """In a forked child: the parent flushes what it buffered, and SQLite connections
        must not cross a fork, so start empty and reconnect on first use."""
        self._new_locks_and_buffer()
        if self.conn is not None:
            _abandoned.append(self.conn)
            self.conn = None


def _after_fork_in_child() -> None:
    global _committer, _heart
    # Their threads did not cross the fork.
    _committer = IdleCommitter(lambda: list(_live_writers))
    _heart = HeartbeatThread(lambda: list(_live_writers))
    for writer in list(_live_writers):
        writer.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _read(conn: sqlite3.Connection, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
    conn.execute("BEGIN")  # one snapshot for all the queries
    try:
        return [conn.execute(sql, args).fetchall() for sql, args in queries]
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
