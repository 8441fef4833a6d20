"""Owners of the SQLite store's runs, and the runs of dead owners becoming ``Crashed``.

Every process that writes a store registers once as an *owner*: its host, its pid namespace
(on Linux; '' elsewhere), pid and process start time (on Linux, field 22 of
``/proc/<pid>/stat``, in clock ticks since boot; 0 where it is unknown). Each run row names
the owner that last wrote it, and each flush refreshes the owner's ``heartbeat_us``, so it
says when the process last recorded anything.

A run that is not final and whose owner is gone is recorded as ``Crashed``, with a message
naming the process and its last heartbeat. For an owner with this process's host name and
pid namespace (two containers may share a host name, never a pid namespace, and a pid means
nothing in another namespace), "gone" means: the pid does not exist, is a zombie, or belongs
to a process with another start time (a reused pid). Where the start time is unknown (not
Linux), a live pid counts as the owner, so a reused pid keeps a dead owner's runs
``Running`` until that process ends too.

Any other owner is judged by its heartbeat: :class:`HeartbeatThread` refreshes it every
``heartbeat_interval`` while the process has live runs, and the owner is gone once its
heartbeat is three intervals old, or (its clock may run ahead of ours, and a heartbeat "from
the future" must not prove life forever) once this store has seen its beat count stand still
for three intervals of its own monotonic clock.

The check runs when a store is opened and before every read of runs; the non-final runs are
found through partial indexes, so it costs one indexed query when nothing is dead.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

import wfkit._realtime as _realtime
from wfkit.exceptions import StoreError
from wfkit.states import StateType
from wfkit.stores._base import STATE_TYPE_VALUES, owner_gone_message
from wfkit.stores._sqlite_schema import NOT_FINAL, _connect, retrying

__all__ = [
    "adopt_unowned_runs",
    "HEARTBEAT",
    "HeartbeatThread",
    "Owner",
    "Progress",
    "beat_if_live",
    "connect_as_owner",
    "current_owner",
    "dead_owners",
    "now_us",
    "process_start",
    "record_crashed",
    "register_owner",
]

_log = logging.getLogger("wfkit.stores")


def _host_name() -> str:
    # os.uname() gives what socket.gethostname() gives, without importing socket.
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket  # (Windows has no os.uname)

    return socket.gethostname()


def _pid_space() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")  # for example 'pid:[4026531836]'
    except OSError:  # not Linux
        return ""


_HOST = _host_name()
_PID_SPACE = _pid_space()

_CRASHED = STATE_TYPE_VALUES[StateType.CRASHED]


class Owner(NamedTuple):
    """A process that records runs: its host, pid namespace ('' where there is none), pid
    and start time (0: unknown)."""

    host: str
    pid_space: str
    pid: int
    start: int


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), 0 where this
    system does not say, or None if there is no such live process (a zombie is not live)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else _pid_exists(pid)
    except OSError:
        return _pid_exists(pid)
    # The command name (field 2) is in parentheses and may hold spaces or ')': split after
    # the last ')'. Then field 3 is the state and field 22 the start time.
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):  # killed, not yet reaped by its parent: dead
        return None
    return int(fields[19])


def _pid_exists(pid: int) -> int | None:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return None
    except PermissionError:  # another user's process
        return 0
    return 0


def current_owner() -> Owner:
    """This process as an owner (called again after a fork: the child is a new owner)."""
    pid = os.getpid()
    return Owner(_HOST, _PID_SPACE, pid, process_start(pid) or 0)


def now_us() -> int:
    """Real time in microseconds since the epoch: owners live outside any run's clock."""
    return _realtime.time_ns() // 1000


def connect_as_owner(
    path: Path, timeout: float, interval: float, progress: Progress
) -> tuple[sqlite3.Connection, int]:
    """Connect to the store file, register this process as an owner with heartbeat
    ``interval``, and record dead owners' runs as Crashed (opening a store for writing is
    one of the moments the check runs); the connection and this owner's row id.

    Raises:
        StoreError: as for opening the store, or the owner could not be registered.
    """
    conn = _connect(path, timeout)
    try:
        now, me = now_us(), current_owner()
        owner_id = retrying(lambda: register_owner(conn, me, now, interval))
        retrying(lambda: adopt_unowned_runs(conn, now))
        retrying(lambda: record_crashed(conn, owner_id, now, progress))
    except BaseException as exc:
        conn.close()
        if not isinstance(exc, sqlite3.Error):
            raise
        raise StoreError(
            f"Could not register this process in the run store {str(path)!r}: {exc}. Check "
            "that the disk has space and that no other program keeps the database locked."
        ) from exc
    return conn, owner_id


def register_owner(conn: sqlite3.Connection, owner: Owner, now_us: int, interval: float) -> int:
    """Insert ``owner``, which promises a heartbeat every ``interval`` seconds while it has
    live runs (or refresh its row), in its own transaction; its row id."""
    ((owner_id,),) = conn.execute(
        "INSERT INTO owners (host, pid_space, pid, start_ticks, heartbeat_us, interval_us) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host, pid_space, pid, start_ticks) DO UPDATE "
        "SET heartbeat_us = excluded.heartbeat_us, interval_us = excluded.interval_us, "
        "beats = beats + 1 RETURNING id",
        (*owner, now_us, round(interval * 1e6)),
    ).fetchall()  # all rows: a RETURNING statement ends (and commits) when read to its end
    return int(owner_id)


def adopt_unowned_runs(conn: sqlite3.Connection, now_us: int) -> int:
    """Give the live runs that name no owner (recorded before schema version 3, which added
    owners) an owner made from their ``host`` and ``pid`` columns, so that they are judged
    like any other: on this host by their pid alone (no start time was recorded), elsewhere
    by a heartbeat that never comes (its last one: their last state change). How many owners
    were made; usually none, found through the partial indexes of live runs."""
    found = conn.execute(
        f"SELECT host, pid, max(state_us) FROM (SELECT host, pid, state_us FROM main.flow_runs "
        f"WHERE owner IS NULL AND {NOT_FINAL} UNION ALL SELECT host, pid, state_us FROM "
        f"main.task_runs WHERE owner IS NULL AND {NOT_FINAL}) GROUP BY host, pid"
    ).fetchall()
    if not found:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for host, pid, last_us in found:
            pid_space = _PID_SPACE if host == _HOST else ""
            conn.execute(
                "INSERT INTO owners (host, pid_space, pid, start_ticks, heartbeat_us, "
                "interval_us) VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING",
                (host or "", pid_space, pid or 0, last_us or now_us, _LEGACY_INTERVAL_US),
            )
            (owner_id,) = conn.execute(
                "SELECT id FROM owners WHERE host = ? AND pid_space = ? AND pid = ? "
                "AND start_ticks = 0",
                (host or "", pid_space, pid or 0),
            ).fetchone()
            for table in ("flow_runs", "task_runs"):
                conn.execute(
                    f"UPDATE {table} SET owner = ? WHERE owner IS NULL AND {NOT_FINAL} "
                    "AND host IS ? AND pid IS ?",
                    (owner_id, host, pid),
                )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(found)


_LEGACY_INTERVAL_US = 10_000_000  # what an owner made for pre-owner runs is judged by


#: Refreshes an owner's heartbeat: parameters (now_us, owner id).
HEARTBEAT = "UPDATE owners SET heartbeat_us = ?, beats = beats + 1 WHERE id = ?"
_HAS_LIVE_RUNS = (
    # main.: a read-only connection shadows the run tables with views (._sqlite_readonly),
    # whose computed state columns no index serves.
    f"(EXISTS (SELECT 1 FROM main.flow_runs WHERE owner = owners.id AND {NOT_FINAL}) "
    f"OR EXISTS (SELECT 1 FROM main.task_runs WHERE owner = owners.id AND {NOT_FINAL}))"
)


def beat_if_live(conn: sqlite3.Connection, owner_id: int, now_us: int) -> bool:
    """Refresh the heartbeat of owner ``owner_id`` if it has runs that are not final;
    whether it has."""
    return conn.execute(f"{HEARTBEAT} AND {_HAS_LIVE_RUNS}", (now_us, owner_id)).rowcount > 0


#: What a store remembers of other hosts' owners: owner id -> (its beat count when first
#: seen, and this process's real monotonic time then).
Progress = dict[int, tuple[int, float]]


def dead_owners(
    conn: sqlite3.Connection,
    own_id: int | None,
    now_us: int,
    progress: Progress,
    having: str = _HAS_LIVE_RUNS,
) -> list[tuple[int, str]]:
    """(id, message) of each owner that is gone but has runs that are not final (or, with
    ``having``, another SQL condition on ``owners.id``: what else a dead owner may hold)."""
    rows = conn.execute(
        "SELECT id, host, pid_space, pid, start_ticks, heartbeat_us, interval_us, beats "
        f"FROM owners WHERE id IS NOT ? AND {having}",
        (own_id,),
    ).fetchall()
    dead = []
    for owner_id, host, pid_space, pid, start, heartbeat_us, interval_us, beats in rows:
        if host == _HOST and pid_space == _PID_SPACE:
            why = _gone(pid, start)
        else:
            why = _silent(owner_id, heartbeat_us, interval_us, beats, now_us, progress)
        if why is None:
            continue
        beat = datetime.fromtimestamp(heartbeat_us / 1e6, UTC)
        dead.append((owner_id, owner_gone_message(host, pid, why, beat)))
    return dead


def _gone(pid: int, start: int) -> str | None:
    """Why the owner (``pid``, ``start``) on this host is gone; None if it is alive."""
    now_start = process_start(pid)
    if now_start is None:
        return "no longer exists"
    if start and now_start and now_start != start:
        return "no longer exists (its pid now belongs to another process)"
    return None


def _silent(
    owner_id: int,
    heartbeat_us: int,
    interval_us: int,
    beats: int,
    now_us: int,
    progress: Progress,
) -> str | None:
    """Why an owner on another host counts as dead; None while it may be alive.

    Its heartbeat is older than three intervals; or (another host's clock may run ahead,
    and a heartbeat "from the future" must not prove life forever) this process has seen
    its beat count stand still for three intervals of its own monotonic clock."""
    limit_us = 3 * interval_us
    now = _realtime.monotonic()
    seen = progress.get(owner_id)
    if seen is None or seen[0] != beats:
        seen = progress[owner_id] = (beats, now)
    if now_us - heartbeat_us > limit_us:
        return f"has sent no heartbeat for over {limit_us / 1e6:g} s (three intervals)"
    if (now - seen[1]) * 1e6 > limit_us:
        return (
            f"has sent no heartbeat for over {limit_us / 1e6:g} s (three intervals), as "
            "this process saw; its heartbeat time is later than this host's clock, which "
            "differs from the other host's"
        )
    return None


def record_crashed(
    conn: sqlite3.Connection, own_id: int | None, now_us: int, progress: Progress
) -> int:
    """Record every non-final run of a dead owner as Crashed (a new state in its history)
    in one transaction; how many runs. Never touches runs of live owners or of ``own_id``."""
    dead = dead_owners(
        conn, own_id, now_us, progress
    )  # outside the write lock: usually nothing is dead
    if not dead:
        return 0
    crashed = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for owner_id, message in dead:
            for kind in ("flow_run", "task_run"):
                # Again inside the transaction: another process may have recorded them.
                chosen = f"FROM {kind}s WHERE owner = ? AND {NOT_FINAL}"
                conn.execute(
                    f"INSERT INTO {kind}_states (run_seq, type, name, at_us, message) "
                    f"SELECT seq, '{_CRASHED}', 'Crashed', ?, ? {chosen} ORDER BY seq",
                    (now_us, message, owner_id),
                )
                crashed += conn.execute(
                    f"UPDATE {kind}s SET state_type = '{_CRASHED}', state_name = 'Crashed', "
                    f"state_us = ? WHERE owner = ? AND {NOT_FINAL}",
                    (now_us, owner_id),
                ).rowcount
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return crashed


class Beating(Protocol):
    """What the heartbeat thread needs of a store's writer."""

    heartbeat_interval: float  # seconds between heartbeats

    def beat(self) -> bool:
        """Refresh the heartbeat if the store has live runs of this process; whether it has."""


class HeartbeatThread:
    """One daemon thread per process that refreshes the owner rows of the stores with live
    runs of this process, every (smallest) heartbeat interval, and ends once none has any.

    A store calls :meth:`poke` after each flush, which starts the thread if needed.

    Args:
        writers: returns the live writers each time it is called.
    """

    def __init__(self, writers: Callable[[], Iterable[Beating]]) -> None:
        self._writers = writers
        self._cond = threading.Condition(threading.Lock())
        self._running = False  # guarded by _cond
        self._poked = False  # guarded by _cond: a flush happened since the thread last looked
        self._waiting = math.inf  # guarded by _cond: the interval the thread waits now

    def poke(self, interval: float) -> None:
        """Tell the thread a store with heartbeat ``interval`` wrote runs (starting it if it
        is not running, waking it if it waits longer than that)."""
        with self._cond:
            self._poked = True
            if interval < self._waiting:
                self._cond.notify()
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="wfkit-heartbeat", daemon=True).start()

    def _run(self) -> None:
        while True:
            writers = list(self._writers())
            interval = min((w.heartbeat_interval for w in writers), default=0.0)
            with self._cond:
                self._poked = False
                if interval:
                    self._waiting = interval
                    self._cond.wait(interval)
                    self._waiting = math.inf
            live = [w for w in writers if _beat(w)]
            with self._cond:
                # A flush after the look above may have written new live runs: look again.
                if not live and not self._poked:
                    self._running = False
                    return


def _beat(writer: Beating) -> bool:
    """``writer.beat()``; an error is logged (the thread serves every store)."""
    try:
        return writer.beat()
    except Exception:
        _log.exception("wfkit: the heartbeat thread failed on a run store; it will retry")
        return True
