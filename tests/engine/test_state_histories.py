"""State histories are part of the contract (SPEC §3.3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from wfkit import states, task
from wfkit.context import Runtime, current_clock
from wfkit.exceptions import FailedRun
from wfkit.states import StateType

from ._support import flaky, only_run


def test_success(runtime: Runtime, mode: Any, kind: str) -> None:
    decorated = mode.make(kind, lambda: 42)

    assert mode.call(decorated) == 42

    run = only_run(runtime, kind)
    assert run.state_names == ["Pending", "Running", "Completed"]
    assert run.run_count == 1
    assert run.state.result() == 42


def test_failure(runtime: Runtime, mode: Any, kind: str) -> None:
    decorated = mode.make(kind, flaky(failures=1))

    with pytest.raises(ValueError, match="failure 1"):
        mode.call(decorated)

    run = only_run(runtime, kind)
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert run.state.type is StateType.FAILED
    assert isinstance(run.state.exception, ValueError)
    assert "ValueError: failure 1" in run.state.message


def test_return_state_gives_the_final_state_and_never_raises(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    decorated = mode.make(kind, flaky(failures=1))

    state = mode.call(decorated, return_state=True)

    assert state.is_failed()
    assert isinstance(state.exception, ValueError)
    assert state == only_run(runtime, kind).state


def test_one_failure_then_success_with_a_retry(runtime: Runtime, mode: Any, kind: str) -> None:
    body = flaky(failures=1, value="second time")
    decorated = mode.make(kind, body, retries=1)

    assert mode.call(decorated) == "second time"

    run = only_run(runtime, kind)
    assert run.state_names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert run.run_count == 2
    assert body.calls == 2


def test_awaiting_retry_is_recorded_even_with_zero_delay(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    decorated = mode.make(kind, flaky(failures=2), retries=2, retry_delay_seconds=0)

    mode.call(decorated)

    run = only_run(runtime, kind)
    assert run.state_names == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]
    assert runtime.clock.sleeps == [0.0, 0.0]
    assert runtime.clock.elapsed == 0.0


def test_no_intermediate_failed_state_and_types_are_right(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    mode.call(mode.make(kind, flaky(failures=1), retries=1))

    run = only_run(runtime, kind)
    assert [s.type for s in run.states] == [
        StateType.PENDING,
        StateType.RUNNING,
        StateType.SCHEDULED,
        StateType.RUNNING,
        StateType.COMPLETED,
    ]
    assert not any(s.is_failed() for s in run.states)


def test_exhausted_retries_end_failed(runtime: Runtime, mode: Any, kind: str) -> None:
    decorated = mode.make(kind, flaky(failures=5), retries=1)

    with pytest.raises(ValueError, match="failure 2"):
        mode.call(decorated)

    run = only_run(runtime, kind)
    assert run.state_names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Failed"]
    assert run.run_count == 2


def test_timestamps_come_from_the_clock(runtime: Runtime, mode: Any, kind: str) -> None:
    def body() -> str:
        current_clock().advance(5)
        return "done"

    runtime.clock.advance(10)
    mode.call(mode.make(kind, body))

    start = runtime.clock.start
    run = only_run(runtime, kind)
    assert [s.timestamp for s in run.states] == [
        start + timedelta(seconds=10),
        start + timedelta(seconds=10),
        start + timedelta(seconds=15),
    ]
    assert run.start_time == start + timedelta(seconds=10)
    assert run.end_time == start + timedelta(seconds=15)


def test_awaiting_retry_is_scheduled_after_the_delay(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    mode.call(mode.make(kind, flaky(failures=1), retries=1, retry_delay_seconds=60))

    run = only_run(runtime, kind)
    awaiting, retrying = run.states[2], run.states[3]
    start = runtime.clock.start
    assert awaiting.timestamp == start
    assert awaiting.scheduled_time == start + timedelta(seconds=60)
    assert retrying.timestamp == start + timedelta(seconds=60)


# -- interrupts -------------------------------------------------------------------------------
def interrupt() -> None:
    raise KeyboardInterrupt


def system_exit() -> None:
    raise SystemExit(3)


@pytest.mark.parametrize("return_state", [False, True])
@pytest.mark.parametrize(
    ("body", "error"),
    [(interrupt, KeyboardInterrupt), (system_exit, SystemExit)],
    ids=["ctrl-c", "exit"],
)
def test_interrupt_crashes_the_run_and_propagates(
    runtime: Runtime,
    mode: Any,
    kind: str,
    return_state: bool,
    body: Any,
    error: type[BaseException],
) -> None:
    decorated = mode.make(kind, body)

    with pytest.raises(error):
        mode.call(decorated, return_state=return_state)

    run = only_run(runtime, kind)
    assert run.state_names == ["Pending", "Running", "Crashed"]
    assert run.state.type is StateType.CRASHED
    assert isinstance(run.state.exception, error)


def test_keyboard_interrupt_is_not_retried(runtime: Runtime, mode: Any, kind: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        mode.call(mode.make(kind, interrupt, retries=3))

    run = only_run(runtime, kind)
    assert run.state_names == ["Pending", "Running", "Crashed"]
    assert run.run_count == 1


def test_keyboard_interrupt_in_a_task_crashes_task_and_flow(runtime: Runtime, mode: Any) -> None:
    inner = task(interrupt)  # a sync task: callable from the body in both modes

    @mode.flow
    def outer() -> None:
        inner()

    with pytest.raises(KeyboardInterrupt):
        mode.call(outer)

    assert runtime.store.task_runs()[0].state_names == ["Pending", "Running", "Crashed"]
    assert runtime.store.flow_runs()[0].state_names == ["Pending", "Running", "Crashed"]


# -- bodies that return states ----------------------------------------------------------------
def test_task_returning_a_failed_state_is_retried(runtime: Runtime, mode: Any) -> None:
    calls = []

    def body() -> Any:
        calls.append(1)
        if len(calls) == 1:
            return states.Failed(message="not yet")
        return "now"

    assert mode.call(mode.task(body, retries=1)) == "now"

    run = only_run(runtime, "task")
    assert run.state_names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert run.run_count == 2


def test_task_returning_a_failed_state_without_retries_fails(runtime: Runtime, mode: Any) -> None:
    # The run is Failed, and the caller gets the State it returned, without an error (as in
    # Prefect: docs/v3/concepts/states.mdx, "Task return values").
    returned = states.Failed(message="gave up")
    decorated = mode.task(lambda: returned)

    assert mode.call(decorated) is returned
    with pytest.raises(FailedRun, match="gave up"):
        mode.call(decorated, return_state=True).result()

    run = runtime.store.task_runs()[0]
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert run.state.message == "gave up"


def test_flow_returning_a_completed_state(runtime: Runtime, mode: Any) -> None:
    decorated = mode.flow(lambda: states.Completed(data=5, message="all good"))

    assert mode.call(decorated) == 5

    run = only_run(runtime, "flow")
    assert run.state_names == ["Pending", "Running", "Completed"]
    assert run.state.message == "all good"


def test_flow_returning_a_failed_state_fails(runtime: Runtime, mode: Any) -> None:
    decorated = mode.flow(lambda: states.Failed(message="bad data"))

    state = mode.call(decorated, return_state=True)

    assert state.is_failed()
    assert only_run(runtime, "flow").state_names == ["Pending", "Running", "Failed"]


def test_flow_survives_a_failed_task_it_does_not_return(runtime: Runtime, mode: Any) -> None:
    step = task(flaky(failures=1))

    def body() -> str:
        state = step(return_state=True)
        return f"task ended {state.name}"

    assert mode.call(mode.flow(body)) == "task ended Failed"

    assert only_run(runtime, "task").state.name == "Failed"
    assert only_run(runtime, "flow").state.name == "Completed"


def test_flow_returning_a_failed_task_state_fails(runtime: Runtime, mode: Any) -> None:
    step = task(flaky(failures=1))

    state = mode.call(mode.flow(lambda: step(return_state=True)), return_state=True)

    assert state.is_failed()
    assert isinstance(state.exception, ValueError)
    assert only_run(runtime, "flow").state_names == ["Pending", "Running", "Failed"]


def test_flow_returning_states_not_all_completed_fails(runtime: Runtime, mode: Any) -> None:
    """SPEC §3.3: a flow returning states that are not all completed ends Failed."""
    decorated = mode.flow(lambda: [states.Completed(data=1), states.Failed(message="one bad")])

    state = mode.call(decorated, return_state=True)

    assert state.is_failed()
    assert only_run(runtime, "flow").state.type is StateType.FAILED
