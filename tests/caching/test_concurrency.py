"""Concurrent identical cache misses: ``isolation_level="SERIALIZABLE"`` computes once and the
others get ``Cached``; the default READ_COMMITTED only promises that every call completes.

Plain ``threading.Thread`` does not inherit context variables, so every thread enters a
copy of the test's context (one copy per thread: a Context cannot be entered by two threads
at once). Bodies hold their key for a short real wait (``Event.wait``, which the harness does
not make virtual) so that the other threads really do arrive while the first one computes.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

import pytest

from wfkit import flow, task, unmapped
from wfkit.cache_policies import INPUTS, TASK_SOURCE
from wfkit.context import current_runtime, use_runtime
from wfkit.task_runners import ThreadPoolTaskRunner
from wfkit.testing import Harness

from .conftest import Calls

N = 8
HOLD = 0.05  # seconds a body holds its key (a real wait, not a timing assertion)
JOIN = 60  # a deadlock fails the test after this long instead of hanging the session

SERIAL = INPUTS.configure(isolation_level="SERIALIZABLE")


def run_threads(fn: Callable[[int], Any], n: int = N, *, copy_context: bool = True) -> list[Any]:
    """Call ``fn(i)`` in ``n`` threads released together by a barrier; their results in
    thread order (an exception a thread raised is re-raised here)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=JOIN)
            results[i] = fn(i)
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    threads = []
    for i in range(n):
        if copy_context:
            ctx = contextvars.copy_context()  # one copy per thread
            thread = threading.Thread(target=ctx.run, args=(target, i), daemon=True)
        else:
            thread = threading.Thread(target=target, args=(i,), daemon=True)
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join(JOIN)
    assert not any(t.is_alive() for t in threads), "threads still running: a deadlock?"
    if errors:
        raise errors[0]
    return results


def test_serializable_computes_once_across_threads(h: Harness, calls: Calls) -> None:
    @task(cache_policy=SERIAL)
    def expensive(x: int) -> int:
        calls(x)
        threading.Event().wait(HOLD)
        return x * 100

    states = run_threads(lambda i: expensive(3, return_state=True))
    assert [s.result() for s in states] == [300] * N
    assert calls.count == 1
    assert sorted(s.name for s in states) == ["Cached"] * (N - 1) + ["Completed"]
    runs = h.task_runs(expensive)
    assert len(runs) == N
    assert h.cache_hits(expensive) == N - 1
    assert h.cache_misses(expensive) == 1
    assert len({r.cache_key for r in runs}) == 1


def test_serializable_threads_entering_the_runtime_explicitly(h: Harness, calls: Calls) -> None:
    @task(cache_policy=SERIAL)
    def expensive(x: int) -> int:
        calls(x)
        threading.Event().wait(HOLD)
        return x

    def call(i: int) -> Any:
        # No inherited context: the thread enters the harness's store and clock itself.
        with use_runtime(store=h.store, clock=h.clock):
            assert current_runtime().store is h.store
            return expensive(9, return_state=True)

    states = run_threads(call, copy_context=False)
    assert calls.count == 1
    assert sorted(s.name for s in states) == ["Cached"] * (N - 1) + ["Completed"]
    assert h.cache_hits(expensive) == N - 1


def test_serializable_locks_per_key_not_globally(h: Harness) -> None:
    """Two different keys run at the same time: each body waits for the other to start."""
    started = {1: threading.Event(), 2: threading.Event()}

    @task(cache_policy=SERIAL)
    def rendezvous(x: int) -> bool:
        started[x].set()
        return started[3 - x].wait(JOIN / 4)

    results = run_threads(lambda i: rendezvous(i + 1), n=2)
    assert results == [True, True]


def test_serializable_releases_the_key_when_the_body_fails(h: Harness, calls: Calls) -> None:
    @task(cache_policy=SERIAL)
    def flaky(x: int) -> int:
        if calls(x) == 1:
            raise RuntimeError("first call fails")
        return x

    # In a thread with a join timeout: a lock left held would deadlock the second call.
    def sequence(i: int) -> list[str]:
        return [flaky(1, return_state=True).name, flaky(1, return_state=True).name]

    assert run_threads(sequence, n=1) == [["Failed", "Completed"]]
    assert flaky(1) == 1
    assert calls.count == 2


def test_serializable_releases_the_key_on_an_unserializable_result(h: Harness) -> None:
    @task(cache_policy=SERIAL)
    def make(x: int) -> Any:
        return threading.Lock()

    def twice(i: int) -> list[str]:
        return [make(1, return_state=True).name, make(1, return_state=True).name]

    assert run_threads(twice, n=1) == [["Completed", "Completed"]]


def test_serializable_composes_through_addition(h: Harness, calls: Calls) -> None:
    policy = SERIAL + TASK_SOURCE
    assert policy.isolation_level == "SERIALIZABLE"

    @task(cache_policy=policy)
    def expensive(x: int) -> int:
        calls(x)
        threading.Event().wait(HOLD)
        return x

    states = run_threads(lambda i: expensive(5, return_state=True))
    assert calls.count == 1
    assert sum(s.name == "Cached" for s in states) == N - 1


@pytest.mark.parametrize("how", ["submit", "map"])
def test_serializable_in_a_flow_on_a_thread_pool(h: Harness, calls: Calls, how: str) -> None:
    @task(cache_policy=SERIAL)
    def expensive(x: int, scale: int) -> int:
        calls(x)
        threading.Event().wait(HOLD)
        return x * scale

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=N))
    def fan_out() -> list[int]:
        if how == "submit":
            futures = [expensive.submit(2, 10) for _ in range(N)]
            return [f.result() for f in futures]
        return expensive.map([2] * N, unmapped(10)).result()

    assert fan_out() == [20] * N
    assert calls.count == 1
    runs = h.task_runs(expensive)
    assert len(runs) == N
    assert sorted(r.state.name for r in runs) == ["Cached"] * (N - 1) + ["Completed"]
    h.assert_cache_hits(expensive, N - 1)
    assert h.flow_run(fan_out).state.name == "Completed"


def test_read_committed_default_completes_every_call(h: Harness, calls: Calls) -> None:
    assert INPUTS.isolation_level == "READ_COMMITTED"

    @task(cache_policy=INPUTS)
    def expensive(x: int) -> int:
        calls(x)
        threading.Event().wait(HOLD)
        return x * 2

    states = run_threads(lambda i: expensive(4, return_state=True))
    # Racy by design: how many bodies run is not promised, only that every call completes
    # with the right value and each run is either a hit or a miss.
    assert [s.result() for s in states] == [8] * N
    assert all(s.name in ("Completed", "Cached") for s in states)
    assert 1 <= calls.count <= N
    assert h.cache_hits(expensive) + h.cache_misses(expensive) == N
    assert len(h.store.cache_records()) == 1


def test_read_committed_in_a_flow_completes_every_call(h: Harness) -> None:
    @task(cache_policy=INPUTS)
    def expensive(x: int) -> int:
        threading.Event().wait(HOLD)
        return x + 1

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=N))
    def fan_out() -> list[int]:
        return expensive.map([1] * N).result()

    assert fan_out() == [2] * N
    assert all(r.state.is_completed() for r in h.task_runs(expensive))
