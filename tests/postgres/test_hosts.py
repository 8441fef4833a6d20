"""Many hosts, one PostgreSQL store: processes that play other hosts (``WFKIT_TEST_HOST``)
write at once without losing rows, and a host whose heartbeat stops has its runs Crashed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from tests.postgres._hosts import MANY_TASKS, host_env, poll

from wfkit.stores import open_store

_LONG_FLOW = textwrap.dedent(
    """
    import sys, threading
    from wfkit import flow, task

    @task
    def hangs():
        open(sys.argv[1], "w").close()
        threading.Event().wait(600)

    @flow
    def waits():
        hangs()

    waits()
    """
)


def test_a_host_whose_heartbeat_stops_has_its_runs_crashed(fresh_url: str, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", _LONG_FLOW, str(ready)],
        env=host_env(fresh_url, "host-b", WFKIT_HEARTBEAT_INTERVAL="0.2"),
    )
    try:
        assert poll(ready.exists), "the child never reached its flow body"
        with open_store(fresh_url, read_only=True) as reader:
            assert poll(lambda: len(reader.flow_runs()) == 1)
        # Well past three heartbeat intervals: a host that beats stays Running.
        threading.Event().wait(1.0)
        with open_store(fresh_url) as writer:
            (run,) = writer.flow_runs()
            assert (run.state.name, run.host) == ("Running", run.host)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with open_store(fresh_url, read_only=True) as reader:
        assert poll(lambda: reader.flow_runs()[0].state.name == "Crashed")
        message = reader.flow_runs()[0].state.message
        # Counts show it so too, though nothing is stored so yet:
        assert reader.flow_run_counts() == {"Crashed": 1}
        assert reader.flow_run_counts(flow_name="waits") == {"Crashed": 1}
        run_id = reader.flow_runs()[0].id
        assert reader.task_run_counts([run_id]) == {run_id: {"Crashed": 1}}
        ((task_name, states),) = [(g.task_name, g.states) for g in reader.task_run_groups(run_id)]
        assert (task_name, states) == ("hangs", {"Crashed": 1})
        summary = reader.summary()  # ...and the summary, with host-b no longer a live owner
        assert (summary.flow_runs, summary.task_runs) == ({"Crashed": 1}, {"Crashed": 1})
        assert summary.owners == ()
    assert "'host-b'" in message and "no heartbeat" in message
    with open_store(fresh_url) as writer:  # a writer records it
        assert poll(lambda: writer.flow_runs()[0].state.name == "Crashed")
    with open_store(fresh_url, read_only=True) as reader:  # ...so it is stored Crashed
        assert reader.summary().flow_runs == {"Crashed": 1}


@pytest.mark.parametrize("processes", [4])
def test_processes_on_many_hosts_write_at_once_and_lose_nothing(
    fresh_url: str, processes: int
) -> None:
    tasks = 250
    children = [
        subprocess.Popen(
            [sys.executable, "-c", MANY_TASKS, str(tasks)],
            env=host_env(fresh_url, f"host-{i}", WFKIT_STORE_COMMIT_INTERVAL="0.01"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    outputs = [child.communicate(timeout=300) for child in children]
    expected = str(sum(i * i for i in range(tasks)))
    assert [out.strip() for out, _ in outputs] == [expected] * processes, outputs
    with open_store(fresh_url, read_only=True) as reader:
        runs = reader.flow_runs()
        assert [r.state.name for r in runs] == ["Completed"] * processes
        assert reader.summary().task_runs == {"Completed": tasks * processes}
        by_run = reader.task_run_counts([r.id for r in runs])
        assert by_run == {r.id: {"Completed": tasks} for r in runs}
        assert len(reader.task_runs()[0].states) == 3  # Pending, Running, Completed
