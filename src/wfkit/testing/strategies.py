"""Hypothesis strategies for testing workflows (the only wfkit module importing hypothesis).

With the harness they let a test state properties such as: *a task with r retries that
fails k times completes iff k <= r, runs min(k, r) + 1 times, and waits exactly the
delays of the first min(k, r) retries of virtual time*::

    from hypothesis import given
    from wfkit import task
    from wfkit.testing import harness
    from wfkit.testing.strategies import failure_plans, flaky, retry_settings

    @given(settings=retry_settings(), plan=failure_plans())
    def test_retries(settings, plan):
        work = task(flaky(plan), **settings.task_options())
        with harness() as h:
            state = work(return_state=True)
        assert state.is_completed() == (plan.failures <= settings.retries)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from hypothesis import strategies as st

import wfkit.cache_policies as cp
from wfkit.states import Completed, Failed, State, StateType
from wfkit.tasks import exponential_backoff

__all__ = [
    "FailurePlan",
    "cache_policies",
    "FlakyError",
    "RetrySettings",
    "failure_plans",
    "flaky",
    "retry_settings",
    "states",
]


class RetrySettings(NamedTuple):
    """A retry configuration: ``retries``, ``retry_delay_seconds`` (a number, a list or a
    backoff callable) and ``retry_jitter_factor``."""

    retries: int
    retry_delay_seconds: float | list[float] | Callable[[int], list[float]]
    retry_jitter_factor: float | None = None

    def task_options(self) -> dict[str, Any]:
        """The ``@task(...)`` keyword arguments of these settings."""
        return dict(self._asdict())

    def flow_options(self) -> dict[str, Any]:
        """The ``@flow(...)`` keyword arguments (flows take one number as the delay and
        no jitter)."""
        return {"retries": self.retries, "retry_delay_seconds": self.base_delay(1)}

    def base_delay(self, n: int) -> float:
        """The un-jittered delay before retry ``n`` (1-based)."""
        delay = self.retry_delay_seconds
        if callable(delay):
            delay = list(delay(self.retries))
        if isinstance(delay, list):
            return float(delay[min(n, len(delay)) - 1]) if delay else 0.0
        return float(delay)

    def delays_used(self, failures: int) -> list[float]:
        """The un-jittered delays of the retries a run failing ``failures`` times uses."""
        return [self.base_delay(n) for n in range(1, min(failures, self.retries) + 1)]


_delay = st.integers(min_value=0, max_value=3600).map(float) | st.floats(
    min_value=0, max_value=600, allow_nan=False, allow_infinity=False
)


@st.composite
def retry_settings(
    draw: st.DrawFn, max_retries: int = 5, jitter: bool = True, lists: bool = True
) -> RetrySettings:
    """Retry settings: 0..``max_retries`` retries; a constant, a list (up to 6 values, the
    last repeating) or ``exponential_backoff(f)`` delay; optional jitter in [0, 1]."""
    retries = draw(st.integers(min_value=0, max_value=max_retries))
    kinds = ["number", "backoff"] + (["list"] if lists else [])
    kind = draw(st.sampled_from(kinds))
    delay: Any
    if kind == "number":
        delay = draw(_delay)
    elif kind == "list":
        delay = draw(st.lists(_delay, min_size=1, max_size=6))
    else:
        delay = exponential_backoff(draw(st.integers(min_value=0, max_value=120)))
    factor = draw(st.none() | st.floats(min_value=0, max_value=1)) if jitter else None
    return RetrySettings(retries, delay, factor)


class FailurePlan(NamedTuple):
    """What a flaky function does on each call: ``"raise"``, ``"fail"`` (return a Failed
    state) or ``"return"``. ``failures`` leading failures, then success forever."""

    outcomes: tuple[str, ...]

    @property
    def failures(self) -> int:
        return len(self.outcomes) - 1


@st.composite
def failure_plans(
    draw: st.DrawFn, max_failures: int = 6, failed_states: bool = True
) -> FailurePlan:
    """Plans of 0..``max_failures`` failures (raised exceptions, or returned Failed states
    when ``failed_states``) followed by a success."""
    kinds = st.sampled_from(["raise", "fail"]) if failed_states else st.just("raise")
    failures = draw(st.lists(kinds, max_size=max_failures))
    return FailurePlan((*failures, "return"))


class FlakyError(Exception):
    """Raised by a :func:`flaky` function on a planned failure."""


def flaky(plan: FailurePlan, result: Any = "ok", *, is_async: bool = False) -> Callable[..., Any]:
    """A function (``async`` if ``is_async``) that follows ``plan``, one outcome per call,
    repeating the last outcome once the plan is used up. ``fn.call_count()`` counts the
    calls."""
    lock = threading.Lock()
    calls = [0]

    def step() -> Any:
        with lock:
            index = min(calls[0], len(plan.outcomes) - 1)
            calls[0] += 1
        outcome = plan.outcomes[index]
        if outcome == "raise":
            raise FlakyError(f"planned failure {index + 1} of {plan.failures}")
        if outcome == "fail":
            return Failed(message=f"planned failed state {index + 1} of {plan.failures}")
        return result

    if is_async:

        async def flaky_async() -> Any:
            return step()

        fn: Any = flaky_async
    else:

        def flaky_sync() -> Any:
            return step()

        fn = flaky_sync
    fn.call_count = lambda: calls[0]
    return fn  # type: ignore[no-any-return]


@st.composite
def cache_policies(draw: st.DrawFn, argument_names: tuple[str, ...] = ()) -> Any:
    """Cache policies: the built-ins, ``INPUTS`` without some of ``argument_names``, sums of
    those, and either isolation level. ``NO_CACHE`` is included (it never caches)."""
    base = [cp.INPUTS, cp.TASK_SOURCE, cp.RUN_ID, cp.FLOW_PARAMETERS, cp.NO_CACHE, cp.DEFAULT]
    parts = draw(st.lists(st.sampled_from(base), min_size=1, max_size=3))
    policy = parts[0]
    for part in parts[1:]:
        policy = policy + part
    for name in (
        draw(st.lists(st.sampled_from(argument_names), unique=True)) if argument_names else []
    ):
        policy = policy - name
    if draw(st.booleans()):
        policy = policy.configure(isolation_level="SERIALIZABLE")
    return policy


_NAMES_BY_TYPE = {
    StateType.SCHEDULED: ["Scheduled", "AwaitingRetry"],
    StateType.PENDING: ["Pending", "NotReady"],
    StateType.RUNNING: ["Running", "Retrying"],
    StateType.COMPLETED: ["Completed", "Cached"],
    StateType.FAILED: ["Failed", "TimedOut"],
    StateType.CRASHED: ["Crashed"],
    StateType.CANCELLED: ["Cancelled"],
    StateType.CANCELLING: ["Cancelling"],
    StateType.PAUSED: ["Paused"],
}


@st.composite
def states(draw: st.DrawFn, types: list[StateType] | None = None) -> State:
    """States of any (or the given) types, with their usual names and optional messages."""
    state_type = draw(st.sampled_from(types or list(StateType)))
    name = draw(st.sampled_from(_NAMES_BY_TYPE[state_type]))
    message = draw(st.none() | st.text(max_size=40))
    if state_type is StateType.COMPLETED:
        return Completed(name=name, message=message, data=draw(st.integers() | st.none()))
    return State(state_type, name, message=message)
