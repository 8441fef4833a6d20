"""Retries and retry delays, in virtual time (SPEC §3.2, §3.4)."""

from __future__ import annotations

import random
from typing import Any

import pytest

import wfkit.runtime
from wfkit import flow, task
from wfkit.clock import FakeClock
from wfkit.context import Runtime, use_runtime
from wfkit.tasks import exponential_backoff

from ._support import flaky, only_run


def always_fails() -> None:
    raise ValueError("always")


def test_acceptance_three_retries_of_sixty_seconds(runtime: Runtime, mode: Any) -> None:
    """The issue's acceptance: retries=3, retry_delay_seconds=60, always failing."""
    decorated = mode.task(always_fails, retries=3, retry_delay_seconds=60)

    with pytest.raises(ValueError, match="always"):
        mode.call(decorated)

    run = only_run(runtime, "task")
    assert run.state.name == "Failed"
    assert run.run_count == 4
    assert run.state_names.count("AwaitingRetry") == 3
    assert runtime.clock.sleeps == [60.0, 60.0, 60.0]
    assert runtime.clock.elapsed == 180.0


@pytest.mark.parametrize(
    ("delay", "retries", "expected"),
    [
        pytest.param(5, 2, [5.0, 5.0], id="number"),
        pytest.param(2.5, 1, [2.5], id="float"),
        pytest.param([1, 2], 4, [1.0, 2.0, 2.0, 2.0], id="list-last-repeats"),
        pytest.param([1, 2, 3], 2, [1.0, 2.0], id="list-longer-than-retries"),
        pytest.param(lambda retries: [3] * retries, 3, [3.0, 3.0, 3.0], id="callable"),
        pytest.param(exponential_backoff(10), 3, [10.0, 20.0, 40.0], id="exponential-backoff"),
    ],
)
def test_task_delays_land_in_the_clock(
    runtime: Runtime, mode: Any, delay: Any, retries: int, expected: list[float]
) -> None:
    decorated = mode.task(always_fails, retries=retries, retry_delay_seconds=delay)

    mode.call(decorated, return_state=True)

    assert runtime.clock.sleeps == expected
    assert runtime.clock.elapsed == sum(expected)
    assert only_run(runtime, "task").run_count == retries + 1


def test_task_delays_stop_when_the_task_succeeds(runtime: Runtime, mode: Any) -> None:
    decorated = mode.task(flaky(failures=2), retries=5, retry_delay_seconds=exponential_backoff(1))

    assert mode.call(decorated) == "ok"

    assert runtime.clock.sleeps == [1.0, 2.0]
    assert runtime.clock.elapsed == 3.0


def test_flow_retries(runtime: Runtime, mode: Any) -> None:
    body = flaky(failures=2, value="finally")
    decorated = mode.flow(body, retries=2, retry_delay_seconds=30)

    assert mode.call(decorated) == "finally"

    run = only_run(runtime, "flow")
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
    assert runtime.clock.sleeps == [30.0, 30.0]
    assert runtime.clock.elapsed == 60.0


def test_flow_retries_exhausted(runtime: Runtime, mode: Any) -> None:
    decorated = mode.flow(always_fails, retries=1, retry_delay_seconds=7)

    with pytest.raises(ValueError, match="always"):
        mode.call(decorated)

    run = only_run(runtime, "flow")
    assert run.state_names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Failed"]
    assert runtime.clock.elapsed == 7.0


def test_flow_retry_reruns_its_tasks(runtime: Runtime, mode: Any) -> None:
    step = task(flaky(failures=1))

    decorated = mode.flow(lambda: step(), retries=1)

    assert mode.call(decorated) == "ok"

    assert [r.state_names[-1] for r in runtime.store.task_runs()] == ["Failed", "Completed"]


def test_no_retries_no_sleeps(runtime: Runtime, mode: Any, kind: str) -> None:
    mode.call(mode.make(kind, always_fails), return_state=True)

    assert runtime.clock.sleeps == []
    assert only_run(runtime, kind).run_count == 1


def test_run_count_is_visible_inside_the_task(runtime: Runtime, mode: Any) -> None:
    seen: list[int] = []

    def body() -> str:
        seen.append(wfkit.runtime.task_run.run_count)
        if len(seen) < 3:
            raise ValueError("again")
        return "done"

    mode.call(mode.task(body, retries=5))

    assert seen == [1, 2, 3]
    assert only_run(runtime, "task").run_count == 3


def test_flow_run_count_is_visible_inside_the_flow(runtime: Runtime, mode: Any) -> None:
    seen: list[int] = []

    def body() -> None:
        seen.append(wfkit.runtime.flow_run.run_count)
        if len(seen) < 2:
            raise ValueError("again")

    mode.call(mode.flow(body, retries=1))

    assert seen == [1, 2]


# -- jitter ------------------------------------------------------------------------------------
def jittered_sleeps(
    seed: int, factor: float = 0.5, delay: float = 100, retries: int = 6
) -> list[float]:
    decorated = task(
        always_fails, retries=retries, retry_delay_seconds=delay, retry_jitter_factor=factor
    )
    with use_runtime(
        clock=FakeClock("2026-01-01T00:00:00Z"), store="memory://", rng=random.Random(seed)
    ) as rt:
        decorated(return_state=True)
        return list(rt.clock.sleeps)


def test_jitter_keeps_each_delay_within_the_factor(runtime: Runtime, mode: Any) -> None:
    decorated = mode.task(always_fails, retries=6, retry_delay_seconds=100, retry_jitter_factor=0.5)

    mode.call(decorated, return_state=True)

    sleeps = runtime.clock.sleeps
    assert len(sleeps) == 6
    assert all(50.0 <= s <= 150.0 for s in sleeps), sleeps
    assert len(set(sleeps)) > 1, "jitter was not applied"
    assert runtime.clock.elapsed == pytest.approx(sum(sleeps))


def test_jitter_is_reproducible_with_the_same_seed() -> None:
    assert jittered_sleeps(seed=7) == jittered_sleeps(seed=7)


def test_jitter_differs_across_seeds() -> None:
    assert jittered_sleeps(seed=7) != jittered_sleeps(seed=8)


def test_jitter_applies_to_each_listed_delay() -> None:
    decorated = task(
        always_fails, retries=3, retry_delay_seconds=[10, 100, 1000], retry_jitter_factor=0.1
    )
    with use_runtime(clock=FakeClock(), store="memory://", rng=random.Random(3)) as rt:
        decorated(return_state=True)

    low, mid, high = rt.clock.sleeps
    assert 9.0 <= low <= 11.0
    assert 90.0 <= mid <= 110.0
    assert 900.0 <= high <= 1100.0


def test_jitter_never_goes_below_zero() -> None:
    sleeps = jittered_sleeps(seed=11, factor=3.0, delay=10, retries=30)

    assert all(s >= 0.0 for s in sleeps)
    assert all(s <= 40.0 for s in sleeps)


def test_zero_jitter_is_exact(runtime: Runtime) -> None:
    task(always_fails, retries=2, retry_delay_seconds=10, retry_jitter_factor=0)(return_state=True)

    assert runtime.clock.sleeps == [10.0, 10.0]


# -- retry_condition_fn -------------------------------------------------------------------------
def make_condition(flavour: str, verdict: Any, calls: list[tuple[Any, ...]]) -> Any:
    if flavour == "sync":

        def condition(task: Any, task_run: Any, state: Any) -> Any:
            calls.append((task, task_run, state))
            return verdict(state)

        return condition

    async def async_condition(task: Any, task_run: Any, state: Any) -> Any:
        calls.append((task, task_run, state))
        return verdict(state)

    return async_condition


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_retry_condition_receives_task_run_and_state(
    runtime: Runtime, mode: Any, flavour: str
) -> None:
    calls: list[tuple[Any, ...]] = []
    condition = make_condition(flavour, lambda state: True, calls)
    decorated = mode.task(flaky(failures=1), retries=2, retry_condition_fn=condition)

    assert mode.call(decorated) == "ok"

    assert len(calls) == 1
    got_task, got_run, got_state = calls[0]
    record = only_run(runtime, "task")
    assert got_task is decorated
    assert got_run.id == record.id
    assert got_run.run_count == 1
    assert got_state.is_failed()
    assert isinstance(got_state.exception, ValueError)
    assert record.state_names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_retry_condition_returning_false_stops_retries(
    runtime: Runtime, mode: Any, flavour: str
) -> None:
    calls: list[tuple[Any, ...]] = []
    condition = make_condition(flavour, lambda state: False, calls)
    body = flaky(failures=1)
    decorated = mode.task(body, retries=3, retry_delay_seconds=10, retry_condition_fn=condition)

    with pytest.raises(ValueError, match="failure 1"):
        mode.call(decorated)

    run = only_run(runtime, "task")
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert run.run_count == 1
    assert body.calls == 1
    assert runtime.clock.sleeps == []
    assert len(calls) == 1


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_retry_condition_can_choose_by_exception(runtime: Runtime, mode: Any, flavour: str) -> None:
    calls: list[tuple[Any, ...]] = []
    condition = make_condition(
        flavour, lambda state: isinstance(state.exception, ConnectionError), calls
    )
    errors = iter([ConnectionError("flaky network"), KeyError("real bug")])

    def body() -> None:
        raise next(errors)

    with pytest.raises(KeyError):
        mode.call(mode.task(body, retries=5, retry_condition_fn=condition))

    run = only_run(runtime, "task")
    assert run.state_names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Failed"]
    assert run.run_count == 2


def test_retry_condition_that_raises_means_no_retry(
    runtime: Runtime, mode: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_condition(task: Any, task_run: Any, state: Any) -> bool:
        raise RuntimeError("condition exploded")

    decorated = mode.task(always_fails, retries=3, retry_condition_fn=broken_condition)

    with pytest.raises(ValueError, match="always"):
        mode.call(decorated)

    run = only_run(runtime, "task")
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert run.run_count == 1
    assert any("retry_condition_fn" in r.getMessage() for r in caplog.records)


def test_retry_condition_is_not_asked_without_retries_left(runtime: Runtime) -> None:
    calls: list[tuple[Any, ...]] = []
    condition = make_condition("sync", lambda state: True, calls)

    task(always_fails, retries=1, retry_condition_fn=condition)(return_state=True)

    assert len(calls) == 1  # asked after the first failure only
    assert only_run(runtime, "task").run_count == 2


def test_retries_are_per_task_run_inside_a_flow(runtime: Runtime, mode: Any) -> None:
    step = task(flaky(failures=1), retries=1, retry_delay_seconds=5)

    def body() -> list[str]:
        return [step(), step()]

    assert mode.call(mode.flow(body)) == ["ok", "ok"]

    first, second = runtime.store.task_runs()
    assert first.run_count == 2
    assert second.run_count == 1
    assert runtime.clock.sleeps == [5.0]
    assert only_run(runtime, "flow").state_names == ["Pending", "Running", "Completed"]


def test_flows_reject_the_task_only_retry_options() -> None:
    with pytest.raises(TypeError):
        flow(retry_jitter_factor=0.5)(always_fails)
