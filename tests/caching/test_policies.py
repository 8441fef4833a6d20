"""Cache policies end to end: which calls of a task share a cache entry, through the engine
(task runs, their states and keys in the store), not just the keys the policies compute."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wfkit import flow, task
from wfkit.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyContext,
)
from wfkit.tasks import task_input_hash
from wfkit.testing import Harness

from .conftest import Calls

HIT = ["Pending", "Running", "Cached"]
MISS = ["Pending", "Running", "Completed"]


def histories(h: Harness, t: Any) -> list[list[str]]:
    return [r.state_names for r in h.task_runs(t)]


# INPUTS ------------------------------------------------------------------------------------
def test_inputs_hit_runs_the_body_once_and_restores_the_result(
    store_h: Harness, mode: Any, calls: Calls
) -> None:
    def build(x: int) -> dict[str, Any]:
        calls(x)
        return {"x": x, "items": [x, x + 1], "nested": {"t": (1, 2)}}

    build_task = mode.task(build, name="build", cache_policy=INPUTS)
    first = mode.call(build_task, 3)
    second = mode.call(build_task, 3)
    assert first == second == {"x": 3, "items": [3, 4], "nested": {"t": (1, 2)}}
    assert calls.args == [3]
    assert histories(store_h, build_task) == [MISS, HIT]
    runs = store_h.task_runs(build_task)
    assert runs[0].cache_key is not None and runs[0].cache_key == runs[1].cache_key
    store_h.assert_cache_hits(build_task, 1)


def test_inputs_hit_state_is_a_completed_cached_state_with_the_result(
    h: Harness, calls: Calls
) -> None:
    @task(cache_policy=INPUTS)
    def square(x: int) -> int:
        calls(x)
        return x * x

    assert square(4, return_state=True).name == "Completed"
    state = square(4, return_state=True)
    assert state.name == "Cached"
    assert state.is_completed()
    assert state.result() == 16
    assert calls.count == 1


def test_inputs_miss_on_different_inputs(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS)
    def square(x: int) -> int:
        calls(x)
        return x * x

    assert [square(2), square(3), square(2), square(x=3)] == [4, 9, 4, 9]
    assert calls.args == [2, 3]
    assert histories(h, square) == [MISS, MISS, HIT, HIT]


def test_inputs_key_does_not_depend_on_how_arguments_are_passed(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS)
    def add(x: int, y: int = 10) -> int:
        calls((x, y))
        return x + y

    assert add(1, 10) == add(1) == add(y=10, x=1) == 11
    assert calls.count == 1


def test_inputs_minus_an_argument_ignores_it(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS - "verbose")
    def fetch(url: str, verbose: bool) -> str:
        calls(url)
        return f"body of {url}"

    assert fetch("a", True) == fetch("a", False) == "body of a"
    assert fetch("b", True) == "body of b"
    assert calls.args == ["a", "b"]
    assert histories(h, fetch) == [MISS, HIT, MISS]


def test_inputs_with_every_argument_excluded_is_not_cached(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS - "x")
    def only_x(x: int) -> int:
        calls(x)
        return x

    assert only_x(1) == 1 and only_x(2) == 2 and only_x(1) == 1
    assert calls.count == 3
    assert [r.cache_key for r in h.task_runs(only_x)] == [None, None, None]


# TASK_SOURCE -------------------------------------------------------------------------------
def test_task_source_ignores_inputs_and_follows_the_source(h: Harness, calls: Calls) -> None:
    @task(cache_policy=TASK_SOURCE)
    def version_one(x: int) -> str:
        calls(("one", x))
        return "v1"

    @task(cache_policy=TASK_SOURCE)
    def version_two(x: int) -> str:
        calls(("two", x))
        return "v2"

    assert version_one(1) == version_one(2) == "v1"  # the inputs are not part of the key
    assert version_two(1) == "v2"  # other source: another key
    assert calls.args == [("one", 1), ("two", 1)]
    assert histories(h, version_one) == [MISS, HIT]
    assert h.task_run(version_two).cache_key != h.task_runs(version_one)[0].cache_key


# DEFAULT / RUN_ID ------------------------------------------------------------------------
def test_default_hits_within_one_flow_run_and_misses_across_flow_runs(
    h: Harness, mode: Any, calls: Calls
) -> None:
    def load(x: int) -> int:
        calls(x)
        return x + 100

    load_task = mode.task(load, name="load", cache_policy=DEFAULT)

    if mode.is_async:

        async def body(x: int) -> list[int]:
            return [await load_task(x), await load_task(x), await load_task(x + 1)]

        pipeline = flow(body, name="pipeline")
    else:

        def sync_body(x: int) -> list[int]:
            return [load_task(x), load_task(x), load_task(x + 1)]

        pipeline = flow(sync_body, name="pipeline")

    assert mode.call(pipeline, 1) == [101, 101, 102]
    assert mode.call(pipeline, 1) == [101, 101, 102]  # a new flow run: RUN_ID differs
    assert calls.args == [1, 2, 1, 2]
    assert histories(h, load_task) == [MISS, HIT, MISS, MISS, HIT, MISS]


def test_default_outside_a_flow_never_hits(h: Harness, calls: Calls) -> None:
    @task(cache_policy=DEFAULT)
    def load(x: int) -> int:
        calls(x)
        return x

    load(1)
    load(1)
    assert calls.count == 2  # RUN_ID is the task run's own id outside a flow
    assert histories(h, load) == [MISS, MISS]
    keys = [r.cache_key for r in h.task_runs(load)]
    assert None not in keys and keys[0] != keys[1]


def test_run_id_alone_hits_for_any_inputs_within_a_flow_run(h: Harness, calls: Calls) -> None:
    @task(cache_policy=RUN_ID)
    def once_per_run(x: int) -> int:
        calls(x)
        return x

    @flow
    def pipeline() -> list[int]:
        return [once_per_run(1), once_per_run(2)]

    assert pipeline() == [1, 1]
    assert pipeline() == [1, 1]
    assert calls.args == [1, 1]


# FLOW_PARAMETERS -------------------------------------------------------------------------
def test_flow_parameters_hit_across_flow_runs_with_the_same_parameters(
    h: Harness, calls: Calls
) -> None:
    @task(cache_policy=FLOW_PARAMETERS)
    def expensive(x: int) -> int:
        calls(x)
        return x * 10

    @flow
    def report(day: str, x: int) -> int:
        return expensive(x)

    assert report("mon", 1) == 10
    assert report("mon", 1) == 10  # same flow parameters: hit in another flow run
    assert report("tue", 1) == 10  # other flow parameters: miss
    assert calls.args == [1, 1]
    assert histories(h, expensive) == [MISS, HIT, MISS]
    first, second, third = h.task_runs(expensive)
    assert first.flow_run_id != second.flow_run_id
    assert first.cache_key == second.cache_key != third.cache_key


def test_flow_parameters_ignore_the_task_inputs(h: Harness, calls: Calls) -> None:
    @task(cache_policy=FLOW_PARAMETERS)
    def expensive(x: int) -> int:
        calls(x)
        return x * 10

    @flow
    def report(day: str) -> list[int]:
        return [expensive(1), expensive(2)]

    assert report("mon") == [10, 10]
    assert calls.args == [1]


def test_flow_parameters_outside_a_flow_is_not_cached(h: Harness, calls: Calls) -> None:
    @task(cache_policy=FLOW_PARAMETERS)
    def expensive(x: int) -> int:
        calls(x)
        return x

    expensive(1)
    expensive(1)
    assert calls.count == 2
    assert [r.cache_key for r in h.task_runs(expensive)] == [None, None]


# NO_CACHE / NONE ---------------------------------------------------------------------------
@pytest.mark.parametrize("policy", [NO_CACHE, NONE], ids=["NO_CACHE", "NONE"])
def test_no_cache_never_caches(h: Harness, calls: Calls, policy: Any) -> None:
    @task(cache_policy=policy)
    def compute(x: int) -> int:
        calls(x)
        return x

    @flow
    def pipeline() -> list[int]:
        return [compute(1), compute(1)]

    assert pipeline() == [1, 1]
    compute(1)
    assert calls.count == 3
    assert all(names == MISS for names in histories(h, compute))
    assert [r.cache_key for r in h.task_runs(compute)] == [None, None, None]
    assert h.store.cache_records() == []
    assert h.cache_hits(compute) == h.cache_misses(compute) == 0


# composition -------------------------------------------------------------------------------
def test_added_policies_need_every_part_to_match(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS + FLOW_PARAMETERS)
    def compute(x: int) -> int:
        calls(x)
        return x

    @flow
    def pipeline(env: str, x: int) -> int:
        return compute(x)

    pipeline("dev", 1)  # miss
    pipeline("dev", 1)  # hit: same inputs, same flow parameters
    pipeline("prod", 1)  # miss: other flow parameters
    pipeline("dev", 2)  # miss: other inputs
    assert calls.args == [1, 1, 2]
    assert histories(h, compute) == [MISS, HIT, MISS, MISS]


def test_adding_no_cache_changes_nothing(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS + NO_CACHE)
    def compute(x: int) -> int:
        calls(x)
        return x

    compute(1)
    compute(1)
    assert calls.count == 1
    assert histories(h, compute) == [MISS, HIT]


def test_default_minus_an_argument(h: Harness, calls: Calls) -> None:
    @task(cache_policy=DEFAULT - "note")
    def compute(x: int, note: str) -> int:
        calls(x)
        return x

    @flow
    def pipeline() -> None:
        compute(1, "a")
        compute(1, "b")
        compute(2, "a")

    pipeline()
    assert calls.args == [1, 2]


# cache_key_fn ------------------------------------------------------------------------------
def test_cache_key_fn_overrides_the_policy(h: Harness, calls: Calls) -> None:
    seen: list[tuple[Any, dict[str, Any]]] = []

    def by_parity(context: CacheKeyContext, parameters: dict[str, Any]) -> str:
        seen.append((context, parameters))
        return f"parity-{parameters['x'] % 2}"

    # INPUTS alone would miss on 1 vs 3; the key function makes them one entry.
    @task(cache_policy=INPUTS, cache_key_fn=by_parity)
    def compute(x: int) -> int:
        calls(x)
        return x

    assert [compute(1), compute(3), compute(2), compute(4)] == [1, 1, 2, 2]
    assert calls.args == [1, 2]
    assert [r.cache_key for r in h.task_runs(compute)] == [
        "parity-1",
        "parity-1",
        "parity-0",
        "parity-0",
    ]
    context, parameters = seen[0]
    assert context.task_name == "compute"
    assert parameters == {"x": 1}


def test_cache_key_fn_with_no_cache_policy_still_caches(h: Harness, calls: Calls) -> None:
    @task(cache_policy=NO_CACHE, cache_key_fn=lambda context, parameters: "constant")
    def compute(x: int) -> int:
        calls(x)
        return x

    assert compute(1) == compute(2) == 1
    assert calls.count == 1


def test_cache_key_fn_returning_none_does_not_cache(h: Harness, calls: Calls) -> None:
    @task(cache_key_fn=lambda context, parameters: None)
    def compute(x: int) -> int:
        calls(x)
        return x

    compute(1)
    compute(1)
    assert calls.count == 2
    assert histories(h, compute) == [MISS, MISS]
    assert [r.cache_key for r in h.task_runs(compute)] == [None, None]
    assert h.store.cache_records() == []


def test_legacy_task_input_hash(h: Harness, calls: Calls) -> None:
    @task(cache_key_fn=task_input_hash)
    def compute(x: int) -> int:
        calls(("compute", x))
        return x

    @task(cache_key_fn=task_input_hash)
    def other(x: int) -> int:
        calls(("other", x))
        return -x

    @flow
    def pipeline() -> list[int]:
        return [compute(1), compute(1), compute(2)]

    assert pipeline() == [1, 1, 2]
    assert pipeline() == [1, 1, 2]  # no RUN_ID in task_input_hash: hits across flow runs
    assert other(1) == -1  # the task is part of the key: no sharing with `compute`
    assert calls.args == [("compute", 1), ("compute", 2), ("other", 1)]
    assert histories(h, compute) == [MISS, HIT, MISS, HIT, HIT, HIT]


def test_legacy_task_input_hash_with_an_unhashable_input_runs_uncached(
    h: Harness, calls: Calls
) -> None:
    import threading

    @task(cache_key_fn=task_input_hash)
    def guarded(lock: Any) -> str:
        calls("run")
        return "ok"

    lock = threading.Lock()
    assert guarded(lock) == guarded(lock) == "ok"
    assert calls.count == 2
    assert [r.cache_key for r in h.task_runs(guarded)] == [None, None]


# no cache settings: no surprise Cached (Prefect #14236) -------------------------------------
def test_tasks_without_cache_settings_never_produce_cached(h: Harness, calls: Calls) -> None:
    @task
    def plain(x: int) -> int:
        calls(x)
        return x

    @flow
    def pipeline() -> list[int]:
        futures = [plain.submit(1), plain.submit(1)]
        return [plain(1), plain(1)] + [f.result() for f in futures]

    assert pipeline() == [1, 1, 1, 1]
    assert pipeline() == [1, 1, 1, 1]
    plain(1)
    plain(1)
    assert calls.count == 10
    runs = h.task_runs(plain)
    assert len(runs) == 10
    assert all(r.state_names == MISS for r in runs)
    assert all(r.cache_key is None for r in runs)
    assert h.cache_hits(plain) == 0 and h.cache_misses(plain) == 0
    assert h.store.cache_records() == []


@pytest.mark.parametrize(
    "options",
    [
        {"cache_expiration": 60},
        {"result_serializer": "json"},
        {"refresh_cache": False},
        {"result_serializer": "pickle", "cache_expiration": 3600},
    ],
    # (persist_result=True does turn caching on, as in Prefect: tests/compat)
    ids=["cache_expiration", "result_serializer", "refresh_cache", "all"],
)
def test_result_options_without_a_policy_do_not_turn_caching_on(
    h: Harness, calls: Calls, options: dict[str, Any]
) -> None:
    @task(**options)
    def plain(x: int) -> int:
        calls(x)
        return x

    plain(1)
    plain(1)
    assert calls.count == 2
    assert histories(h, plain) == [MISS, MISS]
    assert [r.cache_key for r in h.task_runs(plain)] == [None, None]
    assert h.store.cache_records() == []


# async -------------------------------------------------------------------------------------
def test_async_task_hits_inside_one_event_loop(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS)
    async def fetch(x: int) -> int:
        calls(x)
        await asyncio.sleep(1)
        return x * 2

    async def main() -> list[int]:
        return [await fetch(5), await fetch(5), await fetch(6)]

    assert asyncio.run(main()) == [10, 10, 12]
    assert calls.args == [5, 6]
    assert histories(h, fetch) == [MISS, HIT, MISS]
    assert h.clock.elapsed == 2  # the hit did not sleep


# inputs that are futures -----------------------------------------------------------------
def test_futures_are_resolved_before_the_key_is_computed(h: Harness, calls: Calls) -> None:
    @task
    def produce(x: int) -> int:
        return x + 1

    @task(cache_policy=INPUTS)
    def consume(y: int) -> int:
        calls(y)
        return y * 10

    @flow
    def pipeline() -> list[int]:
        upstream = produce.submit(1)
        first = consume.submit(upstream).result()
        second = consume.submit(upstream).result()
        return [first, second, consume(2)]  # the plain value 2 has the same key

    assert pipeline() == [20, 20, 20]
    assert calls.args == [2]
    runs = h.task_runs(consume)
    assert [r.state.name for r in runs] == ["Completed", "Cached", "Cached"]
    assert len({r.cache_key for r in runs}) == 1
