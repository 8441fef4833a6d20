"""Owners of a SQLite store's runs: a run whose recording process is gone becomes Crashed
when a store is opened or read; runs of live processes, and final runs, are never touched.
(The SIGKILLed child is in test_durability; here dead owners are real dead or reused pids
written into the owners table.)"""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wfkit.exceptions import ConfigurationError
from wfkit.states import Completed, Pending, Running
from wfkit.stores._sqlite_owners import current_owner, process_start
from wfkit.stores._sqlite_schema import NOT_FINAL
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing.store_conformance import at, record_flow, record_task

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process start times come from /proc"
)


def _dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _record_some_runs(path: Path) -> None:
    """A running flow run with a running and a completed task run, and a completed flow run,
    recorded (and committed) by this process."""
    with SqliteStore(path) as store:
        record_flow(store, [Pending(timestamp=at(0)), Running(timestamp=at(1))], "live")
        record_task(
            store, [Pending(timestamp=at(1)), Running(timestamp=at(2))], "t-run", flow_run_id="live"
        )
        done = [Pending(timestamp=at(1)), Running(timestamp=at(2)), Completed(timestamp=at(3))]
        record_task(store, done, "t-done", flow_run_id="live")
        record_flow(store, done, "finished")


def _set_owner(path: Path, pid: int, start: int, was: int | None = None) -> None:
    """Make the runs of ``path`` owned by process (pid, start) on this host: the runs of
    every owner, or of the one with pid ``was``."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        sql = "UPDATE owners SET pid = ?, start_ticks = ? WHERE ? IS NULL OR pid = ?"
        conn.execute(sql, (pid, start, was, was))
    finally:
        conn.close()


def _names(store: SqliteStore) -> dict[str, list[str]]:
    runs = [*store.flow_runs(), *store.task_runs()]
    return {run.id: run.state_names for run in runs}


CRASHED = {
    "live": ["Pending", "Running", "Crashed"],
    "t-run": ["Pending", "Running", "Crashed"],
    "t-done": ["Pending", "Running", "Completed"],
    "finished": ["Pending", "Running", "Completed"],
}


def test_the_runs_of_a_dead_pid_become_crashed_and_final_runs_stay(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    pid = _dead_pid()
    _set_owner(path, pid, 12345)

    with SqliteStore(path) as store:
        assert _names(store) == CRASHED
        run = store.flow_run("live")
    message = run.state.message
    assert run.state.is_crashed() and run.state.is_final() and run.end_time is not None
    assert message is not None and f"pid {pid}) no longer exists" in message
    assert f"host {current_owner().host!r}" in message and "last heartbeat was at" in message


def test_crashed_is_recorded_once_and_read_back_by_later_stores(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    _set_owner(path, _dead_pid(), 0)
    SqliteStore(path).close()  # opening for writing records it

    conn = sqlite3.connect(path)
    try:
        (crashed_rows,) = conn.execute(
            "SELECT count(*) FROM flow_run_states WHERE type = 'CRASHED'"
        ).fetchone()
    finally:
        conn.close()
    assert crashed_rows == 1
    for _ in range(2):
        with SqliteStore(path) as store:
            assert _names(store) == CRASHED


@linux_only
def test_a_reused_pid_with_another_start_time_is_a_dead_owner(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    me = current_owner()
    assert me.start > 0
    _set_owner(path, me.pid, me.start - 1)  # this pid, but an earlier process's start time

    with SqliteStore(path) as store:
        assert _names(store) == CRASHED


def test_the_runs_of_a_live_process_are_never_touched(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    parent = os.getppid()  # alive; another process (its start time is its own)
    _set_owner(path, parent, process_start(parent) or 0)

    with SqliteStore(path) as store:  # as another store of the recording process itself
        live = _names(store)
    assert live["live"] == ["Pending", "Running"] and live["t-run"] == ["Pending", "Running"]


def test_a_run_is_checked_at_every_read_not_only_when_the_store_is_opened(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    parent = os.getppid()  # the runs' owner: a live process other than this reader
    _set_owner(path, parent, process_start(parent) or 0)
    with SqliteStore(path) as reader:
        assert reader.flow_run("live").state_names == ["Pending", "Running"]
        _set_owner(path, _dead_pid(), 0, was=parent)  # it dies while the reader is open
        assert reader.flow_run("live").state_names == CRASHED["live"]
        assert [r.state_names for r in reader.task_runs(flow_run_id="live")] == [
            CRASHED["t-run"],
            CRASHED["t-done"],
        ]


@linux_only
def test_a_killed_process_not_yet_reaped_is_dead() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_start(proc.pid) is not None
        proc.kill()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, still a zombie
        assert process_start(proc.pid) is None
    finally:
        proc.kill()
        proc.wait()


def test_finding_the_runs_of_dead_owners_uses_the_partial_indexes(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        for table, index in [("flow_runs", "flow_runs_live"), ("task_runs", "task_runs_live")]:
            plan = conn.execute(
                f"EXPLAIN QUERY PLAN SELECT 1 FROM {table} WHERE owner = ? AND {NOT_FINAL}",
                (1,),
            ).fetchall()
            assert index in str(plan), plan
    finally:
        conn.close()


@linux_only
def test_an_owner_in_another_pid_namespace_is_never_judged(tmp_path: Path) -> None:
    # Same host name (containers sharing the host's network), another pid namespace: its
    # pids mean nothing here, so its runs are left alone.
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    _set_owner(path, _dead_pid(), 0)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("UPDATE owners SET pid_space = 'pid:[1]'")
    finally:
        conn.close()

    with SqliteStore(path) as store:
        assert store.flow_run("live").state_names == ["Pending", "Running"]


# other hosts: heartbeats --------------------------------------------------------------------
def _as_other_host(path: Path, heartbeat_us: int, interval_us: int) -> None:
    """Make the owner of the runs of ``path`` a process of host 'elsewhere' with that
    heartbeat and interval."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "UPDATE owners SET host = 'elsewhere', heartbeat_us = ?, interval_us = ? "
            "WHERE id = (SELECT owner FROM flow_runs WHERE id = 'live')",
            (heartbeat_us, interval_us),
        )
    finally:
        conn.close()


def _now_us() -> int:
    return round(time.time() * 1e6)


def test_another_hosts_runs_crash_once_its_heartbeat_is_three_intervals_old(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    _as_other_host(path, _now_us() - 25_000_000, 10_000_000)  # 2.5 intervals ago
    with SqliteStore(path) as store:
        assert store.flow_run("live").state_names == ["Pending", "Running"]

    _as_other_host(path, _now_us() - 31_000_000, 10_000_000)  # 3.1 intervals ago
    with SqliteStore(path) as store:
        assert _names(store) == CRASHED
        message = store.flow_run("live").state.message
    assert message is not None and "(host 'elsewhere', pid " in message
    assert "no heartbeat for over 30 s" in message


def test_a_heartbeat_from_the_future_is_not_proof_of_life_forever(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    # The other host's clock is a day ahead; it promised a heartbeat every 0.5 s.
    _as_other_host(path, _now_us() + 86_400_000_000, 500_000)
    with SqliteStore(path) as store:
        # Its heartbeat time says nothing: this store notes its beat count (when opened) ...
        assert store.flow_run("live").state_names == ["Pending", "Running"]
        # ... and once that has not moved for three intervals of its own clock, it is dead.
        deadline = time.monotonic() + 30
        while store.flow_run("live").state.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.flow_run("live").state_names == CRASHED["live"]
        message = store.flow_run("live").state.message
    assert message is not None and "later than this host's clock" in message


def _beats(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT sum(beats) FROM owners").fetchone()[0])
    finally:
        conn.close()


def test_the_heartbeat_thread_beats_only_while_the_process_has_live_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path, heartbeat_interval=0.005) as store:
        record_flow(store, [Pending(timestamp=at(0)), Running(timestamp=at(1))], "live")
        store.flush()
        first = _beats(path)
        deadline = time.monotonic() + 10
        while _beats(path) < first + 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _beats(path) >= first + 3  # the thread beats while the run is live

        record_flow(store, [Completed(timestamp=at(2))], "live")
        store.flush()
        ended = _beats(path)
        time.sleep(0.05)  # ten intervals
        assert _beats(path) == ended  # and not once it has ended


@pytest.mark.parametrize("interval", [0, -1, math.nan, math.inf, "10", True, 7200])
def test_a_bad_heartbeat_interval_is_refused_naming_it(tmp_path: Path, interval: object) -> None:
    with pytest.raises(
        ConfigurationError, match=r"heartbeat_interval=.* is not a heartbeat interval"
    ):
        SqliteStore(tmp_path / "runs.db", heartbeat_interval=interval)  # type: ignore[arg-type]


def _forget_owners(path: Path) -> None:
    """Make the runs of ``path`` look recorded before schema version 3: no owner."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for table in ("flow_runs", "task_runs"):
            conn.execute(f"UPDATE {table} SET owner = NULL")
        conn.execute("DELETE FROM owners")
    finally:
        conn.close()


def _set_pid_column(path: Path, pid: int) -> None:
    """Make the runs of ``path`` recorded by process ``pid`` of this host."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for table in ("flow_runs", "task_runs"):
            conn.execute(f"UPDATE {table} SET host = ?, pid = ?", (current_owner().host, pid))
    finally:
        conn.close()


def test_runs_recorded_before_owners_existed_are_judged_by_their_pid(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    _forget_owners(path)
    _set_pid_column(path, _dead_pid())

    with SqliteStore(path) as store:
        assert _names(store) == CRASHED
        assert "no longer exists" in (store.flow_run("live").state.message or "")


def test_pre_owner_runs_of_another_host_are_judged_by_their_last_state_change(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)  # recorded by 'host-a', in 2024: long silent
    _forget_owners(path)

    with SqliteStore(path) as store:
        assert _names(store) == CRASHED
        message = store.flow_run("live").state.message or ""
    assert "host 'host-a'" in message and "no heartbeat for over 30 s" in message


def test_runs_recorded_before_owners_existed_by_a_live_process_are_left_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    _forget_owners(path)
    _set_pid_column(path, os.getppid())  # alive

    with SqliteStore(path) as store:
        assert store.flow_run("live").state_names == ["Pending", "Running"]
    with SqliteStore(path) as store:  # adopted once, and still alive
        assert store.flow_run("live").state_names == ["Pending", "Running"]
