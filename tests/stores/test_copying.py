"""The copier behind ``wf store copy`` (``wfkit.stores._copying``) on memory stores, which
stand for any store that implements the protocols: what merging decides, kind by kind. The
command itself, between real SQLite files and PostgreSQL, is tested in ``tests/cli`` and
``tests/postgres``."""

from __future__ import annotations

import pytest

from wfkit._engine.caching import sign
from wfkit.cli._copy import _resign
from wfkit.exceptions import StoreError
from wfkit.states import Completed, Crashed, Pending, Running
from wfkit.stores._copying import copy_store, store_contents
from wfkit.stores.memory import MemoryStore
from wfkit.testing.store_conformance import (
    at,
    finished,
    log_entry,
    record_flow,
    record_task,
)


def _source() -> MemoryStore:
    store = MemoryStore()
    record_flow(store, finished(), run_id="flow-1")
    record_task(store, finished(1), run_id="task-1", flow_run_id="flow-1")
    record_task(store, finished(2), run_id="alone", flow_run_id=None)
    store.record_log(log_entry("one", "flow-1"))
    store.record_log(log_entry("two", "flow-1", "task-1"))
    store.record_log(log_entry("alone", None, "alone"))
    payload = b'{"n": 1}'
    store.write_cache(
        "k", sign(store.cache_secret(), "k", "json", payload), "json", None, "t", at(0)
    )
    store.create_limit("db", 2)
    return store


def test_a_memory_store_is_copied_whole() -> None:
    source, target = _source(), MemoryStore()
    assert store_contents(target) == {}
    result = copy_store(source, target, _resign, page_size=1)
    assert [r.states for r in target.flow_runs()] == [r.states for r in source.flow_runs()]
    assert target.task_runs() == source.task_runs()
    assert target.logs() == source.logs()
    assert result.counts["logs"] == {"copied": 3}
    record = target.read_cache("k")
    assert record is not None and record.value == sign(
        target.cache_secret(), "k", "json", b'{"n": 1}'
    )
    assert store_contents(target) == {
        "flow_runs": 1, "task_runs": 2, "logs": 3, "cache_records": 1
    }  # fmt: skip
    again = copy_store(source, target, _resign, merge=True, page_size=1)
    assert again.counts["flow_runs"] == {"identical": 1}
    assert again.counts["cache_records"] == {"identical": 1}
    assert again.counts["limits"] == {"identical": 1}
    assert target.logs() == source.logs()


def test_merging_adds_what_is_missing_and_keeps_what_differs() -> None:
    source, target = _source(), MemoryStore()
    record_flow(target, finished()[:2], run_id="flow-1")  # the start of the source's history
    target.record_log(log_entry("one", "flow-1"))
    record_task(target, [Pending(timestamp=at(1)), Crashed(timestamp=at(5))], run_id="task-1")
    target.create_limit("db", 5)  # resized there: the copy leaves it
    newer = sign(target.cache_secret(), "k", "json", b'{"n": 2}')
    target.write_cache("k", newer, "json", None, "t", at(9))  # computed there since

    result = copy_store(source, target, _resign, merge=True)
    assert result.counts["flow_runs"] == {"updated": 1}
    assert result.counts["states"] == {"copied": 1 + 3}  # (Completed; `alone` whole)
    assert result.counts["logs"] == {"copied": 2, "identical": 1}
    assert result.counts["task_runs"] == {"conflicts": 1, "copied": 1}
    assert result.counts["cache_records"] == {"conflicts": 1}
    assert result.counts["limits"] == {"conflicts": 1}
    assert result.conflicts == ["task run task-1", "concurrency limit db"]
    assert target.flow_run("flow-1").states == source.flow_run("flow-1").states
    assert target.task_runs(task_name="extract")[0].state.name == "Crashed"
    assert target.read_limit("db").limit == 5  # type: ignore[union-attr]
    assert target.read_cache("k").value == newer  # type: ignore[union-attr]


def test_running_runs_are_left_out() -> None:
    source = MemoryStore()
    record_flow(source, [Pending(), Running()], run_id="live")
    record_task(source, [Pending(), Completed()], run_id="done", flow_run_id="live")
    source.record_log(log_entry("going on", "live"))
    target = MemoryStore()
    result = copy_store(source, target, _resign)
    assert result.counts["flow_runs"] == {"running": 1}
    assert result.counts["task_runs"] == {"running": 1}
    assert store_contents(target) == {}


def test_a_source_run_deleted_during_the_copy_stops_it_with_a_clear_error() -> None:
    source = MemoryStore()
    for i in range(3):
        record_flow(source, finished(i), run_id=f"flow-{i}")

    def prune_after_first_page(kind: str, done: int) -> None:
        if kind == "flow_runs" and done == 1:  # another process prunes what was just copied
            source.prune_runs(at(100), batch_size=1)

    with pytest.raises(StoreError, match="'flow-0' was deleted from the source") as info:
        copy_store(source, MemoryStore(), _resign, page_size=1, progress=prune_after_first_page)
    assert "Copy again with --merge" in str(info.value)
