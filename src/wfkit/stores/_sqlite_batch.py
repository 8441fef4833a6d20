"""The SQLite store's write path: turning a buffered batch into rows and writing them in
one transaction (with one retry after cleaning values SQLite cannot store), and the thread
that commits buffers their callers have left."""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import wfkit._realtime as _realtime
from wfkit.states import StateType
from wfkit.stores._base import STATE_TYPE_VALUES, FlowRunSnapshot, LogEntry, TaskRunSnapshot
from wfkit.stores._sqlite_owners import HEARTBEAT, now_us
from wfkit.stores._sqlite_rows import (
    _FLOW_COLUMNS,
    _KEEP_FIRST,
    _TASK_COLUMNS,
    _flow_row,
    _nullable,
    _short_repr,
    _state_row,
    _task_row,
    _to_us,
)
from wfkit.stores._sqlite_schema import retrying

_ROWS_PER_STATEMENT = 64
_log = logging.getLogger("wfkit.stores")
# Read once: an Enum class attribute goes through the metaclass's __getattr__ (CPython 3.11),
# about ten times slower than a global, and every flushed flow state is compared with it.
_RUNNING = StateType.RUNNING
_CRASHED = STATE_TYPE_VALUES[StateType.CRASHED]


class _Insert:
    """An INSERT of rows of one width, run as multi-row statements (``VALUES (...), (...)``):
    SQLite then executes one statement per 64 rows instead of one per row, which takes about
    a third off each row's cost (a task run writes four rows)."""

    def __init__(self, head: str, width: int, tail: str = "") -> None:
        row = f"({', '.join('?' * width)})"
        self.one = f"{head} VALUES {row}{tail}"
        self.full = f"{head} VALUES {', '.join([row] * _ROWS_PER_STATEMENT)}{tail}"

    def run(self, conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        step = _ROWS_PER_STATEMENT
        whole = len(rows) - len(rows) % step
        for i in range(0, whole, step):
            conn.execute(self.full, [value for row in rows[i : i + step] for value in row])
        if whole < len(rows):
            conn.executemany(self.one, rows[whole:])


def _upsert(table: str, columns: Sequence[str]) -> _Insert:
    updates = ", ".join(
        f"{c} = coalesce({table}.{c}, excluded.{c})" if c in _KEEP_FIRST else f"{c} = excluded.{c}"
        for c in columns[1:]
    )
    # A run recorded Crashed (its process was judged dead, or signalled) stays Crashed: what
    # the process records afterwards, if it was not dead after all, is dropped.
    return _Insert(
        f"INSERT INTO {table} ({', '.join(columns)})",
        len(columns),
        f" ON CONFLICT(id) DO UPDATE SET {updates} WHERE {table}.state_type != '{_CRASHED}' "
        f"OR excluded.state_type = '{_CRASHED}'",
    )


_UPSERT_FLOW = _upsert("flow_runs", _FLOW_COLUMNS)
_UPSERT_TASK = _upsert("task_runs", _TASK_COLUMNS)
_INSERT_STATES = {
    kind: _Insert(f"INSERT INTO {kind}_states (run_seq, type, name, at_us, message)", 5)
    for kind in ("flow_run", "task_run")
}
_INSERT_LOG = _Insert(
    "INSERT INTO logs (flow_run_id, task_run_id, level, logger, message, at_us)", 6
)


# the SQL side -----------------------------------------------------------------------------
DATA_ERRORS = (
    ValueError,  # UnicodeEncodeError: a lone surrogate
    TypeError,
    OverflowError,
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,  # a value of a type SQLite cannot bind
)


def write_batch(conn: sqlite3.Connection, batch: tuple[Any, ...], owner: int) -> None:
    """Write one buffer's worth of snapshots as the owner with row id ``owner`` (its runs
    name it, and its heartbeat is refreshed); a value SQLite refuses is cleaned, not fatal."""
    try:
        rows = _batch_rows(owner, *batch)
        retrying(lambda: _write(conn, rows, owner))
    except DATA_ERRORS:
        rows = _Rows(
            *([tuple(map(_storable, row)) for row in part] for part in _batch_rows(owner, *batch))
        )
        retrying(lambda: _write(conn, rows, owner))


def _storable(value: Any) -> Any:
    """``value`` as something SQLite stores (only used after a write failed on a value)."""
    if value is None or isinstance(value, float | bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    if isinstance(value, int):
        return int(value) if -(2**63) <= value < 2**63 else str(value)
    return _short_repr(value)


class _Rows(NamedTuple):
    """The parameter rows of one flush; state rows carry their run's id until it is known."""

    flows: list[tuple[Any, ...]]
    tasks: list[tuple[Any, ...]]
    flow_states: list[tuple[Any, ...]]
    task_states: list[tuple[Any, ...]]
    logs: list[tuple[Any, ...]]


def _write(conn: sqlite3.Connection, rows: _Rows, owner: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(HEARTBEAT, (now_us(), owner))
        _UPSERT_FLOW.run(conn, rows.flows)
        _UPSERT_TASK.run(conn, rows.tasks)
        _insert_states(conn, "flow_run", rows.flows, rows.flow_states)
        _insert_states(conn, "task_run", rows.tasks, rows.task_states)
        _INSERT_LOG.run(conn, rows.logs)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _insert_states(
    conn: sqlite3.Connection, kind: str, runs: list[tuple[Any, ...]], states: list[tuple[Any, ...]]
) -> None:
    """Insert state rows ``(run id, type, name, at_us, message)`` under their run's seq (every
    state's run is upserted by the same flush), except those of a run that stayed Crashed
    while this batch says otherwise (see ``_upsert``)."""
    if not states:
        return
    seqs: dict[str, int] = {}
    for i in range(0, len(runs), 500):  # one query per 500 runs, not one lookup per state
        ids = [run[0] for run in runs[i : i + 500]]
        sql = (
            f"SELECT id, seq, state_type = '{_CRASHED}' FROM {kind}s "
            f"WHERE id IN ({', '.join('?' * len(ids))})"
        )
        for run_id, seq, crashed in conn.execute(sql, ids):
            seqs[run_id] = seq
            if crashed:
                seqs[run_id] = -1 if _zombie(runs, run_id, kind) else seq
    _INSERT_STATES[kind].run(
        conn,
        [
            (seq, t, name, at, message)
            for run_id, t, name, at, message in states
            if (seq := seqs[run_id]) >= 0
        ],
    )


def _zombie(runs: list[tuple[Any, ...]], run_id: str, kind: str) -> bool:
    """Whether the batch's row for ``run_id`` (a run the store holds as Crashed) is not
    Crashed itself: the upsert kept the stored run, and its states are dropped too."""
    column = (_FLOW_COLUMNS if kind == "flow_run" else _TASK_COLUMNS).index("state_type")
    return next(row[column] for row in runs if row[0] == run_id) != _CRASHED


# rows out ---------------------------------------------------------------------------------
def _batch_rows(
    owner: int,
    flow_runs: dict[str, FlowRunSnapshot],
    task_runs: dict[str, TaskRunSnapshot],
    flow_states: list[FlowRunSnapshot],
    task_states: list[TaskRunSnapshot],
    logs: list[LogEntry],
) -> _Rows:
    """The parameter rows of one flush."""
    firsts: dict[str, list[int | None]] = {}  # flow run id -> [first state, first running]
    for snap in flow_states:
        first = firsts.setdefault(snap.id, [_to_us(snap.state.timestamp), None])
        if first[1] is None and snap.state.type is _RUNNING:
            first[1] = _to_us(snap.state.timestamp)
    flow_rows = [_flow_row(s, owner, *firsts[s.id]) for s in flow_runs.values()]
    task_rows = [_task_row(s, owner) for s in task_runs.values()]
    flow_state_rows = [_state_row(s.id, s.state) for s in flow_states]
    task_state_rows = [_state_row(s.id, s.state) for s in task_states]
    log_rows = [
        (
            _nullable(e.flow_run_id),
            _nullable(e.task_run_id),
            e.level,
            e.logger,
            e.message,
            _to_us(e.timestamp),
        )
        for e in logs
    ]
    return _Rows(flow_rows, task_rows, flow_state_rows, task_state_rows, log_rows)


# the committer ----------------------------------------------------------------------------
class Buffered(Protocol):
    """What the committer needs of a store's buffer."""

    interval: float  # the most seconds its oldest row may wait

    def commit_if_due(self) -> float | None:
        """Flush if the oldest buffered row is due; when to look again (real monotonic
        time), or None while the buffer is empty."""


class IdleCommitter:
    """One daemon thread per process that commits the buffers whose oldest row is due.

    A caller that keeps recording commits on its own thread (a background thread alone
    lags by hundreds of milliseconds while the caller holds the GIL), so in practice this
    thread commits the buffers their caller has left: during a long task body, or after the
    last record of a script that has not ended yet. It sleeps until the earliest buffer is
    due, and without a timeout once every buffer has stayed empty for an interval. A buffer
    whose first row is due before ``wait_until`` must call :meth:`wake`.

    Args:
        buffers: returns the live buffers each time it is called.
    """

    def __init__(self, buffers: Callable[[], Iterable[Buffered]]) -> None:
        self._buffers = buffers
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._woken = False  # guarded by _cond
        # When the thread looks next (real monotonic time; inf: only when woken). Read
        # without the lock on every buffer's first row, so that the busy path costs one
        # attribute read and a comparison.
        self.wait_until = math.inf

    def wake(self) -> None:
        """Make the thread look at the buffers now (starting it the first time).

        Call it after the buffer counts its first row: the thread resets ``wait_until``
        before it reads the counts, so either it sees the row or the caller sees a
        ``wait_until`` that tells it to wake the thread."""
        with self._cond:
            self._woken = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="wfkit-store-committer", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        lingered = False
        while True:
            self.wait_until = math.inf  # before looking: see wake()
            buffers = list(self._buffers())
            deadlines = [due for b in buffers for due in [_commit_if_due(b)] if due is not None]
            with self._cond:
                if self._woken:  # a buffer started while we looked: look again
                    self._woken = lingered = False
                    continue
                if deadlines:
                    lingered = False
                    self.wait_until = min(deadlines)
                    self._cond.wait(max(0.0, self.wait_until - _realtime.monotonic()))
                elif not lingered and buffers:
                    # Every buffer was just flushed by its caller. In a loop of short
                    # top-level calls (each flushes at its end) a new one starts at once:
                    # waiting one interval here, rather than being woken by every call,
                    # saves each call a thread switch (~15% of an empty flow call).
                    lingered = True
                    linger = min(b.interval for b in buffers)
                    self.wait_until = _realtime.monotonic() + linger
                    self._cond.wait(linger)
                else:
                    self._cond.wait()
                    lingered = False


def _commit_if_due(buffer: Buffered) -> float | None:
    """``buffer.commit_if_due()``; an unexpected error is logged (the thread serves every
    store: one broken buffer must not stop it) and the buffer is looked at again later."""
    try:
        return buffer.commit_if_due()
    except Exception:
        _log.exception("wfkit: the run store committer failed on a buffer; it will retry")
        return _realtime.monotonic() + 1.0
