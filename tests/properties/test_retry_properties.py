"""The retry contract, stated as properties over generated settings and failure plans:
a run with r retries that fails k times completes iff k <= r, runs min(k, r) + 1 times,
waits exactly the delays of the retries it used (jitter within its factor) and has the
§3.3 history shape. For flows and tasks, sync and async."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wfkit import flow, task
from wfkit.testing import harness
from wfkit.testing.strategies import (
    FailurePlan,
    RetrySettings,
    cache_policies,
    failure_plans,
    flaky,
    retry_settings,
    states,
)

PROPERTY = settings(max_examples=75, deadline=None)


def _call(obj, is_async):
    outcome = obj(return_state=True)
    return asyncio.run(outcome) if is_async else outcome


def _expected_history(k: int, r: int) -> list[str]:
    used = min(k, r)
    return ["Pending", "Running", *["AwaitingRetry", "Retrying"] * used] + [
        "Completed" if k <= r else "Failed"
    ]


def _check(run, state, plan: FailurePlan, retry: RetrySettings, fn, clock, jitter: float):
    k, r = plan.failures, retry.retries
    assert state.is_completed() == (k <= r)
    assert run.run_count == min(k, r) + 1 == fn.call_count()
    assert run.state_names == _expected_history(k, r)
    used = retry.delays_used(k)
    assert len(clock.sleeps) == len(used)
    for actual, base in zip(clock.sleeps, used, strict=True):
        assert base * (1 - jitter) - 1e-9 <= actual <= base * (1 + jitter) + 1e-9
    assert clock.elapsed == pytest.approx(sum(clock.sleeps), abs=1e-6)
    if not jitter:
        assert clock.sleeps == used


@PROPERTY
@given(retry=retry_settings(), plan=failure_plans(), is_async=st.booleans())
def test_task_retry_properties(retry, plan, is_async):
    fn = flaky(plan, is_async=is_async)
    work = task(fn, name="work", **retry.task_options())
    with harness(freeze=False) as h:
        state = _call(work, is_async)
        run = h.task_run(work)
    _check(run, state, plan, retry, fn, h.clock, retry.retry_jitter_factor or 0.0)


@PROPERTY
@given(retry=retry_settings(jitter=False), plan=failure_plans(), is_async=st.booleans())
def test_flow_retry_properties(retry, plan, is_async):
    fn = flaky(plan, is_async=is_async)
    pipeline = flow(fn, name="pipeline", **retry.flow_options())
    flow_retry = RetrySettings(retry.retries, retry.base_delay(1))
    with harness(freeze=False) as h:
        state = _call(pipeline, is_async)
        run = h.flow_run(pipeline)
    _check(run, state, plan, flow_retry, fn, h.clock, 0.0)


@PROPERTY
@given(retry=retry_settings(), plan=failure_plans(failed_states=False), seed=st.integers())
def test_jitter_is_reproducible_for_a_seed(retry, plan, seed):
    import random

    from wfkit.context import use_runtime

    sleeps = []
    for _ in range(2):
        work = task(flaky(plan), name="work", **retry.task_options())
        with harness(freeze=False) as h, use_runtime(rng=random.Random(seed)):
            work(return_state=True)
        sleeps.append(h.clock.sleeps)
    assert sleeps[0] == sleeps[1]


@given(state=states())
def test_generated_states_are_consistent(state):
    assert state.is_final() == (state.type.value in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
    if state.is_completed():
        assert state.result() == state.data


@PROPERTY
@given(
    policy=cache_policies(("x", "y")),
    x=st.integers(),
    y=st.integers(),
)
def test_cache_policies_hit_iff_they_compute_a_key_without_run_id(policy, x, y):
    # Called twice in two flow runs with the same arguments, a task caches the second call
    # exactly when its policy produces a key and that key does not depend on the run id.
    from wfkit import cache_policies as cp

    calls = []

    def body(x: int, y: int) -> int:
        calls.append((x, y))
        return x + y

    work = task(body, name="work", cache_policy=policy)
    caller = flow(lambda: work(x, y), name="caller")
    with harness(freeze=False) as h:
        caller()
        caller()
        keyed = h.task_runs(work)[0].cache_key is not None
    parts = getattr(policy, "policies", (policy,))
    uses_run_id = any(isinstance(p, cp.RunId) for p in parts)
    assert h.cache_hits(work) == (1 if keyed and not uses_run_id else 0)
    assert len(calls) == 2 - h.cache_hits(work)
