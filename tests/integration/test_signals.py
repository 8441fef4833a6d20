"""Signals, with real processes: SIGTERM is recorded and still ends the process, Ctrl-C
(SIGINT) is never swallowed and cancels what was queued.

Each test runs ``signal_script.py`` (a flow mapping a task over 500 items on a SQLite
store), waits for the line saying item 3 is running, signals the process, and reads the
store back from a new store object.
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from wfkit.stores import open_store

SCRIPT = Path(__file__).with_name("signal_script.py")
BOUND = 20.0  # seconds any one step may take before the test fails (never reached when green)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _start(url: str, *flags: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "WFKIT_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), url, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], BOUND)
    if not ready:
        proc.kill()
        pytest.fail(f"the script never reached item 3: {proc.communicate()}")
    line = proc.stdout.readline()
    assert line.startswith("running"), (line, proc.communicate())
    return proc, line


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=BOUND)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the script did not end after the signal: {out}\n{err}")
    return proc.returncode, out, err


def _read(url: str) -> tuple[Any, dict[int, Any]]:
    store = open_store(url)
    (flow_run,) = store.flow_runs()
    runs = {r.parameters["i"]: r for r in store.task_runs(flow_run_id=flow_run.id)}
    return flow_run, runs


def _names(runs: dict[int, Any]) -> Counter[str]:
    return Counter(r.state.name for r in runs.values())


def _queue_was_cut(runs: dict[int, Any]) -> None:
    """The queue was cancelled, not run: the last item submitted never started (how many
    ran before the signal landed, or were submitted at all, depends on the machine's load),
    and no cancelled run ever ran."""
    names = _names(runs)
    assert names["Cancelled"] > 0 and runs[max(runs)].state.name == "Cancelled", names
    for run in runs.values():
        if run.state.name == "Cancelled":
            assert "Running" not in run.state_names, run.state_names


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'signals.db'}"


def test_sigterm_records_crashed_and_exits_143(url: str) -> None:
    proc, _ = _start(url)
    proc.send_signal(signal.SIGTERM)
    status, _, err = _finish(proc)

    assert status == -signal.SIGTERM, err  # killed by the signal: a shell shows 143
    flow_run, runs = _read(url)
    assert flow_run.state.name == "Crashed"
    assert flow_run.state.message == "Flow run terminated by SIGTERM."
    assert runs[3].state.name == "Crashed"
    assert runs[3].state.message == "Task run terminated by SIGTERM."
    names = _names(runs)
    assert names["Running"] == names["Pending"] == 0, names
    _queue_was_cut(runs)


def test_sigterm_records_the_task_runs_a_process_pool_is_running(url: str) -> None:
    proc, _ = _start(url, "--process")
    proc.send_signal(signal.SIGTERM)
    status = proc.wait(timeout=BOUND)  # (not communicate: orphaned workers may hold the pipes)
    for pipe in (proc.stdout, proc.stderr):
        assert pipe is not None
        pipe.close()

    assert status == -signal.SIGTERM
    flow_run, runs = _read(url)
    assert flow_run.state.message == "Flow run terminated by SIGTERM."
    assert runs[3].state.name == "Crashed"
    assert runs[3].state.message == "Task run terminated by SIGTERM."
    names = _names(runs)
    assert names["Running"] == names["Pending"] == 0, names


def test_sigterm_while_another_writer_holds_the_store_waits_for_it(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    url = f"sqlite:///{db}"
    proc, _ = _start(url)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        proc.send_signal(signal.SIGTERM)
        try:  # the process cannot record while the lock is held (bounded: the test fails)
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    finally:
        other.execute("ROLLBACK")
        other.close()
    status, _, err = _finish(proc)

    assert status == -signal.SIGTERM, err
    flow_run, runs = _read(url)
    assert flow_run.state.message == "Flow run terminated by SIGTERM."
    assert runs[3].state.message == "Task run terminated by SIGTERM."
    names = _names(runs)
    assert names["Running"] == names["Pending"] == 0, names


def test_sigterm_chains_the_users_handler(url: str) -> None:
    proc, _ = _start(url, "--user-handler")
    proc.send_signal(signal.SIGTERM)
    status, out, err = _finish(proc)

    assert out == "user handler\n", err
    assert status == 7, err  # what the user's handler chose
    flow_run, runs = _read(url)
    # Recorded before the user's handler ran; its SystemExit then ended the flow run's body
    # (a Crashed state of its own).
    assert flow_run.state.name == "Crashed"
    assert "Flow run terminated by SIGTERM." in [s.message for s in flow_run.states]
    # Item 3 may run on the main thread (it helps the pool), where the SystemExit then ends
    # its body too: one more Crashed state after the recorded one.
    assert runs[3].state.is_crashed()
    assert "Task run terminated by SIGTERM." in [s.message for s in runs[3].states]


@pytest.mark.parametrize("flags", [(), ("--inline",)], ids=["map", "inline"])
def test_ctrl_c_cancels_the_queue_and_exits_130(url: str, flags: tuple[str, ...]) -> None:
    proc, _ = _start(url, *flags)
    proc.send_signal(signal.SIGINT)
    status, _, err = _finish(proc)

    assert status == -signal.SIGINT, err  # Python's exit on an uncaught Ctrl-C: 130
    assert "KeyboardInterrupt" in err
    flow_run, runs = _read(url)
    assert flow_run.state.name == "Crashed"
    assert runs[3].state.name == "Crashed"
    names = _names(runs)
    assert names["Running"] == names["Pending"] == 0, names
    if not flags:
        _queue_was_cut(runs)
    else:
        assert len(runs) == 4  # an inline loop stops where it was interrupted


@pytest.mark.parametrize("flags", [("--async",), ("--async", "--inline")], ids=["map", "inline"])
def test_ctrl_c_under_asyncio_run_ends_an_async_flow_at_once(
    url: str, flags: tuple[str, ...]
) -> None:
    # asyncio.run turns the first Ctrl-C into a cancellation of its main task, then raises
    # KeyboardInterrupt once that task has ended. The flow run must end at once (item 3's
    # body sleeps 60 s: waiting for it, or for the other 496, would exceed BOUND), and be
    # recorded as interrupted (Crashed), not as cancelled by the program.
    proc, _ = _start(url, *flags)
    proc.send_signal(signal.SIGINT)
    status, _, err = _finish(proc)

    assert status == -signal.SIGINT, err
    assert "KeyboardInterrupt" in err
    flow_run, runs = _read(url)
    assert flow_run.state.name == "Crashed"  # asyncio cancelled it, for a Ctrl-C
    assert flow_run.state.message == "Flow run crashed: KeyboardInterrupt"
    assert runs[3].state.name == "Crashed"
    names = _names(runs)
    assert names["Running"] == names["Pending"] == 0, names
    if flags == ("--async",):  # all 500 had started: each completed or was crashed
        assert len(runs) == 500 and names["Completed"] + names["Crashed"] == 500, names


def test_interrupt_in_a_worker_thread_reaches_the_caller(url: str) -> None:
    proc, line = _start(url, "--raise-in-worker")
    status, _, err = _finish(proc)

    assert status == -signal.SIGINT, (line, err)
    flow_run, runs = _read(url)
    assert flow_run.state.name == "Crashed"
    assert runs[3].state.name == "Crashed"
    names = _names(runs)
    assert names["Running"] == names["Pending"] == 0, names
    _queue_was_cut(runs)


_INSTALL_CHECK = """
import signal, sys, threading
from wfkit import flow
from wfkit.context import use_runtime
from wfkit.testing import harness

@flow
def empty():
    return 1

def handler():
    found = signal.getsignal(signal.SIGTERM)
    return {signal.SIG_DFL: "default", signal.SIG_IGN: "ignored"}.get(found, "installed")

if sys.argv[2] == "ignored":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with harness():
    empty()
under_harness = handler()
with use_runtime(store=sys.argv[1]):
    thread = threading.Thread(target=empty)
    thread.start()
    thread.join()
    in_a_thread = handler()
    empty()
print(under_harness, in_a_thread, handler())
"""


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        ("default", ["default", "default", "installed"]),
        ("ignored", ["ignored", "ignored", "ignored"]),  # ignored on purpose: left alone
    ],
)
def test_handler_is_installed_on_the_main_thread_outside_the_harness(
    url: str, before: str, expected: list[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _INSTALL_CHECK, url, before],
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert result.stdout.split() == expected, result.stderr
