"""The harness's cache questions (``cache_hits``, ``cache_misses``, ``assert_cache_hits``)
and cache isolation between harnesses and between tests under the pytest plugin."""

from __future__ import annotations

import pytest

from wfkit import flow, task
from wfkit.cache_policies import INPUTS
from wfkit.testing import Harness, harness

from .conftest import START, Calls

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@task(cache_policy=INPUTS)
def cached_double(x: int) -> int:
    return x * 2


@task
def plain_double(x: int) -> int:
    return x * 2


def test_hits_and_misses_count_cached_and_keyed_runs(h: Harness) -> None:
    @task(cache_policy=INPUTS)
    def other(x: int) -> int:
        return x

    @flow
    def pipeline() -> None:
        cached_double(1)  # miss
        cached_double(1)  # hit
        cached_double(2)  # miss
        cached_double(1)  # hit
        plain_double(1)  # no key: neither
        plain_double(1)  # no key: neither
        other(5)  # miss of another task

    pipeline()
    assert h.cache_hits(cached_double) == 2
    assert h.cache_misses(cached_double) == 2
    assert h.cache_hits(plain_double) == h.cache_misses(plain_double) == 0
    assert h.cache_misses(other) == 1
    # By name, and over every task.
    assert h.cache_hits("cached_double") == 2
    assert h.cache_hits() == 2
    assert h.cache_misses() == 3
    h.assert_cache_hits(cached_double, 2)
    h.assert_cache_hits(plain_double, 0)


def test_a_failed_keyed_run_counts_as_a_miss(h: Harness, calls: Calls) -> None:
    @task(cache_policy=INPUTS)
    def boom(x: int) -> int:
        calls(x)
        raise ValueError("no")

    boom(1, return_state=True)
    assert h.cache_hits(boom) == 0
    assert h.cache_misses(boom) == 1  # it had a key and ran its body


def test_assert_cache_hits_failure_lists_the_runs(h: Harness) -> None:
    cached_double(1)
    cached_double(1)
    with pytest.raises(AssertionError) as info:
        h.assert_cache_hits(cached_double, 2)
    message = str(info.value)
    assert "expected 2 cache hit(s)" in message
    assert "'cached_double'" in message
    assert "got 1" in message
    assert "Pending -> Running -> Completed" in message
    assert "Pending -> Running -> Cached" in message
    for run in h.task_runs(cached_double):
        assert run.name in message


def test_assert_cache_hits_failure_with_no_runs(h: Harness) -> None:
    with pytest.raises(AssertionError, match=r"(?s)expected 1 cache hit.*\(none\)"):
        h.assert_cache_hits(cached_double, 1)


def test_cache_records_do_not_leak_between_harnesses() -> None:
    with harness(start=START) as first:
        cached_double(21)
        cached_double(21)
        first.assert_cache_hits(cached_double, 1)
        assert len(first.store.cache_records()) == 1
    with harness(start=START) as second:
        assert second.store.cache_records() == []
        cached_double(21)  # the first harness's record is gone: a miss
        second.assert_cache_hits(cached_double, 0)
        assert second.cache_misses(cached_double) == 1
        assert second.task_run(cached_double).state_names == ["Pending", "Running", "Completed"]


def test_cache_records_do_not_leak_between_sqlite_harnesses() -> None:
    with harness(start=START, store="sqlite") as first:
        cached_double(21)
    with harness(start=START, store="sqlite") as second:
        cached_double(21)
        assert second.cache_misses(cached_double) == 1
    assert first.store_path != second.store_path


CACHED_TESTS = """
from wfkit import task
from wfkit.cache_policies import INPUTS
from wfkit.context import current_runtime

BODY_RUNS = []

@task(cache_policy=INPUTS)
def lookup(x):
    BODY_RUNS.append(x)
    return x + 1

def test_first():
    assert lookup(1) == 2
    runs = current_runtime().store.task_runs(task_name="lookup")
    assert [r.state.name for r in runs] == ["Completed"]
    assert lookup(1) == 2
    assert current_runtime().harness.cache_hits(lookup) == 1

def test_second():
    # Same task, same inputs, same process: the first test's record must not be visible.
    assert current_runtime().store.cache_records() == []
    assert lookup(1) == 2
    runs = current_runtime().store.task_runs(task_name="lookup")
    assert [r.state.name for r in runs] == ["Completed"]
    assert BODY_RUNS == [1, 1]

def test_with_the_fixture(wf_harness):
    assert lookup(1) == 2
    wf_harness.assert_cache_hits(lookup, 0)
    assert wf_harness.cache_misses(lookup) == 1
"""


def test_pytest_plugin_isolates_cache_records_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CACHED_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--wf-isolated", "-v")
    result.assert_outcomes(passed=3)
