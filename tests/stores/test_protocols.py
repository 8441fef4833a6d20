"""The store protocols from the outside: a plugin's store is checked when it is opened, and
the shipped conformance suite runs against a third-party store, passing a good one and failing
a broken one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import wfkit
from wfkit._plugins import unregister_plugin
from wfkit.stores import CacheStore, RunReader, RunRecorder, RunStore, open_store
from wfkit.stores.memory import MemoryStore


class _RecorderOnly:
    """A store a plugin might write first: it records, but can neither read nor cache."""

    url = "half://x"
    flush = None  # not callable: counts as missing

    def record_flow_run(self, run: Any) -> None: ...

    def record_task_run(self, run: Any) -> None: ...

    def record_log(self, entry: Any) -> None: ...

    def close(self) -> None: ...


class _Stores:
    """A plugin that opens ``half://`` (a store missing members) and ``good://`` stores."""

    @wfkit.hookimpl
    def wfkit_make_store(self, url: str) -> Any:
        if url.startswith("half://"):
            return _RecorderOnly()
        if url.startswith("good://"):
            return MemoryStore(url)
        return None


@pytest.fixture
def plugin() -> Iterator[_Stores]:
    plugin = _Stores()
    wfkit.register_plugin(plugin)
    yield plugin
    unregister_plugin(plugin)


def test_a_plugin_store_that_lacks_members_is_refused_at_open(plugin: _Stores) -> None:
    with pytest.raises(TypeError) as info:
        open_store("half://x")

    message = str(info.value)
    assert "test_protocols._RecorderOnly" in message and "url='half://x'" in message
    assert (
        "lacks acquire_slots, artifact, artifacts, cache_keys, cache_records, cache_secret, "
        "check, concurrency_limits, create_limit, delete_cache, delete_limit, events, "
        "find_flow_runs, flow_run, flow_run_counts, flow_runs, flow_runs_in_tree, "
        "flow_runs_page, flush, logs, logs_after, prune_cache, prune_runs, read_cache, "
        "read_limit, record_artifact, record_event, release_slots, summary, task_run_counts, "
        "task_run_groups, task_runs, task_runs_page, write_cache." in message
    )
    assert "wfkit.testing.store_conformance" in message


def test_a_plugin_store_that_implements_the_protocols_is_returned(plugin: _Stores) -> None:
    store = open_store("good://x")

    assert isinstance(store, MemoryStore) and store.url == "good://x"


def test_the_protocols_split_a_store_by_what_each_side_needs() -> None:
    recorder = _RecorderOnly()
    recorder.flush = lambda: None  # type: ignore[assignment,method-assign]

    assert isinstance(recorder, RunRecorder)
    assert not any(isinstance(recorder, p) for p in (RunReader, CacheStore, RunStore))
    assert all(isinstance(MemoryStore(), p) for p in (RunRecorder, RunReader, CacheStore))


_THIRD_PARTY = '''
import pytest

from wfkit.stores.memory import MemoryStore
from wfkit.testing.store_conformance import StoreConformance


class ForgetfulStore(MemoryStore):
    """Ignores the start-time bounds and the limit, and says every key was deleted."""

    def flow_runs(self, flow_name=None, state=None, tags=None, since=None, until=None, limit=None):
        return super().flow_runs(flow_name, state, tags)

    def delete_cache(self, key):
        super().delete_cache(key)
        return True


class TestGoodStore(StoreConformance):
    keeps_parameter_objects = keeps_results = True

    @pytest.fixture
    def store(self):
        return MemoryStore()


class TestForgetfulStore(TestGoodStore):
    @pytest.fixture
    def store(self):
        return ForgetfulStore()


class TestWithoutAStore(StoreConformance):
    pass
'''


def test_the_suite_passes_a_good_store_and_fails_a_broken_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_third_party=_THIRD_PARTY)

    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")

    failed = {
        line.split("::")[2].split(" ")[0]
        for line in result.outlines
        if line.startswith("FAILED") and "TestForgetfulStore" in line
    }
    assert failed == {
        "test_limit_keeps_the_most_recent_runs",
        "test_flow_runs_filter_by_tags_carrying_all_of_them",  # (it uses a limit too)
        "test_limit_zero_keeps_nothing_and_a_negative_limit_is_refused",
        "test_since_and_until_bound_the_start_time",
        "test_a_run_counts_from_its_start_not_its_first_state",
        "test_bounds_are_instants_and_naive_ones_are_utc",
        "test_a_bound_must_be_a_datetime[since]",
        "test_a_bound_must_be_a_datetime[until]",
        "test_delete_removes_one_record_and_says_whether_there_was_one",
        "test_flow_run_counts_by_state_follow_the_filters",  # (memory counts what flow_runs finds)
    }
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == len(failed)  # TestGoodStore failed nothing
    assert outcomes["passed"] == 2 * outcomes["errors"] - len(failed)
    result.stdout.fnmatch_lines(["*TestWithoutAStore must define a `store` fixture*"])
