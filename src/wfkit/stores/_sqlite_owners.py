"""Owners of the SQLite store's runs, and the runs of dead owners becoming ``Crashed``.

Every process that writes a store registers once as an *owner*: its host, its pid namespace
(on Linux; '' elsewhere), pid and process start time (on Linux, field 22 of
``/proc/<pid>/stat``, in clock ticks since boot; 0 where it is unknown). Each run row names
the owner that last wrote it, and each flush refreshes the owner's ``heartbeat_us``, so it
says when the process last recorded anything.

A run that is not final and whose owner is gone is recorded as ``Crashed``, with a message
naming the process and its last heartbeat. "Gone" is judged only for owners that share this
process's host name and pid namespace (two containers may share a host name, never a pid
namespace, and a pid means nothing in another namespace): the pid does not exist, is a
zombie, or belongs to a process with another start time (a reused pid). Where the start time
is unknown (not Linux), a live pid counts as the owner, so a reused pid keeps a dead owner's
runs ``Running`` until that process ends too. Owners on other hosts are never judged yet
(that needs a heartbeat thread). The check runs when a store is opened and before every
read of runs; the non-final runs are found through partial indexes, so it costs one indexed
query when nothing is dead.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from typing import NamedTuple

from wfkit.states import StateType
from wfkit.stores._base import STATE_TYPE_VALUES
from wfkit.stores._sqlite_schema import NOT_FINAL

__all__ = ["Owner", "current_owner", "process_start", "record_crashed", "register_owner"]


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


def register_owner(conn: sqlite3.Connection, owner: Owner, now_us: int) -> int:
    """Insert ``owner`` (or refresh its heartbeat) in its own transaction; its row id."""
    ((owner_id,),) = conn.execute(
        "INSERT INTO owners (host, pid_space, pid, start_ticks, heartbeat_us) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (host, pid_space, pid, start_ticks) DO UPDATE SET heartbeat_us = excluded.heartbeat_us "
        "RETURNING id",
        (*owner, now_us),
    ).fetchall()  # all rows: a RETURNING statement ends (and commits) when read to its end
    return int(owner_id)


def _dead_owners(conn: sqlite3.Connection, own_id: int | None) -> list[tuple[int, str]]:
    """(id, message) of each owner on this host (and pid namespace) that is gone but has
    non-final runs."""
    rows = conn.execute(
        "SELECT id, pid, start_ticks, heartbeat_us FROM owners WHERE host = ? AND pid_space = ? "
        "AND id IS NOT ? "
        f"AND (EXISTS (SELECT 1 FROM flow_runs WHERE owner = owners.id AND {NOT_FINAL}) "
        f"OR EXISTS (SELECT 1 FROM task_runs WHERE owner = owners.id AND {NOT_FINAL}))",
        (_HOST, _PID_SPACE, own_id),
    ).fetchall()
    dead = []
    for owner_id, pid, start, heartbeat_us in rows:
        now_start = process_start(pid)
        if now_start is None:
            why = "no longer exists"
        elif start and now_start and now_start != start:
            why = "no longer exists (its pid now belongs to another process)"
        else:
            continue
        beat = datetime.fromtimestamp(heartbeat_us / 1e6, UTC).isoformat(timespec="seconds")
        message = (
            f"The process that was running this (host {_HOST!r}, pid {pid}) {why}; it was "
            f"probably killed. Its last heartbeat was at {beat}."
        )
        dead.append((owner_id, message))
    return dead


def record_crashed(conn: sqlite3.Connection, own_id: int | None, now_us: int) -> int:
    """Record every non-final run of a dead owner as Crashed (a new state in its history)
    in one transaction; how many runs. Never touches runs of live owners or of ``own_id``."""
    dead = _dead_owners(conn, own_id)  # outside the write lock: usually nothing is dead
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
