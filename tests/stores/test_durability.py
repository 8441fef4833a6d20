"""What a SIGKILL may lose from a SQLite store: at most the states of the last commit interval
(100 ms). Real processes, real files, real signals: a child runs a flow, tells the test through
a pipe when it reached the chosen point, is killed ~250 ms later with SIGKILL, and the store is
read back by this (another) process."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import wfkit.stores
from wfkit.stores._sqlite_writer import Writer as _Writer
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing.store_conformance import record_flow, record_task
from wfkit.testing.store_conformance._support import finished

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL and pipes")

SRC = Path(wfkit.stores.__file__).resolve().parents[2]
# Past the 100 ms commit interval, with room for a child the OS did not schedule at once.
KILL_AFTER_SECONDS = 0.25
# Only ever reached when something is broken: a child that never gets to its point.
SIGNAL_TIMEOUT_SECONDS = 60.0
WAIT_TIMEOUT_SECONDS = 10.0  # for rows that should appear within 100 ms

# The child: a flow whose shape `mode` chooses; it writes one byte to the pipe `fd` at the
# point the test kills it after.
CHILD = """\
import os, sys, time
from wfkit import flow, task

fd, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def reached_the_point():
    os.write(fd, b"!")

@task(name="step")
def step(i):
    if mode == "busy":  # a body that holds the GIL for 2 ms, as real work does
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass
    return i

@task(name="slow")
def slow():
    reached_the_point()
    time.sleep(30)

@flow(name="durable")
def work():
    if mode == "long_body":
        slow()
    for i in range(n):
        step(i)
    reached_the_point()
    i = n
    while mode == "busy":  # the caller keeps recording until it is killed
        step(i)
        i += 1
    time.sleep(30)  # the caller has left the buffer

work()
"""


@contextmanager
def _child_at_its_point(tmp_path: Path, mode: str, n: int = 0) -> Iterator[Path]:
    """Start the child, wait until it reached its point, yield the store's path; then kill
    it with SIGKILL (the test body decides when) and reap it."""
    db = tmp_path / "runs.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "WFKIT_HOME": str(tmp_path / "home"),
        "WFKIT_STORE": f"sqlite:///{db}",
    }
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(write_end), mode, str(n)],
        env=env,
        pass_fds=(write_end,),
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], SIGNAL_TIMEOUT_SECONDS)
        if not ready or os.read(read_end, 1) != b"!":
            proc.kill()
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"the child never reached its point:\n{err.decode()}")
        yield db
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        os.close(read_end)
    assert proc.returncode == -signal.SIGKILL


def _let_the_window_pass() -> None:
    """Let the child's commit interval pass, with margin (real time: it is the child's)."""
    time.sleep(KILL_AFTER_SECONDS)


def _states(db: Path) -> tuple[dict[str, list[str]], dict[int, list[str]]]:
    """Flow runs by name and task runs by their `i` parameter (the slow task: -1), with
    their state names, as a new store object in this process reads them."""
    with SqliteStore(db) as store:
        flows = {r.flow_name: r.state_names for r in store.flow_runs()}
        tasks = {r.parameters.get("i", -1): r.state_names for r in store.task_runs()}
    return flows, tasks


def _states_after_a_kill(
    tmp_path: Path, mode: str, n: int
) -> tuple[dict[str, list[str]], dict[int, list[str]]]:
    """What the store holds after the child was killed just past the window."""
    with _child_at_its_point(tmp_path, mode, n) as db:
        _let_the_window_pass()
    return _states(db)


def test_task_runs_that_finished_before_the_caller_went_idle_survive_a_sigkill(
    tmp_path: Path,
) -> None:
    # The flow runs 50 tasks and then sleeps: nothing records any more, so only the idle
    # committer can commit the last rows.
    flows, tasks = _states_after_a_kill(tmp_path, "idle", n=50)
    assert list(flows.values()) == [["Pending", "Running", "Crashed"]]  # its owner is dead
    assert tasks == {i: ["Pending", "Running", "Completed"] for i in range(50)}


def test_task_runs_that_finished_while_the_caller_keeps_working_survive_a_sigkill(
    tmp_path: Path,
) -> None:
    # 2 ms tasks (~1,600 rows/s): the buffer never fills to 1,000 rows within the window,
    # so the caller must commit by age on its own thread, while it holds the GIL.
    _, tasks = _states_after_a_kill(tmp_path, "busy", n=20)
    for i in range(20):
        assert tasks.get(i) == ["Pending", "Running", "Completed"], i


def test_a_run_inside_a_long_body_is_visible_to_another_process_and_survives_a_sigkill(
    tmp_path: Path,
) -> None:
    with _child_at_its_point(tmp_path, "long_body") as db:
        _let_the_window_pass()
        while_alive = _states(db)  # the child is still running its 30 s task body
        child_pid = _owner_pids(db)
    # While the child lives, its runs are left alone; once it is dead, they are Crashed.
    assert while_alive == ({"durable": ["Pending", "Running"]}, {-1: ["Pending", "Running"]})
    crashed = ["Pending", "Running", "Crashed"]
    assert _states(db) == ({"durable": crashed}, {-1: crashed})
    with SqliteStore(db) as store:
        (run,) = store.flow_runs()
        (task_run,) = store.task_runs()
    assert run.state.is_crashed() and task_run.state.is_crashed()
    assert run.state.message == task_run.state.message
    assert f"pid {child_pid}" in run.state.message
    assert f"host {os.uname().nodename!r}" in run.state.message
    assert "last heartbeat was at 20" in run.state.message


def _owner_pids(db: Path) -> int:
    """The pid of the one process other than this one that owns runs in ``db``."""
    conn = sqlite3.connect(db)
    try:
        sql = "SELECT DISTINCT o.pid FROM owners o JOIN flow_runs r ON r.owner = o.id"
        (pid,) = [pid for (pid,) in conn.execute(sql) if pid != os.getpid()]
    finally:
        conn.close()
    return int(pid)


# in one process: the committer and the setting ----------------------------------------------
def _wait_for_rows(db: Path, table: str, count: int) -> int:
    """Poll the file (another connection) until ``table`` has ``count`` rows, for at most
    WAIT_TIMEOUT_SECONDS; the last count seen."""
    reader = sqlite3.connect(db)
    try:
        deadline = time.monotonic() + WAIT_TIMEOUT_SECONDS
        while True:
            (seen,) = reader.execute(f"SELECT count(*) FROM {table}").fetchone()
            if seen >= count or time.monotonic() > deadline:
                return int(seen)
            threading.Event().wait(0.01)
    finally:
        reader.close()


def test_a_buffer_its_caller_left_is_committed_without_another_call(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SqliteStore(db)
    record_flow(store, finished()[:2], "left-running")
    assert _wait_for_rows(db, "flow_runs", 1) == 1
    store.close()


def test_the_committer_serves_every_open_store(tmp_path: Path) -> None:
    stores = [SqliteStore(tmp_path / f"runs{i}.db") for i in range(3)]
    stores[1].close()
    for i in (0, 2):
        record_task(stores[i], finished(), f"t{i}")
    assert [_wait_for_rows(tmp_path / f"runs{i}.db", "task_runs", 1) for i in (0, 2)] == [1, 1]
    for store in stores:
        store.close()


def test_a_store_with_a_short_interval_is_not_kept_waiting_by_one_with_a_long_one(
    tmp_path: Path,
) -> None:
    # The committer sleeps until the earliest due buffer: a buffer started meanwhile that is
    # due sooner must wake it.
    slow = SqliteStore(tmp_path / "slow.db", commit_interval=60)
    record_task(slow, finished(), "slow")
    _wait_for_committer_to_sleep()
    fast = SqliteStore(tmp_path / "fast.db", commit_interval=0.05)
    record_task(fast, finished(), "fast")
    assert _wait_for_rows(tmp_path / "fast.db", "task_runs", 1) == 1
    fast.close()
    slow.close()


def _wait_for_committer_to_sleep() -> None:
    """Give the committer thread the GIL so that it computes its next wake-up."""
    threading.Event().wait(0.05)


def test_a_long_commit_interval_keeps_rows_buffered(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SqliteStore(db, commit_interval=60)
    record_task(store, finished(), "t1")
    reader = sqlite3.connect(db)
    # Nothing was due: the rows wait for their interval (or a flush, a read, close).
    assert reader.execute("SELECT count(*) FROM task_runs").fetchone() == (0,)
    store.flush()
    assert reader.execute("SELECT count(*) FROM task_runs").fetchone() == (1,)
    reader.close()
    store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_commits_its_own_buffer_with_a_committer_of_its_own(
    tmp_path: Path,
) -> None:
    # The parent's committer thread does not exist in the child: the child starts its own.
    db = tmp_path / "runs.db"
    store = SqliteStore(db)
    record_task(store, finished(), "from-parent")
    store.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: record, signal, then idle until killed
        try:
            record_task(store, finished(), "from-child")
            os.write(write_end, b"!")
            time.sleep(30)
        finally:
            os._exit(1)
    os.close(write_end)
    try:
        assert select.select([read_end], [], [], SIGNAL_TIMEOUT_SECONDS)[0]
        assert _wait_for_rows(db, "task_runs", 2) == 2
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
    store.close()


def test_short_top_level_calls_do_not_wake_the_committer_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each top-level call flushes at its end, so each next call starts a buffer. Waking the
    # committer for every one cost a thread switch per call (~15% of an empty flow call):
    # once every buffer is empty it waits one interval before sleeping until woken.
    scans = 0
    commit_if_due = _Writer.commit_if_due

    def counted(self: _Writer) -> float | None:
        nonlocal scans
        scans += 1
        return commit_if_due(self)

    monkeypatch.setattr(_Writer, "commit_if_due", counted)
    store = SqliteStore(tmp_path / "runs.db")
    calls = 300
    for i in range(calls):
        record_task(store, finished(), f"t{i}")
        store.flush()
        threading.Event().wait(0.001)  # between calls: the committer finds nothing buffered
    store.close()
    # Without lingering: one or two scans per call. With it: a few per 100 ms.
    assert scans < calls / 4
