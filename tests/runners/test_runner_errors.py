"""A task runner's own error ends the run Crashed, whatever the runner.

A runner's future may end with an error raised outside the run's lifecycle: a bug in the
runner's job, in its send path, or in the engine around the run. The run used to stay
Pending in the store, the runs downstream said their upstream "ended Pending", and a run
that the runner never started was never counted as ended, so its flow run waited for it
forever. Now such a run ends Crashed, with a message naming the error and saying it is an
internal error of the runner, and the traceback logged with the run.

The broken runners here are deliberately broken third-party runners: real runners can have
such bugs. Each flow runs under a time bound, so that a hang fails the test with every
thread's stack instead of stopping the test run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wfkit import flow, task
from wfkit.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from wfkit.task_runners._jobs import Job
from wfkit.testing.harness import Harness, harness

from ._chains import finish_within

BOUND_SECONDS = 30
INTERNAL = "Task run crashed by an internal error of its task runner, not of the task: "


@task
def breaks_the_runner() -> int:
    """A task the broken runners below fail on (its body is never at fault)."""
    return 1


@task
def add_one(x: int) -> int:
    return x + 1


@task
async def breaks_the_runner_async() -> int:
    return 1


class RunnerBug(Exception):
    """The bug of a broken runner."""


def _bug() -> RunnerBug:
    return RunnerBug("the runner's job broke")


def _is_target(call: Any) -> bool:
    return call.task.name in ("breaks_the_runner", "breaks_the_runner_async")


class JobBreaks(ThreadPoolTaskRunner):
    """A thread pool whose job for one task raises before it runs the call."""

    def _submit_call(self, call: Any, is_async: bool) -> Job:
        if not _is_target(call):
            return super()._submit_call(call, is_async)

        def work() -> Any:
            raise _bug()

        return self._queue(Job(call, work))


class _StartFails:
    """A runner's wrapper around a call, whose run_async raises before starting it."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)

    async def run_async(self) -> Any:
        raise _bug()


class LoopJobBreaks(ThreadPoolTaskRunner):
    """A thread pool whose event loop fails one async task's start."""

    def _start_on_loop(self, call: Any) -> Job:
        return super()._start_on_loop(_StartFails(call) if _is_target(call) else call)


class SendReturnsJunk(ProcessPoolTaskRunner):
    """A process pool whose send hands back something that is not the run's outcome."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets: set[str] = set()

    def _send(self, remote: Any) -> Any:
        if remote.task_run_id in self.targets:
            return object()
        return super()._send(remote)

    def _submit_call(self, call: Any, is_async: bool) -> Job:
        if _is_target(call):
            self.targets.add(call.task_run_id)
        return super()._submit_call(call, is_async)


class ExecutorRunner:
    """A third-party runner on concurrent.futures; ``fault`` is its bug for one task:
    "raises" (the work raises before it runs the call) or "skips" (the future gets a
    result without the call having run)."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)

    def duplicate(self) -> ExecutorRunner:
        return ExecutorRunner(self.fault)

    def submit(self, call: Any) -> concurrent.futures.Future[Any]:
        if not _is_target(call):
            return self.pool.submit(call.run)
        if self.fault == "raises":
            return self.pool.submit(lambda: _raise(_bug()))
        return self.pool.submit(lambda: None)

    def shutdown(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait)


def _raise(error: BaseException) -> Any:
    raise error


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with harness(store="sqlite", directory=tmp_path) as hh:
        yield hh


def run_bounded(flow_fn: Any) -> Any:
    """The flow's final state; fails naming every thread's stack if it hangs."""

    def call() -> Any:
        if flow_fn.isasync:
            return asyncio.run(flow_fn(return_state=True))
        return flow_fn(return_state=True)

    return finish_within(BOUND_SECONDS, contextvars.copy_context().run, call)


def flow_with_downstream(runner: Any, is_async: bool = False) -> Any:
    """A flow submitting the broken run and one run downstream of it, returning that."""
    if is_async:

        @flow(task_runner=runner)
        async def pipeline_async() -> Any:
            return add_one.submit(breaks_the_runner.submit())

        return pipeline_async

    @flow(task_runner=runner)
    def pipeline() -> Any:
        return add_one.submit(breaks_the_runner.submit())

    return pipeline


def assert_crashed_by_the_runner(h: Harness, target: Any, error: str, raised: bool = True) -> None:
    """``target``'s run went Pending -> Crashed with the internal-error message naming
    ``error``, logged with the run (with the traceback, for an error that was ``raised``)."""
    run = h.task_run(target)
    assert run.state_names == ["Pending", "Crashed"]
    assert run.state.message.startswith(INTERNAL + error)
    assert "please report it" in run.state.message
    [line] = [record for record in h.logs(run.id) if "Finished in state Crashed" in record.message]
    assert line.level_name == "ERROR"
    assert error.split(":")[0] in line.message
    assert ("Traceback" in line.message) is raised


def assert_downstream_not_ready(h: Harness, flow_state: Any) -> None:
    downstream = h.task_run(add_one)
    assert downstream.state_names == ["Pending", "NotReady"]
    assert "it ended Crashed" in downstream.state.message
    assert flow_state.name == "Failed"
    assert "it ended Crashed" in flow_state.message
    assert h.flow_run().state_names == ["Pending", "Running", "Failed"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync flow", "async flow"])
def test_a_job_that_raises_before_running_its_call_ends_the_run_crashed(
    h: Harness, is_async: bool
) -> None:
    # (before: the run was never counted as ended, and the flow run waited forever)
    state = run_bounded(flow_with_downstream(JobBreaks(max_workers=2), is_async))
    assert_crashed_by_the_runner(h, breaks_the_runner, "RunnerBug: the runner's job broke")
    assert_downstream_not_ready(h, state)


def test_the_runners_error_reaches_whoever_waits_for_the_result(h: Harness) -> None:
    @flow(task_runner=JobBreaks(max_workers=2))
    def waits() -> int:
        return breaks_the_runner.submit().result()  # type: ignore[no-any-return]

    state = run_bounded(waits)
    assert state.name == "Failed"
    assert isinstance(state.exception, RunnerBug)
    assert_crashed_by_the_runner(h, breaks_the_runner, "RunnerBug")


def test_an_async_task_whose_start_fails_on_the_loop_ends_crashed(h: Harness) -> None:
    @flow(task_runner=LoopJobBreaks())
    def pipeline() -> Any:
        return add_one.submit(breaks_the_runner_async.submit())

    state = run_bounded(pipeline)
    assert_crashed_by_the_runner(h, breaks_the_runner_async, "RunnerBug")
    assert_downstream_not_ready(h, state)


def test_a_send_that_returns_no_outcome_ends_the_run_crashed(h: Harness) -> None:
    # The error is raised while the flow's process replays what came back: outside the
    # lifecycle, after the send (whose own errors were already Crashed). Before: Pending,
    # and the runs downstream "ended Pending"; the AttributeError was seen by nobody.
    state = run_bounded(flow_with_downstream(SendReturnsJunk(max_workers=1)))
    assert_crashed_by_the_runner(h, breaks_the_runner, "AttributeError: 'object' object")
    assert_downstream_not_ready(h, state)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync flow", "async flow"])
def test_a_third_party_future_that_fails_without_running_the_call(
    h: Harness, is_async: bool
) -> None:
    state = run_bounded(flow_with_downstream(ExecutorRunner("raises"), is_async))
    assert_crashed_by_the_runner(h, breaks_the_runner, "RunnerBug: the runner's job broke")
    assert_downstream_not_ready(h, state)


def test_a_third_party_future_that_finishes_without_running_the_call(h: Harness) -> None:
    # (before: the flow run waited forever for the run that never started)
    @flow(task_runner=ExecutorRunner("skips"))
    def submits() -> None:
        breaks_the_runner.submit()

    assert run_bounded(submits).name == "Completed"  # (it never looked at the run)
    assert_crashed_by_the_runner(
        h, breaks_the_runner, "RuntimeError: the task runner's future finished without", False
    )


def test_a_future_that_finishes_without_running_the_call_reads_crashed_downstream(
    h: Harness,
) -> None:
    # A run waiting on it (and the flow, through its future) sees the run Crashed. Before:
    # the runner's junk result (None) was taken for the run's state, and the run downstream
    # failed with "'NoneType' object has no attribute 'is_completed'".
    state = run_bounded(flow_with_downstream(ExecutorRunner("skips")))
    assert_crashed_by_the_runner(
        h, breaks_the_runner, "RuntimeError: the task runner's future finished without", False
    )
    assert_downstream_not_ready(h, state)


def test_runs_the_runner_ran_are_untouched(h: Harness) -> None:
    # The watch on third-party futures changes nothing for runs that ran, failed or not.
    @flow(task_runner=ExecutorRunner("raises"))
    def fine() -> int:
        return add_one.submit(add_one.submit(1)).result()  # type: ignore[no-any-return]

    assert run_bounded(fine).result() == 3
    assert [r.state_names for r in h.task_runs()] == [["Pending", "Running", "Completed"]] * 2


def setup_fails() -> None:
    """A worker process's initializer that raises (run in the worker, by name)."""
    raise RuntimeError("the worker's setup failed")


def test_a_process_pool_whose_initializer_raises_crashes_its_runs_naming_it(h: Harness) -> None:
    # The pool's own error says only that a process ended; the initializer's traceback is on
    # the worker's stderr. The run's message now points there.
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1, initializer=setup_fails))
    def pipeline() -> Any:
        return add_one.submit(breaks_the_runner.submit())

    state = run_bounded(pipeline)
    run = h.task_run(breaks_the_runner)
    assert run.state_names == ["Pending", "Crashed"]
    assert run.state.message.startswith("Running it in another process failed: BrokenProcessPool")
    assert "initializer=<function setup_fails" in run.state.message
    assert_downstream_not_ready(h, state)
