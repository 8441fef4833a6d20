"""Where wfkit followed its own rules and Prefect documents others (issue 15, item 5; SPEC
§13). Each test says which page of Prefect 3's documentation (``docs/v3/`` in
PrefectHQ/prefect) describes the behaviour; the code is ours."""

from __future__ import annotations

import dataclasses
import random
import statistics
from typing import Any

import pytest

from wfkit import allow_failure, flow, task
from wfkit._engine.lifecycle import _jittered
from wfkit.context import use_runtime
from wfkit.exceptions import UpstreamTaskError
from wfkit.states import Completed, Failed, State
from wfkit.testing import Harness


@task
def explode() -> None:
    raise ValueError("I fail on purpose")


@task
def succeed() -> str:
    return "success"


# -- wait_for ------------------------------------------------------------------------------
def test_wait_for_ignores_what_is_not_a_future(wf_harness: Harness) -> None:
    # concepts/flows.mdx, "Return a future": the exception from .result(raise_on_failure=
    # False) goes into wait_for, and the flow still completes with the other task's result.
    @flow
    def always_succeeds() -> Any:
        x = explode.submit().result(raise_on_failure=False)
        y = succeed.submit(wait_for=[x])
        return y

    assert always_succeeds() == "success"
    assert wf_harness.flow_run(always_succeeds).state_names == ["Pending", "Running", "Completed"]


def test_a_failed_future_in_wait_for_still_stops_the_task(wf_harness: Harness) -> None:
    @flow
    def main() -> str:
        return succeed(wait_for=[explode.submit()], return_state=True).name

    assert main() == "NotReady"


# -- what a flow returns -------------------------------------------------------------------
def test_a_flow_returning_a_mixed_tuple_completes(wf_harness: Harness) -> None:
    # how-to-guides/workflows/state-change-hooks.mdx: a flow returns ("bar", <a failed task
    # run's state>) "to avoid raising the task's exception", and gets the tuple back.
    @flow
    def ok_with_failure() -> tuple[str, State]:
        return "bar", explode(return_state=True)

    bar, state = ok_with_failure()
    assert bar == "bar" and state.is_failed()
    assert wf_harness.flow_run(ok_with_failure).state.name == "Completed"


def test_a_flow_returning_only_states_is_failed_by_one_of_them(wf_harness: Harness) -> None:
    # concepts/states.mdx, "Task return values": a task returning Failed(...) is Failed, and
    # a flow returning (failed state, completed state) fails, with Prefect's count message;
    # returning states is not an error, so the call does not raise.
    @task
    def toggle(fail: bool) -> State:
        if fail:
            return Failed(message="I was instructed to fail.")
        return Completed(message="I was instructed to succeed.")

    @flow
    def example() -> tuple[State, State]:
        state_one = toggle(fail=True)
        state_two = toggle(fail=False)
        return state_one, state_two

    one, two = example()
    assert one.is_failed() and one.message == "I was instructed to fail."
    assert two.is_completed()
    final = example(return_state=True)
    assert (final.name, final.message) == ("Failed", "1/2 states failed.")
    assert [r.state_names for r in wf_harness.task_runs(toggle)][:2] == [
        ["Pending", "Running", "Failed"],
        ["Pending", "Running", "Completed"],
    ]


def test_a_flow_returning_only_completed_states_says_so(wf_harness: Harness) -> None:
    @flow
    def main() -> list[Any]:
        return [succeed(return_state=True), succeed.submit()]

    state = main(return_state=True)
    assert (state.name, state.message) == ("Completed", "All states completed.")


def test_a_manual_state_returned_by_a_flow_is_its_final_state(wf_harness: Harness) -> None:
    # concepts/flows.mdx, "Return a manual state".
    @flow
    def always_succeeds() -> State:
        explode.submit()
        y = succeed.submit()
        if y.result() == "success":
            return Completed(message="I am happy with this result")
        return Failed(message="How did this happen!?")

    always_succeeds()
    run = wf_harness.flow_run(always_succeeds)
    assert (run.state.name, run.state.message) == ("Completed", "I am happy with this result")


# -- a task that returns a State -----------------------------------------------------------
def test_a_task_returning_a_state_hands_it_to_its_caller(wf_harness: Harness) -> None:
    # concepts/states.mdx, "Task return values": the call gives the State back and the flow
    # goes on to its next line.
    returned = Failed(message="I was instructed to fail.")
    reached = []

    @task
    def give_up() -> State:
        return returned

    @flow
    def main() -> None:
        state = give_up()
        reached.append(state)

    main()
    assert reached == [returned] and reached[0] is returned
    assert wf_harness.task_run(give_up).state_names == ["Pending", "Running", "Failed"]


def test_a_task_returning_a_completed_state_hands_the_state_back(wf_harness: Harness) -> None:
    @task
    def fine() -> State:
        return Completed(message="fine", data=5)

    state = fine()
    assert isinstance(state, State) and state.data == 5

    # a future's result is the state's data, as for any run
    @flow
    def main() -> Any:
        return fine.submit().result()

    assert main() == 5


def test_a_task_returning_failed_states_is_retried_and_then_hands_back_the_last(
    wf_harness: Harness,
) -> None:
    attempts = []

    @task(retries=2)
    def flaky() -> State:
        attempts.append(1)
        return Failed(message=f"attempt {len(attempts)}")

    state = flaky()
    assert state.message == "attempt 3"
    assert wf_harness.task_run(flaky).state_names == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "Failed",
    ]  # fmt: skip


# -- futures in dataclasses, states as arguments -------------------------------------------
init_count = 0


@dataclasses.dataclass
class Pipeline:
    base_rate: float
    adjusted_rate: Any = None

    def __post_init__(self) -> None:
        global init_count
        init_count += 1
        if self.adjusted_rate is None:
            self.adjusted_rate = self.base_rate * 1.5


@task
def get_rate() -> float:
    return 100.0


@task
def read_rate(pipeline: Pipeline) -> tuple[Any, int]:
    return pipeline.adjusted_rate, init_count


def test_a_future_in_a_dataclass_field_is_resolved(wf_harness: Harness) -> None:
    # concepts/tasks.mdx (parameter resolution): the field's future becomes 100.0, and the
    # dataclass is rebuilt with dataclasses.replace, which runs __post_init__ again.
    global init_count
    init_count = 0

    @flow
    def main() -> tuple[Any, int]:
        pipeline = Pipeline(base_rate=42.0, adjusted_rate=get_rate.submit())
        return read_rate(pipeline)

    assert main() == (100.0, 2)
    run = wf_harness.task_run(read_rate)
    assert run.upstream_ids == (wf_harness.task_run(get_rate).id,)


def test_a_frozen_dataclass_is_rebuilt_too(wf_harness: Harness) -> None:
    @dataclasses.dataclass(frozen=True)
    class Pair:
        left: Any
        right: Any

    @task
    def add(pair: Pair) -> Any:
        return pair.left + pair.right

    @flow
    def main() -> Any:
        return add(Pair(get_rate.submit(), 1))

    assert main() == 101.0


def test_opaque_resolves_a_future_without_rebuilding_its_result(wf_harness: Harness) -> None:
    # concepts/tasks.mdx, "Resolve without traversal using opaque".
    from wfkit.utilities.annotations import opaque

    global init_count
    init_count = 0

    @task
    def build(rate: float) -> Pipeline:
        return Pipeline(base_rate=rate)

    @flow
    def main() -> tuple[Any, int]:
        return read_rate.submit(opaque(build.submit(100.0))).result()

    assert main() == (150.0, 1)  # built once, never rebuilt


def test_a_state_argument_is_replaced_by_its_result(wf_harness: Harness) -> None:
    # Prefect resolves State arguments like futures (concepts/tasks.mdx): a completed one
    # gives its result, a failed one stops the task unless allow_failure wraps it.
    @task
    def show(value: Any) -> Any:
        return value

    @flow
    def main() -> tuple[Any, Any]:
        good = succeed(return_state=True)
        bad = explode(return_state=True)
        received = show(allow_failure(bad))
        with pytest.raises(UpstreamTaskError):
            show(bad)
        return show(good), received

    good, received = main()
    assert good == "success"
    assert isinstance(received, ValueError)
    assert [r.state.name for r in wf_harness.task_runs(show)] == [
        "Completed", "NotReady", "Completed",
    ]  # fmt: skip


def test_a_state_argument_in_a_list_is_resolved(wf_harness: Harness) -> None:
    @task
    def total(values: list[Any]) -> Any:
        return "".join(values)

    @flow
    def main() -> Any:
        return total([succeed(return_state=True), "!"])

    assert main() == "success!"


# -- generators ----------------------------------------------------------------------------
def test_a_flow_returning_a_generator_consumes_it(
    wf_harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    # concepts/flows.mdx, "Generator functions are consumed when returned from flows".
    def gen() -> Any:
        yield from [1, 2, 3]
        print("Generator consumed!")

    @flow
    def f() -> Any:
        return gen()

    assert f() == [1, 2, 3]
    assert "Generator consumed!" in capsys.readouterr().out


async def _async_flow_returning_a_generator() -> Any:
    def gen() -> Any:
        yield from "ab"

    @flow
    async def f() -> Any:
        return gen()

    return await f()


def test_an_async_flow_returning_a_generator_consumes_it(wf_harness: Harness) -> None:
    import asyncio

    assert asyncio.run(_async_flow_returning_a_generator()) == ["a", "b"]


# -- persist_result ------------------------------------------------------------------------
def test_persist_result_true_caches_with_the_default_policy(wf_harness: Harness) -> None:
    # how-to-guides/workflows/cache-workflow-steps.mdx: the first call of add_one(1) is not
    # cached, the second is, add_one(2) is not.
    @task(persist_result=True)
    def add_one(x: int) -> int:
        return x + 1

    @flow
    def my_flow() -> list[int]:
        return [add_one(1), add_one(1), add_one(2)]

    assert my_flow() == [2, 2, 3]
    assert [r.state.name for r in wf_harness.task_runs(add_one)] == [
        "Completed", "Cached", "Completed",
    ]  # fmt: skip
    # DEFAULT includes the flow run's id: another flow run computes again
    my_flow()
    assert [r.state.name for r in wf_harness.task_runs(add_one)][3] == "Completed"


def test_without_persist_result_nothing_is_cached(wf_harness: Harness) -> None:
    @task
    def add_one(x: int) -> int:
        return x + 1

    add_one(1)
    add_one(1)
    assert wf_harness.cache_hits(add_one) == 0


# -- jitter --------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", [1.5, 3.0, 10.0, 100.0])
def test_jitter_above_one_keeps_the_mean_and_never_collapses_to_zero(factor: float) -> None:
    # how-to-guides/workflows/retries.mdx ("retry_jitter_factor"): Prefect draws jittered
    # delays from a clamped exponential distribution around the delay. With the plain
    # ``delay * (1 ± factor)`` clamped at 0, a factor of 3 puts a third of the delays at
    # 0 s and raises the mean to 4/3 of the delay.
    rng = random.Random(15)
    draws = [_jittered(10.0, factor, rng) for _ in range(20_000)]
    assert statistics.fmean(draws) == pytest.approx(10.0, rel=0.03)
    assert max(draws) <= 10.0 * (1 + factor)
    assert min(draws) > 0.0
    assert sum(1 for d in draws if d < 0.1) / len(draws) < 0.02  # (no pile at 0 s)


def test_jitter_up_to_one_stays_within_its_band() -> None:
    rng = random.Random(15)
    draws = [_jittered(10.0, 0.5, rng) for _ in range(2_000)]
    assert 5.0 <= min(draws) and max(draws) <= 15.0


def test_a_task_with_a_large_jitter_waits_about_its_delay(wf_harness: Harness) -> None:
    @task(retries=60, retry_delay_seconds=10, retry_jitter_factor=3)
    def never() -> None:
        raise OSError("down")

    with use_runtime(rng=random.Random(7)):
        never(return_state=True)
    sleeps = wf_harness.clock.sleeps
    assert len(sleeps) == 60 and all(0 < s <= 40 for s in sleeps)
    assert statistics.fmean(sleeps) == pytest.approx(10.0, rel=0.35)
