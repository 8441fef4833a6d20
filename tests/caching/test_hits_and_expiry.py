"""Cache hits restore without running the body; ``cache_expiration`` is measured on the
clock (virtual under the harness); ``refresh_cache=True`` recomputes and overwrites."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from wfkit import flow, task
from wfkit.cache_policies import INPUTS, TASK_SOURCE
from wfkit.testing import Harness

from .conftest import Calls

HIT = ["Pending", "Running", "Cached"]
MISS = ["Pending", "Running", "Completed"]


def names(h: Harness, t: Any) -> list[str]:
    return [r.state.name for r in h.task_runs(t)]


def test_a_hit_does_not_run_the_body_hooks_or_sleeps(h: Harness, calls: Calls) -> None:
    import time

    completions: list[str] = []

    @task(cache_policy=INPUTS, on_completion=[lambda t, run, state: completions.append(state.name)])
    def slow(x: int) -> int:
        calls(x)
        time.sleep(30)
        return x

    assert slow(1) == 1
    assert h.clock.elapsed == 30
    assert slow(1) == 1
    assert h.clock.elapsed == 30  # the body (and its sleep) did not run again
    assert calls.count == 1
    # Cached is a completed state: on_completion fires for it as well.
    assert completions == ["Completed", "Cached"]


def test_a_hit_returns_a_copy_restored_from_the_record(h: Harness) -> None:
    @task(cache_policy=INPUTS)
    def make(x: int) -> list[int]:
        return [x]

    first = make(1)
    first.append(99)  # mutating the caller's value does not change what is cached
    assert make(1) == [1]


def test_hit_run_count_is_one(h: Harness) -> None:
    @task(cache_policy=INPUTS)
    def make(x: int) -> int:
        return x

    make(1)
    make(1)
    assert [r.run_count for r in h.task_runs(make)] == [1, 1]


def test_a_failed_run_is_not_cached(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS)
    def flaky(x: int) -> int:
        n = calls(x)
        if n == 1:
            raise RuntimeError("first call fails")
        return x

    assert flaky(1, return_state=True).is_failed()
    assert flaky(1) == 1
    assert flaky(1) == 1
    assert calls.count == 2
    assert names(h, flaky) == ["Failed", "Completed", "Cached"]


def test_a_retried_run_caches_its_final_result(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS, retries=2)
    def flaky(x: int) -> int:
        if calls(x) < 3:
            raise ConnectionError("again")
        return x * 7

    assert flaky(2) == 14
    assert flaky(2) == 14
    assert calls.count == 3
    assert names(h, flaky) == ["Completed", "Cached"]


def test_a_task_returning_a_failed_state_is_not_cached(h: Harness, calls: Calls) -> None:
    from wfkit.states import Failed

    @task(cache_policy=INPUTS)
    def refuses(x: int) -> Any:
        calls(x)
        return Failed(message="no")

    refuses(1, return_state=True)
    refuses(1, return_state=True)
    assert calls.count == 2
    assert h.store.cache_records() == []


# expiration ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expiration", [timedelta(minutes=5), 300, 300.0], ids=["timedelta", "int", "float"]
)
def test_cache_expiration_is_measured_on_the_clock(
    h: Harness, calls: Calls, expiration: Any
) -> None:
    @task(cache_policy=INPUTS, cache_expiration=expiration)
    def fetch(x: int) -> int:
        return calls(x)

    start = h.clock.now()
    assert fetch(1) == 1
    (record,) = h.store.cache_records()
    assert record.expires_at == start + timedelta(seconds=300)
    assert record.created_at == start

    h.clock.advance(299)
    assert fetch(1) == 1  # before expiry: hit
    h.clock.advance(2)
    assert fetch(1) == 2  # past expiry: miss, recomputed and rewritten
    (record,) = h.store.cache_records()
    assert record.expires_at == start + timedelta(seconds=301 + 300)
    h.clock.advance(timedelta(minutes=4))
    assert fetch(1) == 2  # the new record is live
    assert names(h, fetch) == ["Completed", "Cached", "Completed", "Cached"]


def test_cache_expiration_across_flow_runs_under_virtual_sleep(h: Harness, calls: Calls) -> None:
    import time

    @task(cache_policy=INPUTS, cache_expiration=timedelta(hours=1))
    def rate(currency: str) -> int:
        return calls(currency)

    @flow
    def quote(currency: str, wait: float) -> int:
        time.sleep(wait)  # virtual under the harness: moves the clock
        return rate(currency)

    assert quote("EUR", 0) == 1
    assert quote("EUR", 1800) == 1  # 30 min later: hit
    assert quote("EUR", 1801) == 2  # 60 min + 1 s after the record was written: miss
    assert h.clock.elapsed == 3601


def test_a_record_without_expiration_never_expires(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS)
    def fetch(x: int) -> int:
        return calls(x)

    fetch(1)
    h.clock.advance(timedelta(days=3650))
    assert fetch(1) == 1
    assert h.store.cache_records()[0].expires_at is None


def test_expiration_works_on_the_sqlite_store(store_h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=10))
    def fetch(x: int) -> int:
        return calls(x)

    fetch(1)
    store_h.clock.advance(9)
    assert fetch(1) == 1
    store_h.clock.advance(1)
    assert fetch(1) == 2  # expires_at <= now: no longer restorable


# refresh_cache -----------------------------------------------------------------------
def test_refresh_cache_recomputes_and_overwrites(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS + TASK_SOURCE)
    def fetch(x: int) -> str:
        return f"value-{calls(x)}"

    refreshing = fetch.with_options(refresh_cache=True)

    assert fetch(1) == "value-1"
    assert fetch(1) == "value-1"  # hit
    assert refreshing(1) == "value-2"  # recomputes although a record exists
    assert refreshing(1) == "value-3"  # and again: refresh never reads the cache
    assert fetch(1) == "value-3"  # the next normal call gets the overwritten value
    assert calls.count == 3
    assert names(h, fetch) == ["Completed", "Cached", "Completed", "Completed", "Cached"]
    keys = {r.cache_key for r in h.task_runs(fetch)}
    assert len(keys) == 1 and None not in keys
    assert len(h.store.cache_records()) == 1


def test_refresh_cache_on_the_decorator(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS, refresh_cache=True)
    def always(x: int) -> int:
        return calls(x)

    assert [always(1), always(1), always(1)] == [1, 2, 3]
    assert names(h, always) == ["Completed"] * 3
    # The refreshing runs are keyed runs that ran their body: misses, never hits.
    assert h.cache_misses(always) == 3 and h.cache_hits(always) == 0


def test_refresh_cache_resets_the_expiry(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=100)
    def fetch(x: int) -> int:
        return calls(x)

    fetch(1)
    h.clock.advance(90)
    fetch.with_options(refresh_cache=True)(1)  # rewritten at t=90: expires at t=190
    h.clock.advance(90)
    assert fetch(1) == 2  # t=180: hit on the refreshed record
    h.clock.advance(10)
    assert fetch(1) == 3  # t=190: expired
