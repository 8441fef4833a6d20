"""SERIALIZABLE cache locks across hosts: PostgreSQL advisory locks, taken by processes that
play different hosts (``WFKIT_TEST_HOST``), and the :class:`~wfkit.stores.CacheLock`
protocol as the store implements it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.postgres._hosts import host_env, poll
from tests.postgres._server import PgServer

from wfkit.stores import CacheLockStore, open_store

_SERIAL_TASK = textwrap.dedent(
    """
    import sys, threading, time
    from pathlib import Path
    from wfkit import flow, task
    from wfkit.cache_policies import INPUTS

    marks, go, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    @task(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"))
    def compute(x):
        with marks.open("a") as f:
            f.write("ran\\n")
        # "hang": until killed; else long enough for the other process to ask for the key
        threading.Event().wait(600 if mode == "hang" else 1.0)
        return x * 10

    @flow
    def job():
        return compute(7)

    while not go.exists():
        time.sleep(0.01)
    print(job())
    """
)


def _start(url: str, host: str, tmp_path: Path, mode: str = "quick") -> subprocess.Popen[str]:
    args = [sys.executable, "-c", _SERIAL_TASK, str(tmp_path / "marks"), str(tmp_path / "go")]
    return subprocess.Popen(
        [*args, mode],
        env=host_env(url, host),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _runs_of_body(tmp_path: Path) -> int:
    marks = tmp_path / "marks"
    return len(marks.read_text().splitlines()) if marks.exists() else 0


def test_two_hosts_running_one_serializable_miss_compute_it_once(
    fresh_url: str, tmp_path: Path
) -> None:
    children = [_start(fresh_url, host, tmp_path) for host in ("host-a", "host-b")]
    (tmp_path / "go").touch()  # both start their flow at once
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert (child.returncode, out.split()) == (0, ["70"]), err
    assert _runs_of_body(tmp_path) == 1
    with open_store(fresh_url, read_only=True) as reader:
        assert sorted(run.state.name for run in reader.task_runs()) == ["Cached", "Completed"]


def _advisory_waiters(pg_server: PgServer, url: str) -> int:
    with pg_server.admin(url.rpartition("/")[2]) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    return int(row[0])


def test_a_killed_lock_holder_does_not_block_the_key(
    pg_server: PgServer, fresh_url: str, tmp_path: Path
) -> None:
    (tmp_path / "go").touch()
    holder = _start(fresh_url, "host-a", tmp_path, mode="hang")
    waiter = None
    try:
        assert poll(lambda: _runs_of_body(tmp_path) == 1), "the holder never ran its body"
        waiter = _start(fresh_url, "host-b", tmp_path)
        # The other host waits on the server for the key, its body not run...
        assert poll(lambda: _advisory_waiters(pg_server, fresh_url) == 1)
        assert _runs_of_body(tmp_path) == 1
        holder.send_signal(signal.SIGKILL)  # ...until the holder dies: its session ends
        out, err = waiter.communicate(timeout=120)
    finally:
        for child in (holder, waiter):
            if child is not None and child.poll() is None:
                child.kill()
                child.communicate()
    assert (waiter.returncode, out.split()) == (0, ["70"]), err
    assert _runs_of_body(tmp_path) == 2  # the holder wrote no record: the waiter computed


@pytest.fixture
def two_stores(fresh_url: str) -> Iterator[tuple[CacheLockStore, CacheLockStore]]:
    """Two stores on one database: two processes, as far as the server knows."""
    with open_store(fresh_url) as one, open_store(fresh_url) as two:
        assert isinstance(one, CacheLockStore) and isinstance(two, CacheLockStore)
        yield one, two


def test_a_held_key_is_refused_elsewhere_and_handed_on_release(
    two_stores: tuple[CacheLockStore, CacheLockStore],
) -> None:
    one, two = two_stores
    mine, theirs = one.cache_lock("k"), two.cache_lock("k")
    assert mine.acquire()
    assert not theirs.acquire(blocking=False)
    assert two.cache_lock("another key").acquire(blocking=False)  # keys are apart
    got = threading.Event()
    waiter = threading.Thread(target=lambda: theirs.acquire() and got.set())
    waiter.start()
    assert not got.wait(0.3)  # (a wait that must not end: no wall-clock claim on speed)
    mine.release()
    mine.release()  # (releasing what is not held does nothing)
    waiter.join(30)
    assert got.is_set()
    assert not mine.acquire(blocking=False)
    theirs.release()
    assert mine.acquire(blocking=False)  # given back, the connection reused
    mine.release()
