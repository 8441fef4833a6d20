"""Timeouts under the fake clock happen in virtual time (SPEC §3.5)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from wfkit import flow, task
from wfkit.context import Runtime, current_clock
from wfkit.exceptions import FlowRunTimeoutError, TaskRunTimeoutError, WfkitError
from wfkit.states import StateType

from ._support import only_run

ERRORS = {"flow": FlowRunTimeoutError, "task": TaskRunTimeoutError}


def make_sleeper(is_async: bool, kind: str, seconds: float, **options: Any) -> Any:
    """A flow/task whose body sleeps ``seconds`` on the run's clock (``asleep`` when async)."""
    decorator = flow if kind == "flow" else task
    if is_async:

        async def sleeper() -> str:
            await current_clock().asleep(seconds)
            return "woke"

        return decorator(sleeper, **options)

    def sleeper() -> str:  # type: ignore[misc]
        current_clock().sleep(seconds)
        return "woke"

    return decorator(sleeper, **options)


def test_timeout_ends_the_run_at_the_deadline(runtime: Runtime, mode: Any, kind: str) -> None:
    decorated = make_sleeper(mode.is_async, kind, 5, timeout_seconds=1)

    with pytest.raises(ERRORS[kind]) as info:
        mode.call(decorated)

    run = only_run(runtime, kind)
    assert runtime.clock.elapsed == 1.0
    assert run.state_names == ["Pending", "Running", "TimedOut"]
    assert run.state.type is StateType.FAILED
    assert run.state.exception is info.value
    assert run.end_time == runtime.clock.start + timedelta(seconds=1)


def test_timeout_error_is_a_timeout_error_naming_run_and_limit(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    decorated = make_sleeper(mode.is_async, kind, 5, timeout_seconds=1)

    with pytest.raises(TimeoutError) as info:
        mode.call(decorated)

    assert isinstance(info.value, WfkitError)
    run = only_run(runtime, kind)
    message = str(info.value)
    assert repr(run.name) in message
    assert "timeout_seconds=1" in message
    assert run.state.message == message


def test_timeout_with_return_state(runtime: Runtime, mode: Any, kind: str) -> None:
    state = mode.call(make_sleeper(mode.is_async, kind, 5, timeout_seconds=1), return_state=True)

    assert state.name == "TimedOut"
    assert state.is_failed()
    assert isinstance(state.exception, ERRORS[kind])


def test_body_within_its_timeout_completes(runtime: Runtime, mode: Any, kind: str) -> None:
    assert mode.call(make_sleeper(mode.is_async, kind, 0.5, timeout_seconds=1)) == "woke"

    assert only_run(runtime, kind).state_names == ["Pending", "Running", "Completed"]
    assert runtime.clock.elapsed == 0.5


def test_no_timeout_means_the_body_sleeps_fully(runtime: Runtime, mode: Any, kind: str) -> None:
    assert mode.call(make_sleeper(mode.is_async, kind, 5, timeout_seconds=0)) == "woke"

    assert runtime.clock.elapsed == 5.0


def test_body_that_moves_the_clock_past_the_deadline_times_out(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    decorated = mode.make(kind, lambda: current_clock().advance(5), timeout_seconds=1)

    with pytest.raises(ERRORS[kind]):
        mode.call(decorated)

    assert only_run(runtime, kind).state.name == "TimedOut"


def test_timed_out_run_is_retried(runtime: Runtime, mode: Any, kind: str) -> None:
    attempts: list[int] = []

    if mode.is_async:

        async def body() -> str:
            attempts.append(1)
            if len(attempts) == 1:
                await current_clock().asleep(5)
            return "second attempt"

    else:

        def body() -> str:  # type: ignore[misc]
            attempts.append(1)
            if len(attempts) == 1:
                current_clock().sleep(5)
            return "second attempt"

    decorator = flow if kind == "flow" else task
    decorated = decorator(body, timeout_seconds=1, retries=1, retry_delay_seconds=10)

    assert mode.call(decorated) == "second attempt"

    run = only_run(runtime, kind)
    assert run.state_names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert "timeout" in (run.states[2].message or "")
    assert runtime.clock.elapsed == 11.0


def test_timeout_applies_to_each_attempt(runtime: Runtime, mode: Any, kind: str) -> None:
    decorated = make_sleeper(mode.is_async, kind, 5, timeout_seconds=1, retries=2)

    with pytest.raises(ERRORS[kind]):
        mode.call(decorated)

    run = only_run(runtime, kind)
    assert run.state_names[-1] == "TimedOut"
    assert run.run_count == 3
    assert runtime.clock.elapsed == 3.0


def test_task_timing_out_in_a_flow_without_timeout_fails_the_flow(
    runtime: Runtime, mode: Any
) -> None:
    slow = make_sleeper(False, "task", 5, timeout_seconds=1)

    @mode.flow
    def outer() -> None:
        slow()

    with pytest.raises(TaskRunTimeoutError):
        mode.call(outer)

    flow_run = only_run(runtime, "flow")
    assert only_run(runtime, "task").state.name == "TimedOut"
    assert flow_run.state_names == ["Pending", "Running", "Failed"]
    assert isinstance(flow_run.state.exception, TaskRunTimeoutError)


def test_async_task_timing_out_in_an_async_flow_fails_the_flow(runtime: Runtime) -> None:
    slow = make_sleeper(True, "task", 5, timeout_seconds=1)

    @flow
    async def outer() -> None:
        await slow()

    with pytest.raises(TaskRunTimeoutError):
        asyncio.run(outer())

    assert only_run(runtime, "task").state.name == "TimedOut"
    assert only_run(runtime, "flow").state.name == "Failed"
    assert runtime.clock.elapsed == 1.0


def test_flow_timeout_stops_a_sleeping_task_inside(runtime: Runtime, mode: Any) -> None:
    slow = make_sleeper(False, "task", 5)

    @mode.flow(timeout_seconds=2)
    def outer() -> None:
        slow()

    with pytest.raises(FlowRunTimeoutError):
        mode.call(outer)

    assert runtime.clock.elapsed == 2.0
    assert only_run(runtime, "flow").state.name == "TimedOut"
    assert only_run(runtime, "task").state.is_final()


def test_enclosing_flow_timeout_is_not_retried_by_the_task(runtime: Runtime) -> None:
    slow = task(lambda: current_clock().sleep(5), retries=3, retry_delay_seconds=1)

    @flow(timeout_seconds=2)
    def outer() -> None:
        slow()

    with pytest.raises(FlowRunTimeoutError):
        outer()

    assert only_run(runtime, "task").run_count == 1
    assert runtime.clock.elapsed == 2.0
