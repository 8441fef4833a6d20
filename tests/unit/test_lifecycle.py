"""The run lifecycle as the pure decision table it is: driven by hand, with no store, clock
or thread. Each test answers the effects the lifecycle yields and asserts their exact order.

The run specs come from real ``@task``/``@flow`` decorations (that is how retry delays,
jitter, timeouts and hooks are worked out); nothing runs them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from wfkit import flow, task
from wfkit._engine.lifecycle import (
    Acquire,
    CacheKey,
    CacheLookup,
    CacheWrite,
    CallUser,
    Invoke,
    Log,
    Now,
    Outcome,
    Resolve,
    RunPlan,
    Sleep,
    lifecycle,
)
from wfkit.cache_policies import CacheKeyError
from wfkit.exceptions import TaskRunTimeoutError, UpstreamTaskError
from wfkit.states import Completed, Pending, State
from wfkit.tasks import exponential_backoff

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeRun:
    """The part of a live run the lifecycle reads and writes."""

    def __init__(self) -> None:
        self.name = "my-run"
        self.run_count = 0
        self.cache_key: str | None = None

    def snapshot(self) -> tuple[str, int]:
        return ("snapshot", self.run_count)


def plan_for(owner: Any, *, cache: Any = None, upstream: Any = None, pre_failure: Any = None):
    return RunPlan(FakeRun(), owner, owner.run_spec, None, pre_failure, upstream, cache)


def describe(effect: Any) -> tuple[Any, ...]:
    """An effect as a short, comparable tuple."""
    if isinstance(effect, State):
        return ("state", effect.name)
    if isinstance(effect, Log):
        return ("log", logging.getLevelName(effect.level), effect.message % effect.args)
    if isinstance(effect, Invoke):
        return ("invoke", effect.timeout)
    if isinstance(effect, Sleep):
        return ("sleep", effect.seconds)
    if isinstance(effect, CallUser):
        return ("call", effect.fn.__name__)
    if isinstance(effect, (Acquire, CacheLookup)):
        return (type(effect).__name__, effect.key)
    if isinstance(effect, CacheWrite):
        return ("CacheWrite", effect.key, effect.value)
    return (type(effect).__name__,)  # Now, CacheKey, Resolve


class Answers:
    """Answers to the effects: ``outcomes`` for successive Invokes (an exception class or
    instance means the body raised it), and fixed answers for the rest."""

    def __init__(
        self,
        *outcomes: Any,
        key: Any = "key-1",
        hit: tuple[bool, Any] = (False, None),
        upstream: Any = None,
        calls: Callable[..., Any] | None = None,
    ) -> None:
        self.outcomes = list(outcomes)
        self.key, self.hit, self.upstream, self.calls = key, hit, upstream, calls
        self.states: list[State] = []

    def __call__(self, effect: Any) -> tuple[Any, BaseException | None]:
        if isinstance(effect, State):
            self.states.append(effect)
            return None, None
        if isinstance(effect, Invoke):
            outcome = self.outcomes.pop(0)
            if outcome == "timeout":
                return Outcome(exception=effect.make_error()), None
            return outcome, None
        if isinstance(effect, Now):
            return T0, None
        if isinstance(effect, CacheKey):
            return (None, self.key) if isinstance(self.key, BaseException) else (self.key, None)
        if isinstance(effect, CacheLookup):
            return self.hit, None
        if isinstance(effect, Resolve):
            return self.upstream, None
        if isinstance(effect, CallUser):
            try:
                return effect.fn(*effect.args), None
            except Exception as exc:
                return None, exc
        return None, None  # Log, Sleep, Acquire, CacheWrite


def drive(plan: RunPlan, answers: Answers, rng: random.Random | None = None):
    """Run the lifecycle to its end: (the effects described, the final state)."""
    steps = lifecycle(plan, rng or random.Random(0))
    trace: list[tuple[Any, ...]] = []
    send: Any = None
    throw: BaseException | None = None
    while True:
        try:
            effect = steps.throw(throw) if throw is not None else steps.send(send)
        except StopIteration as stop:
            return trace, stop.value
        trace.append(describe(effect))
        send, throw = answers(effect)


def ok(value: Any = None) -> Outcome:
    return Outcome(value)


def raised(exc: BaseException, *, streamed: bool = False, deadline: bool = False) -> Outcome:
    return Outcome(None, exc, streamed, deadline)


FINISHED_OK = ("log", "INFO", "Finished in state Completed()")  # INFO, as in Prefect


# -- plain runs ----------------------------------------------------------------------------
def test_success() -> None:
    @task
    def add() -> int: ...

    p = plan_for(add)
    trace, final = drive(p, Answers(ok(3)))
    assert trace == [("state", "Running"), ("invoke", None), ("state", "Completed"), FINISHED_OK]
    assert final.name == "Completed" and final.data == 3
    assert p.run.run_count == 1


def test_a_flow_logs_its_final_state_at_info() -> None:
    @flow
    def hello() -> str: ...

    trace, final = drive(plan_for(hello), Answers(ok("hi")))
    assert trace[-1] == ("log", "INFO", "Finished in state Completed()")
    assert final.data == "hi"


def test_failure_without_retries() -> None:
    @task
    def boom() -> None: ...

    error = ValueError("bad input")
    trace, final = drive(plan_for(boom), Answers(raised(error)))
    message = "Task run encountered an exception: ValueError: bad input"
    assert trace == [
        ("state", "Running"),
        ("invoke", None),
        ("state", "Failed"),
        ("log", "ERROR", f"Finished in state Failed({message!r})"),
    ]
    assert final.exception is error and final.message == message


def test_a_failure_log_carries_the_exception() -> None:
    @task
    def boom() -> None: ...

    error = ValueError("x")
    steps = lifecycle(plan_for(boom), random.Random(0))
    assert isinstance(next(steps), State)
    assert isinstance(steps.send(None), Invoke)
    assert steps.send(raised(error)).name == "Failed"
    log = steps.send(None)
    assert isinstance(log, Log) and log.exc_info is error


def _retry_trace(attempt: int, retries: int, delay: float, message: str) -> list[tuple[Any, ...]]:
    return [
        (
            "log",
            "INFO",
            f"{message} - Retry {attempt}/{retries} will start {delay:g} second(s) from now",
        ),
        ("Now",),
        ("state", "AwaitingRetry"),
        ("sleep", delay),
        ("state", "Retrying"),
        ("invoke", None),
    ]


@pytest.mark.parametrize(
    ("delays", "expected"),
    [
        (10, [10.0, 10.0]),
        ([1, 5], [1.0, 5.0]),
        ([3], [3.0, 3.0]),  # the last delay repeats
        (exponential_backoff(2), [2.0, 4.0]),
    ],
    ids=["number", "list", "short-list", "callable"],
)
def test_retries_wait_each_delay_form(delays: Any, expected: list[float]) -> None:
    @task(retries=2, retry_delay_seconds=delays)
    def flaky() -> str: ...

    p = plan_for(flaky)
    answers = Answers(raised(OSError("down")), raised(OSError("down")), ok("up"))
    trace, final = drive(p, answers)
    message = "Task run encountered an exception: OSError: down"
    assert trace == [
        ("state", "Running"),
        ("invoke", None),
        *_retry_trace(1, 2, expected[0], message),
        *_retry_trace(2, 2, expected[1], message),
        ("state", "Completed"),
        FINISHED_OK,
    ]
    assert final.data == "up" and p.run.run_count == 3
    waiting = [s for s in answers.states if s.name == "AwaitingRetry"]
    assert [s.scheduled_time for s in waiting] == [T0 + timedelta(seconds=d) for d in expected]


def test_retry_jitter_draws_from_the_given_rng() -> None:
    @task(retries=1, retry_delay_seconds=10, retry_jitter_factor=0.5)
    def flaky() -> None: ...

    trace, _ = drive(plan_for(flaky), Answers(raised(OSError()), ok()), random.Random(7))
    expected = 10 * (1 + random.Random(7).uniform(-0.5, 0.5))
    assert ("sleep", expected) in trace
    assert expected != 10


def test_retries_run_out() -> None:
    @task(retries=1)
    def always() -> None: ...

    trace, final = drive(plan_for(always), Answers(raised(OSError("a")), raised(OSError("b"))))
    assert [t[1] for t in trace if t[0] == "state"] == [
        "Running",
        "AwaitingRetry",
        "Retrying",
        "Failed",
    ]
    assert str(final.exception) == "b"


def test_retry_condition_saying_no_ends_the_run() -> None:
    seen: list[Any] = []

    def never(task_: Any, run: Any, state: State) -> bool:
        seen.append((task_, run, state.name))
        return False

    @task(retries=3, retry_condition_fn=never)
    def flaky() -> None: ...

    trace, final = drive(plan_for(flaky), Answers(raised(OSError("x"))))
    assert trace[:3] == [("state", "Running"), ("invoke", None), ("call", "never")]
    assert trace[3] == ("state", "Failed")
    assert seen == [(flaky, ("snapshot", 1), "Failed")]
    assert final.is_failed()


def test_a_raising_retry_condition_is_logged_and_means_no() -> None:
    def broken(*_: Any) -> bool:
        raise RuntimeError("oops")

    @task(retries=3, retry_condition_fn=broken)
    def flaky() -> None: ...

    trace, final = drive(plan_for(flaky), Answers(raised(OSError("x"))))
    assert trace[2:5] == [
        ("call", "broken"),
        ("log", "ERROR", f"retry_condition_fn {broken!r} raised; not retrying"),
        ("state", "Failed"),
    ]
    assert final.is_failed()


def test_timeout() -> None:
    @task(timeout_seconds=1.5, retries=1)
    def slow() -> None: ...

    trace, final = drive(plan_for(slow), Answers("timeout", "timeout"))
    assert trace[:2] == [("state", "Running"), ("invoke", 1.5)]
    assert final.name == "TimedOut"
    assert isinstance(final.exception, TaskRunTimeoutError)
    assert "exceeded its timeout of 1.5 second(s)" in final.message
    assert [t[1] for t in trace if t[0] == "state"] == [
        "Running",
        "AwaitingRetry",
        "Retrying",
        "TimedOut",
    ]


def test_a_timeout_error_raised_by_a_nested_run_is_a_plain_failure() -> None:
    @task(timeout_seconds=5)
    def outer() -> None: ...

    foreign = TaskRunTimeoutError("the inner task timed out")
    _, final = drive(plan_for(outer), Answers(raised(foreign)))
    assert final.name == "Failed"


def test_no_retry_once_an_enclosing_deadline_passed() -> None:
    @task(retries=3)
    def inner() -> None: ...

    trace, final = drive(plan_for(inner), Answers(raised(OSError(), deadline=True)))
    assert [t[1] for t in trace if t[0] == "state"] == ["Running", "Failed"]
    assert final.is_failed()


def test_an_interrupted_retry_wait_ends_the_run_crashed() -> None:
    @task(retries=1, retry_delay_seconds=30)
    def flaky() -> None: ...

    steps = lifecycle(plan_for(flaky), random.Random(0))
    effect = next(steps)
    while not isinstance(effect, Sleep):
        answer = raised(OSError()) if isinstance(effect, Invoke) else T0
        effect = steps.send(answer if isinstance(effect, (Invoke, Now)) else None)
    assert steps.throw(KeyboardInterrupt()).name == "Crashed"


@pytest.mark.parametrize(
    ("error", "name", "message"),
    [
        (KeyboardInterrupt(), "Crashed", "Task run crashed: KeyboardInterrupt"),
        (asyncio.CancelledError(), "Cancelled", "Task run was cancelled."),
    ],
)
def test_interrupts_end_the_run_without_retry(
    error: BaseException, name: str, message: str
) -> None:
    @task(retries=2)
    def body() -> None: ...

    trace, final = drive(plan_for(body), Answers(raised(error)))
    assert (final.name, final.message) == (name, message)
    assert final.exception is error
    assert ("state", "AwaitingRetry") not in trace


def test_a_body_that_returns_a_final_state_sets_the_outcome() -> None:
    @task
    def decides() -> None: ...

    _, final = drive(plan_for(decides), Answers(ok(State("FAILED", "Failed", message="no"))))
    assert final.is_failed() and final.message == "no"
    _, final = drive(plan_for(decides), Answers(ok(Pending())))
    assert final.is_failed() and "not final" in final.message


def test_a_flow_returning_unfinished_states_fails() -> None:
    @flow
    def gathers() -> None: ...

    returned = [Completed(), State("FAILED", "Failed"), Completed()]
    p = plan_for(gathers)
    _, final = drive(p, Answers(ok(returned)))
    assert final.is_failed()
    assert final.message == "1/3 states failed."  # Prefect's aggregate message
    assert p.run.handed_back == (returned,)  # the caller gets the list, no error


# -- generators ----------------------------------------------------------------------------
def test_a_generator_that_already_streamed_is_not_retried() -> None:
    @task(retries=3)
    def stream() -> Any:
        yield 1

    trace, final = drive(plan_for(stream), Answers(raised(OSError("mid-stream"), streamed=True)))
    assert [t[1] for t in trace if t[0] == "state"] == ["Running", "Failed"]
    assert final.is_failed()


# -- hooks ---------------------------------------------------------------------------------
def test_a_raising_hook_is_logged_and_changes_nothing() -> None:
    calls: list[str] = []

    def bad_hook(*_: Any) -> None:
        calls.append("bad")
        raise RuntimeError("hook failed")

    def good_hook(*_: Any) -> None:
        calls.append("good")

    @task(on_completion=[bad_hook, good_hook])
    def work() -> int: ...

    trace, final = drive(plan_for(work), Answers(ok(1)))
    assert trace == [
        ("state", "Running"),
        ("invoke", None),
        ("state", "Completed"),
        FINISHED_OK,
        ("call", "bad_hook"),
        ("log", "ERROR", "on_completion hook 'bad_hook' raised; the run's state is unchanged"),
        ("call", "good_hook"),
    ]
    assert calls == ["bad", "good"]
    assert final.data == 1


def test_on_running_fires_on_every_attempt() -> None:
    def started(*_: Any) -> None: ...

    @task(retries=1, on_running=[started])
    def flaky() -> None: ...

    trace, _ = drive(plan_for(flaky), Answers(raised(OSError()), ok()))
    assert [t for t in trace if t[0] in ("state", "call")][:6] == [
        ("state", "Running"),
        ("call", "started"),
        ("state", "AwaitingRetry"),
        ("state", "Retrying"),
        ("call", "started"),
        ("state", "Completed"),
    ]


# -- upstream and early failure ------------------------------------------------------------
def test_not_ready_when_an_upstream_did_not_complete() -> None:
    @task
    def downstream() -> None: ...

    problem = UpstreamTaskError("upstream 'a' ended Failed")
    trace, final = drive(plan_for(downstream, upstream=object()), Answers(upstream=problem))
    assert trace == [("Resolve",), ("state", "NotReady")]
    assert final.name == "NotReady" and final.exception is problem


def test_runs_once_the_upstream_is_resolved() -> None:
    @task
    def downstream() -> None: ...

    trace, final = drive(plan_for(downstream, upstream=object()), Answers(ok(2)))
    assert trace[:2] == [("Resolve",), ("state", "Running")]
    assert final.data == 2


def test_a_pre_failure_fails_without_running() -> None:
    @flow
    def typed(x: int) -> None: ...

    error = ValueError("x: Input should be a valid integer")
    trace, final = drive(plan_for(typed, pre_failure=error), Answers())
    assert trace == [("state", "Failed")]
    assert final.exception is error


# -- caching -------------------------------------------------------------------------------
def cache(*, refresh: bool = False, serializable: bool = False) -> SimpleNamespace:
    return SimpleNamespace(refresh=refresh, serializable=serializable)


@task
def cached_task() -> int: ...


def test_cache_hit() -> None:
    p = plan_for(cached_task, cache=cache())
    trace, final = drive(p, Answers(hit=(True, 42)))
    assert trace == [
        ("CacheKey",),
        ("CacheLookup", "key-1"),
        ("state", "Running"),
        ("state", "Cached"),
        FINISHED_OK[:2] + ("Finished in state Cached(type=COMPLETED)",),
    ]
    assert final.name == "Cached" and final.data == 42
    assert p.run.cache_key == "key-1" and p.run.run_count == 1


def test_cache_miss_runs_and_writes() -> None:
    trace, final = drive(plan_for(cached_task, cache=cache()), Answers(ok(7)))
    assert trace == [
        ("CacheKey",),
        ("CacheLookup", "key-1"),
        ("state", "Running"),
        ("invoke", None),
        ("state", "Completed"),
        FINISHED_OK,
        ("CacheWrite", "key-1", 7),
    ]
    assert final.data == 7


def test_a_failed_miss_writes_nothing() -> None:
    trace, _ = drive(plan_for(cached_task, cache=cache()), Answers(raised(OSError())))
    assert not [t for t in trace if t[0] == "CacheWrite"]


def test_refresh_cache_skips_the_lookup() -> None:
    trace, _ = drive(plan_for(cached_task, cache=cache(refresh=True)), Answers(ok(7)))
    assert trace[:2] == [("CacheKey",), ("state", "Running")]
    assert trace[-1] == ("CacheWrite", "key-1", 7)


def test_serializable_isolation_takes_the_key_lock_first() -> None:
    trace, _ = drive(plan_for(cached_task, cache=cache(serializable=True)), Answers(ok(1)))
    assert trace[:3] == [("CacheKey",), ("Acquire", "key-1"), ("CacheLookup", "key-1")]


def test_no_key_means_no_caching() -> None:
    trace, final = drive(plan_for(cached_task, cache=cache()), Answers(ok(5), key=None))
    assert trace == [
        ("CacheKey",),
        ("state", "Running"),
        ("invoke", None),
        ("state", "Completed"),
        FINISHED_OK,
    ]
    assert final.data == 5


def test_a_key_that_cannot_be_computed_fails_the_run() -> None:
    error = CacheKeyError("argument 'f' cannot be hashed")
    p = plan_for(cached_task, cache=cache())
    trace, final = drive(p, Answers(key=error))
    assert trace == [("CacheKey",), ("state", "Failed")]
    assert final.exception is error
    assert p.run.run_count == 0
