"""``timeout_seconds`` of tasks running in worker threads.

Under the real clock a worker thread cannot be interrupted: at the deadline the run is
marked TimedOut and the caller is released while the body is still blocked; the abandoned
body gets an exception raised at its next bytecode, so it never reaches the line after its
blocking call. Under the harness the timeout happens in virtual time.
"""

from __future__ import annotations

import asyncio
import threading
import time

from wfkit import flow, task
from wfkit.exceptions import TaskRunTimeoutError
from wfkit.states import StateType


def test_submitted_task_timeout_releases_the_caller_while_the_body_still_runs(store):
    body_finished = threading.Event()
    seen: dict = {}

    @task(timeout_seconds=1)
    def stuck():
        time.sleep(5)
        body_finished.set()
        return "too late"

    @flow
    def main():
        future = stuck.submit()
        try:
            future.result()
        except TaskRunTimeoutError as exc:
            seen["error"] = exc
            seen["body_finished_at_release"] = body_finished.is_set()
        seen["state"] = future.state
        seen["future"] = future

    main()
    error = seen["error"]
    assert isinstance(error, TimeoutError)
    (run,) = store.task_runs(task_name="stuck")
    assert repr(run.name) in str(error)
    assert "timeout of 1 second" in str(error)
    # Released at the deadline (1 s) although the body blocks for 5 s.
    assert seen["body_finished_at_release"] is False
    assert seen["state"].name == "TimedOut"
    assert seen["state"].type is StateType.FAILED
    assert run.state_names == ["Pending", "Running", "TimedOut"]
    assert run.id == seen["future"].task_run_id
    # The flow run did not wait for the abandoned body either.
    assert not body_finished.is_set()
    assert store.flow_runs()[0].state_names == ["Pending", "Running", "Completed"]


def test_abandoned_body_never_reaches_the_line_after_its_blocking_call(store):
    reached = threading.Event()

    @task(timeout_seconds=0.2)
    def stuck():
        time.sleep(1)
        reached.set()

    @flow
    def main():
        stuck.submit().wait()

    main()
    (run,) = store.task_runs(task_name="stuck")
    assert run.state_names == ["Pending", "Running", "TimedOut"]
    assert not reached.wait(3)  # the sleep returned after 1 s; the next line never ran


def test_timed_out_task_is_retried_like_any_failure(store):
    attempts = []

    @task(timeout_seconds=0.2, retries=1)
    def slow_then_fast():
        attempts.append(len(attempts))
        if len(attempts) == 1:
            time.sleep(2)
        return "second attempt"

    @flow
    def main():
        return slow_then_fast.submit().result()

    assert main() == "second attempt"
    (run,) = store.task_runs(task_name="slow_then_fast")
    assert run.state_names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert "exceeded its timeout" in run.states[2].message


def test_async_task_timeout_on_the_runner_loop(store):
    seen: dict = {}

    @task(timeout_seconds=0.2)
    async def stuck_async():
        await asyncio.sleep(5)
        seen["after"] = True

    @flow
    def main():
        future = stuck_async.submit()
        try:
            future.result()
        except TaskRunTimeoutError as exc:
            seen["error"] = exc

    main()
    assert "after" not in seen
    assert isinstance(seen["error"], TaskRunTimeoutError)
    (run,) = store.task_runs(task_name="stuck_async")
    assert run.state_names == ["Pending", "Running", "TimedOut"]


def test_submitted_task_timeout_under_the_harness_is_virtual(h):
    reached: list = []
    seen: dict = {}

    @task(timeout_seconds=1)
    def stuck():
        time.sleep(5)
        reached.append("after")

    @flow
    def main():
        future = stuck.submit()
        try:
            future.result()
        except TaskRunTimeoutError as exc:
            seen["error"] = exc

    main()
    assert reached == []
    assert isinstance(seen["error"], TaskRunTimeoutError)
    assert h.clock.elapsed == 1
    assert h.clock.sleeps == [5.0]
    run = h.task_run(stuck)
    assert run.state_names == ["Pending", "Running", "TimedOut"]
    assert (run.end_time - h.clock.start).total_seconds() == 1


def test_concurrent_virtual_timeouts_overlap(h):
    @task(timeout_seconds=1)
    def stuck(i):
        time.sleep(5)

    @flow
    def main():
        futures = stuck.map(range(4))
        futures.wait()
        return [f.state.name for f in futures]

    assert main() == ["TimedOut"] * 4
    assert h.clock.elapsed == 1
