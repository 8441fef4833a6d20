"""ProcessPoolTaskRunner: tasks run in worker processes; their states are recorded in the
flow's run store (memory or SQLite) with the same histories as local runs.

The tasks live in ``_process_tasks`` (module level) so worker processes can import them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from wfkit import flow, tags, task
from wfkit.context import use_runtime
from wfkit.exceptions import TaskRunTimeoutError
from wfkit.task_runners import ProcessPoolTaskRunner

from . import _process_tasks as pt

RUNNER = ProcessPoolTaskRunner(max_workers=2)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path: Path):
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'wfkit.db'}"
    with use_runtime(store=url) as rt:
        yield rt.store


@flow(task_runner=RUNNER)
def submit_and_map():
    return pt.square.submit(3).result(), pt.square.map([1, 2, 3]).result()


def test_results_of_submit_and_map_come_back(store):
    assert submit_and_map() == (9, [1, 4, 9])


def test_tasks_run_in_other_processes(store):
    @flow(task_runner=RUNNER)
    def main():
        return pt.pid.map(range(4)).result()

    pids = main()
    assert len(pids) == 4
    assert os.getpid() not in pids


def test_states_are_recorded_in_the_flow_store(store):
    seen = {}

    @flow(task_runner=RUNNER)
    def main():
        futures = pt.square.map([1, 2, 3])
        seen["futures"] = futures
        return futures.result()

    assert main() == [1, 4, 9]
    (flow_run,) = store.flow_runs()
    runs = store.task_runs(task_name="square")
    assert len(runs) == 3
    assert {r.id for r in runs} == {f.task_run_id for f in seen["futures"]}
    for run in runs:
        assert run.state_names == ["Pending", "Running", "Completed"]
        assert run.flow_run_id == flow_run.id
        assert run.run_count == 1
        assert run.start_time is not None and run.end_time is not None
    assert sorted(r.parameters["x"] for r in runs) == [1, 2, 3]
    assert flow_run.state_names == ["Pending", "Running", "Completed"]


def test_a_failing_process_task_is_failed_and_result_reraises(store):
    seen = {}

    @flow(task_runner=RUNNER)
    def main():
        future = pt.fails.submit("broken in a worker")
        with pytest.raises(ValueError, match="broken in a worker"):
            future.result()
        seen["state"] = future.state
        return "handled"

    assert main() == "handled"
    assert seen["state"].is_failed()
    (run,) = store.task_runs(task_name="fails")
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert "broken in a worker" in run.state.message


def test_run_context_in_the_worker_process(store):
    seen = {}

    @flow(task_runner=RUNNER)
    def main():
        future = pt.identity.submit()
        seen["future"] = future
        return future.result()

    info = main()
    (flow_run,) = store.flow_runs()
    (run,) = store.task_runs(task_name="identity")
    assert info["task_run_id"] == run.id == seen["future"].task_run_id
    assert info["task_run_name"] == run.name
    assert info["flow_run_id"] == flow_run.id


def test_a_flow_parameter_that_cannot_be_pickled_does_not_keep_tasks_from_workers(store):
    """The worker shows its task the flow run's parameters: one that cannot go there (a
    lock, a client, a connection) shows as its repr, as in with_context. It used to fail
    every submission of the flow with "cannot pickle '_thread.lock' object"."""
    lock = threading.Lock()

    @flow(task_runner=RUNNER)
    def main(guard, n):
        return pt.flow_run_seen.submit().result()

    seen = main(lock, 3)
    (flow_run,) = store.flow_runs()
    assert (seen["id"], seen["name"]) == (flow_run.id, flow_run.name)
    assert seen["parameters"] == {"guard": repr(lock), "n": 3}
    (run,) = store.task_runs(task_name="flow_run_seen")
    assert run.state_names == ["Pending", "Running", "Completed"]


def test_tags_reach_process_task_runs(store):
    @flow(task_runner=RUNNER)
    def main():
        with tags("inner"):
            return pt.tagged.submit().result()

    with tags("outer"):
        assert main() == ["inner", "outer", "proc"]
    (run,) = store.task_runs(task_name="tagged")
    assert sorted(run.tags) == ["inner", "outer", "proc"]


def test_run_logger_lines_reach_the_flow_store(store):
    seen = {}

    @flow(task_runner=RUNNER)
    def main():
        future = pt.logs.submit("x")
        seen["future"] = future
        return future.result()

    main()
    task_run_id = seen["future"].task_run_id
    lines = [r for r in store.logs(run_id=task_run_id) if r.message == "hello from process task x"]
    assert len(lines) == 1
    assert lines[0].flow_run_id == store.flow_runs()[0].id


def test_futures_between_process_tasks(store):
    seen = {}

    @flow(task_runner=RUNNER)
    def main():
        first = pt.square.submit(2)
        second = pt.square.submit(first)
        seen.update(first=first, second=second)
        return second.result()

    assert main() == 16
    (second,) = [r for r in store.task_runs() if r.id == seen["second"].task_run_id]
    assert second.upstream_ids == (seen["first"].task_run_id,)


def test_failed_upstream_leaves_process_task_not_ready(store):
    @flow(task_runner=RUNNER)
    def main():
        return pt.square.submit(pt.fails.submit()).wait()

    main()
    (run,) = store.task_runs(task_name="square")
    assert run.state_names == ["Pending", "NotReady"]


def test_process_task_timeout(store):
    seen = {}

    @flow(task_runner=RUNNER)
    def main():
        future = pt.too_slow.submit()
        try:
            future.result()
        except TaskRunTimeoutError as exc:
            seen["error"] = exc

    main()
    assert isinstance(seen.get("error"), TaskRunTimeoutError)
    (run,) = store.task_runs(task_name="too_slow")
    assert run.state_names == ["Pending", "Running", "TimedOut"]


def test_async_task_on_a_process_pool(store):
    @flow(task_runner=RUNNER)
    def main():
        return pt.async_square.map([2, 3]).result()

    assert main() == [4, 9]


def test_a_task_defined_in_a_function_is_rejected_at_submit(store):
    @task
    def local_task():
        return 1

    @flow(task_runner=RUNNER)
    def main():
        return local_task.submit()

    with pytest.raises(TypeError, match="module level"):
        main()
    # Recorded Pending before the runner saw it; it never started, and it did not stay
    # Pending: the runner's refusal is its final state.
    (run,) = store.task_runs(task_name="local_task")
    assert run.state_names == ["Pending", "Failed"]
    assert "did not take it" in run.state.message and "module level" in run.state.message


# -- under the harness ------------------------------------------------------------------------
def test_process_tasks_under_the_harness(h):
    @flow(task_runner=RUNNER)
    def main():
        return pt.square.map([1, 2]).result()

    assert main() == [1, 4]
    runs = h.task_runs(pt.square)
    assert len(runs) == 2
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in runs)


def test_process_task_sleeps_are_virtual_under_the_harness(h):
    @flow(task_runner=RUNNER)
    def main():
        return pt.virtual_sleep.map([60, 30]).result()

    states = main(return_state=True)
    runs = h.task_runs(pt.virtual_sleep)
    assert [(r.state_names, r.state.message) for r in runs] == [
        (["Pending", "Running", "Completed"], None)
    ] * 2
    assert states.result() == [60, 30]
    assert h.clock.elapsed == 60


def test_process_task_retries_under_the_harness(h):
    @flow(task_runner=RUNNER)
    def main():
        return pt.fails_twice.submit().result()

    assert main() == 3
    run = h.task_run(pt.fails_twice)
    assert run.state_names == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]
    assert run.run_count == 3
    assert h.clock.elapsed == 20


def test_a_run_whose_worker_process_dies_ends_crashed(store):
    seen = {}

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def main():
        future = pt.dies.submit()
        future.wait()
        seen["state"] = future.state
        return "the flow goes on"

    assert main() == "the flow goes on"
    assert seen["state"].is_crashed()
    (run,) = store.task_runs(task_name="dies")
    assert run.state_names == ["Pending", "Crashed"]
    assert run.state.message.startswith("Running it in another process failed: BrokenProcess")


def test_a_run_whose_arguments_cannot_be_pickled_fails_naming_the_argument(store):
    seen = {}

    @flow(task_runner=RUNNER)
    def main():
        future = pt.square.submit(threading.Lock())
        future.wait()
        seen["state"] = future.state

    main()
    state = seen["state"]
    assert state.is_failed()  # (its value is at fault, not the pool: as on Dask and Ray)
    assert state.message.startswith(
        "argument 'x' (lock) cannot be serialized by pickle to go to another process: "
        "TypeError: cannot pickle '_thread.lock' object."
    )
    (run,) = store.task_runs(task_name="square")
    assert run.state_names == ["Pending", "Failed"]
