"""Timeouts under the real clock: what is interrupted, and who is released.

These tests assert behaviour, not durations: a body that was interrupted never reaches the
line after its blocking call, and a released caller sees the timeout while the body it
abandoned is still running. (How fast, in wall time, is measured by benchmarks/.)
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

from wfkit import flow, task
from wfkit.context import use_runtime
from wfkit.exceptions import FlowRunTimeoutError


@pytest.fixture
def store():
    with use_runtime(store="memory://") as rt:
        yield rt.store


def test_main_thread_sync_flow_is_interrupted_in_time_sleep(store):
    reached: list[str] = []

    @flow(timeout_seconds=0.2)
    def sleepy():
        time.sleep(5)
        reached.append("after sleep")

    assert threading.current_thread() is threading.main_thread()
    with pytest.raises(FlowRunTimeoutError, match=r"exceeded its timeout of 0.2 second") as info:
        sleepy()
    assert isinstance(info.value, TimeoutError)
    assert reached == []
    (run,) = store.flow_runs()
    assert run.state_names == ["Pending", "Running", "TimedOut"]
    assert run.state.type.value == "FAILED"
    # The SIGALRM handler wfkit installed is removed again.
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_main_thread_task_timeout_inside_flow_with_longer_timeout(store):
    reached: list[str] = []

    @task(timeout_seconds=0.1)
    def slow_task():
        time.sleep(5)
        reached.append("task after sleep")

    @flow(timeout_seconds=30)
    def outer():
        state = slow_task(return_state=True)
        reached.append("flow continued")
        return state.name

    assert outer() == "TimedOut"
    assert reached == ["flow continued"]
    (task_run,) = store.task_runs()
    assert task_run.state_names == ["Pending", "Running", "TimedOut"]
    assert store.flow_runs()[0].state_names == ["Pending", "Running", "Completed"]


def test_outer_deadline_wins_over_a_longer_inner_one(store):
    reached: list[str] = []

    @task(timeout_seconds=30)
    def long_task():
        time.sleep(5)
        reached.append("task after sleep")

    @flow(timeout_seconds=0.2)
    def outer():
        long_task()
        reached.append("flow after task")

    with pytest.raises(FlowRunTimeoutError):
        outer()
    assert reached == []
    assert store.flow_runs()[0].state_names == ["Pending", "Running", "TimedOut"]
    # The task was cut off by its flow's deadline, not its own: it crashed, not timed out.
    assert store.task_runs()[0].state_names == ["Pending", "Running", "Crashed"]


def test_worker_thread_caller_is_released_while_body_still_runs(store):
    body_finished = threading.Event()
    outcome: dict[str, object] = {}

    @flow(timeout_seconds=0.2)
    def blocking():
        time.sleep(1.5)
        body_finished.set()

    def caller() -> None:
        with use_runtime(store=store):
            try:
                blocking()
            except BaseException as exc:
                outcome["error"] = exc
                outcome["body_finished_when_released"] = body_finished.is_set()

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(timeout=30)
    assert isinstance(outcome["error"], FlowRunTimeoutError)
    assert outcome["body_finished_when_released"] is False
    assert store.flow_runs()[0].state_names == ["Pending", "Running", "TimedOut"]
    # The abandoned body is interrupted at its next bytecode once its sleep returns:
    # it never reaches the line after the sleep.
    assert not body_finished.wait(3)


def test_async_flow_is_cancelled_at_deadline(store):
    reached: list[str] = []

    @flow(timeout_seconds=0.2)
    async def asleep():
        await asyncio.sleep(5)
        reached.append("after sleep")

    with pytest.raises(FlowRunTimeoutError):
        asyncio.run(asleep())
    assert reached == []
    assert store.flow_runs()[0].state_names == ["Pending", "Running", "TimedOut"]


def test_async_task_timeout_with_retry_is_retried(store):
    attempts: list[int] = []

    @task(timeout_seconds=0.1, retries=1)
    async def slow_then_fast():
        from wfkit.runtime import task_run

        attempts.append(task_run.run_count)
        if task_run.run_count == 1:
            await asyncio.sleep(5)
        return "done"

    assert asyncio.run(slow_then_fast()) == "done"
    assert attempts == [1, 2]
    assert store.task_runs()[0].state_names == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]


def test_body_finishing_before_deadline_is_not_affected(store):
    @task(timeout_seconds=5)
    def quick(x):
        return x * 2

    assert quick(21) == 42
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
