"""Owners of the PostgreSQL store's runs, across hosts, and dead owners' runs becoming Crashed.

The rules are SQLite's (:mod:`wfkit.stores._sqlite_owners`, whose judgement this module
reuses): an owner on this host and pid namespace is alive while its process is; any other is
alive while its heartbeat is younger than three intervals. With a PostgreSQL store the second
case is the common one: flows on several machines record into one database.

``WFKIT_TEST_HOST`` (a test-only setting) replaces this process's host name, so that a test
can play several hosts with processes on one machine.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from wfkit.states import StateType
from wfkit.stores._base import STATE_TYPE_VALUES, owner_gone_message
from wfkit.stores._sqlite_owners import (
    _HOST,
    _PID_SPACE,
    Owner,
    Progress,
    _gone,
    _silent,
    process_start,
)
from wfkit.stores._sqlite_schema import NOT_FINAL

__all__ = [
    "HEARTBEAT",
    "HOLDS_LEASES",
    "beat_if_live",
    "dead_owners",
    "host_and_space",
    "record_crashed",
    "register_owner",
]

_CRASHED = STATE_TYPE_VALUES[StateType.CRASHED]
_HAS_LIVE_RUNS = (
    f"(EXISTS (SELECT 1 FROM flow_runs WHERE owner = owners.id AND {NOT_FINAL}) "
    f"OR EXISTS (SELECT 1 FROM task_runs WHERE owner = owners.id AND {NOT_FINAL}))"
)
#: An owner holds slots on a concurrency limit (see wfkit.stores._pg_limits).
HOLDS_LEASES = "EXISTS (SELECT 1 FROM limit_leases WHERE owner = owners.id AND released_s IS NULL)"
#: Refreshes an owner's heartbeat: parameters (now_us, owner id).
HEARTBEAT = "UPDATE owners SET heartbeat_us = %s, beats = beats + 1 WHERE id = %s"


def host_and_space() -> tuple[str, str]:
    """This process's host name and pid namespace; under ``WFKIT_TEST_HOST`` that name and
    a namespace of its own (so that its pids mean nothing to the real host's processes)."""
    test_host = os.environ.get("WFKIT_TEST_HOST")
    if test_host:
        return test_host, f"test:{test_host}"
    return _HOST, _PID_SPACE


def register_owner(conn: Any, now_us: int, interval: float) -> int:
    """Register this process (or refresh its row) as an owner whose heartbeat comes every
    ``interval`` seconds while it has live runs; its row id."""
    host, space = host_and_space()
    pid = os.getpid()
    owner = Owner(host, space, pid, process_start(pid) or 0)
    ((owner_id,),) = conn.execute(
        "INSERT INTO owners (host, pid_space, pid, start_ticks, heartbeat_us, interval_us) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (host, pid_space, pid, start_ticks) DO "
        "UPDATE SET heartbeat_us = excluded.heartbeat_us, interval_us = excluded.interval_us, "
        "beats = owners.beats + 1 RETURNING id",
        (*owner, now_us, round(interval * 1e6)),
    ).fetchall()
    return int(owner_id)


def beat_if_live(conn: Any, owner_id: int, now_us: int) -> bool:
    """Refresh owner ``owner_id``'s heartbeat if it has runs that are not final or holds
    slots of a concurrency limit (a script may hold them outside any run, and another host
    frees the slots of an owner that stops beating); whether it has or holds any."""
    sql = f"{HEARTBEAT} AND ({_HAS_LIVE_RUNS} OR {HOLDS_LEASES})"
    return conn.execute(sql, (now_us, owner_id)).rowcount > 0


def dead_owners(
    conn: Any, own_id: int | None, now_us: int, progress: Progress, having: str = _HAS_LIVE_RUNS
) -> list[tuple[int, str]]:
    """(id, message) of each owner other than ``own_id`` that is gone but has live runs (or,
    with ``having``, another SQL condition on ``owners.id``: what else a dead owner may hold)."""
    rows = conn.execute(
        "SELECT id, host, pid_space, pid, start_ticks, heartbeat_us, interval_us, beats "
        f"FROM owners WHERE id IS DISTINCT FROM %s AND {having}",
        (own_id,),
    ).fetchall()
    here = host_and_space()
    dead = []
    for owner_id, host, pid_space, pid, start, heartbeat_us, interval_us, beats in rows:
        if (host, pid_space) == here:
            why = _gone(pid, start)
        else:
            why = _silent(owner_id, heartbeat_us, interval_us, beats, now_us, progress)
        if why is not None:
            beat = datetime.fromtimestamp(heartbeat_us / 1e6, UTC)
            dead.append((owner_id, owner_gone_message(host, pid, why, beat)))
    return dead


def record_crashed(conn: Any, own_id: int | None, now_us: int, progress: Progress) -> int:
    """Record every live run of a dead owner as Crashed, in one transaction; how many."""
    dead = dead_owners(conn, own_id, now_us, progress)  # usually none: no transaction
    crashed = 0
    if not dead:
        return 0
    with conn.transaction():
        for owner_id, message in dead:
            for kind in ("flow_run", "task_run"):
                # The UPDATE locks the rows, so a concurrent reader that judged the same
                # owner dead waits here and then finds nothing left to crash.
                rows = conn.execute(
                    f"UPDATE {kind}s SET state_type = '{_CRASHED}', state_name = 'Crashed', "
                    f"state_us = %s WHERE owner = %s AND {NOT_FINAL} RETURNING seq",
                    (now_us, owner_id),
                ).fetchall()
                for (seq,) in sorted(rows):
                    conn.execute(
                        f"INSERT INTO {kind}_states (run_seq, type, name, at_us, message) "
                        f"VALUES (%s, '{_CRASHED}', 'Crashed', %s, %s)",
                        (seq, now_us, message),
                    )
                crashed += len(rows)
    return crashed
