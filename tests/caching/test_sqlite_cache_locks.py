"""``isolation_level="SERIALIZABLE"`` across the processes sharing one SQLite file: record
locks in ``<file>.locks`` (:mod:`wfkit.stores._sqlite_cache_locks`). Every case runs real
processes: a process never conflicts with its own record locks. And what the engine does
when a store's lock cannot be taken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from wfkit import flow, task
from wfkit.cache_policies import INPUTS
from wfkit.context import use_runtime
from wfkit.exceptions import StoreError
from wfkit.stores import CacheLock, CacheLockStore, open_store
from wfkit.stores.memory import MemoryStore

pytestmark = pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's fcntl")

_ASYNC_FAN_OUT = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from wfkit import flow, task
    from wfkit.cache_policies import INPUTS

    marks, go = Path(sys.argv[1]), Path(sys.argv[2])

    @task(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"))
    async def compute(x):
        with marks.open("a") as f:
            f.write("ran\\n")
        await asyncio.sleep(1.0)  # long enough for the other processes to ask for the key
        return x * 10

    @flow
    async def job():
        return await asyncio.gather(*(compute(7) for _ in range(3)))

    while not go.exists():
        time.sleep(0.01)
    print(asyncio.run(job()))
    """
)

_HOLD = textwrap.dedent(
    """
    import sys, threading
    from wfkit.stores import open_store

    lock = open_store(sys.argv[1]).cache_lock("k")
    lock.acquire()
    print("held", flush=True)
    threading.Event().wait(600)
    """
)


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "WFKIT_STORE": url}


def _poll(condition: Callable[[], object], seconds: float = 30.0) -> bool:
    done = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        done.wait(0.05)
    return bool(condition())


def test_three_processes_of_async_tasks_compute_one_miss_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    args = [sys.executable, "-c", _ASYNC_FAN_OUT, str(tmp_path / "marks"), str(tmp_path / "go")]
    children = [
        subprocess.Popen(args, env=_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    (tmp_path / "go").touch()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert (child.returncode, out.decode().split()) == (0, ["[70,", "70,", "70]"]), err
    assert (tmp_path / "marks").read_text().splitlines() == ["ran"]
    with open_store(url, read_only=True) as reader:
        states = sorted(run.state.name for run in reader.task_runs())
    assert states == ["Cached"] * 8 + ["Completed"]


def _waiters(lock_file: Path) -> int:
    """Processes waiting for a record lock on ``lock_file`` (Linux's /proc/locks)."""
    inode = f":{lock_file.stat().st_ino} "
    return sum("->" in line and inode in line for line in Path("/proc/locks").open())


def _holder(url: str) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", _HOLD, url], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    return child


def test_a_key_another_process_holds_waits_until_that_process_dies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    holder = _holder(url)
    try:
        with open_store(url) as store:
            assert isinstance(store, CacheLockStore)
            lock = store.cache_lock("k")
            assert not lock.acquire(blocking=False)
            assert store.cache_lock("another key").acquire(blocking=False)
            got = threading.Event()
            waiter = threading.Thread(target=lambda: lock.acquire() and got.set())
            waiter.start()
            assert _poll(lambda: _waiters(tmp_path / "runs.db.locks") == 1)
            holder.send_signal(signal.SIGKILL)  # the kernel frees a dead process's locks
            waiter.join(30)
            assert got.is_set()
            lock.release()
            lock.release()  # (releasing what is not held does nothing)
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / "runs.db.locks").stat().st_mode & 0o077 == 0  # the owner's alone


def test_closing_another_store_on_the_file_keeps_a_held_lock(tmp_path: Path) -> None:
    # (closing any descriptor of a file drops the process's record locks on it: the lock
    # file is opened once per process, and never closed)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with open_store(url) as store:
        lock = store.cache_lock("k")
        assert lock.acquire()
        with open_store(url) as other:
            other.cache_lock("other key").acquire(blocking=False)
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, url], capture_output=True, text=True, timeout=60
        )
        assert probe.stdout.split() == ["False"], probe.stderr
        lock.release()


_PROBE = "import sys; from wfkit.stores import open_store\n" + (
    "print(open_store(sys.argv[1]).cache_lock('k').acquire(blocking=False))"
)


class _LostLockStore(MemoryStore):
    """A store whose cache locks cannot be taken (a server gone, a lock file not writable)."""

    def cache_lock(self, key: str) -> CacheLock:
        return _LostLock()


class _LostLock:
    def acquire(self, blocking: bool = True) -> bool:
        raise StoreError("the lock server is gone")

    def release(self) -> None:
        raise AssertionError("never held, never released")


def test_a_store_lock_that_fails_leaves_the_in_process_lock_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @task(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"))
    def compute(x: int) -> int:
        return x * 10

    @flow
    def job() -> list[int]:
        return [compute(7), compute(7)]

    with use_runtime(store=_LostLockStore()) as rt:
        assert job() == [70, 70]
        states = [run.state.name for run in rt.store.task_runs()]
    assert states == ["Completed", "Cached"]
    warnings = [r.getMessage() for r in caplog.records if "store's lock" in r.getMessage()]
    assert len(warnings) == 2  # (each run says so)
    assert "(the lock server is gone)" in warnings[0] and "only this process" in warnings[0]
