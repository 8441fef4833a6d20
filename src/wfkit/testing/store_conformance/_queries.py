"""The conformance cases for the reads ``wf`` and the web page use, and for ``prune_runs``."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from wfkit.exceptions import ConfigurationError
from wfkit.states import AwaitingRetry, Completed, Failed, Pending, Running
from wfkit.stores import RunStore
from wfkit.testing.store_conformance._filters import ids
from wfkit.testing.store_conformance._support import (
    StoreCases,
    at,
    finished,
    log_entry,
    record_flow,
    record_task,
    write_cache,
)

__all__ = ["QueryCases"]


def _tree(store: RunStore, root: str, start: float, final: Any = Completed) -> None:
    """A finished top-level run ``root`` with one child flow run, one task run in each,
    and a log line in each."""
    child, task, child_task = f"{root}-child", f"{root}-t", f"{root}-child-t"
    record_flow(store, finished(start, final), root)
    record_flow(
        store,
        finished(start + 0.5),
        child,
        parent_flow_run_id=root,
        parent_task_run_id=task,
        root_flow_run_id=root,
    )
    record_task(store, finished(start), task, flow_run_id=root)
    record_task(store, finished(start + 0.5), child_task, flow_run_id=child)
    store.record_log(log_entry("in the root", root, timestamp=at(start)))
    store.record_log(log_entry("in a task", child, child_task, timestamp=at(start)))


class QueryCases(StoreCases):
    """``find_flow_runs``, ``flow_runs_in_tree``, flow run counts, task counts and groups, ``logs_after``,
    ``summary``, ``check``, ``prune_runs``, and the recorded ``flow_path``."""

    def test_flow_path_reads_back(self, store: RunStore) -> None:
        record_flow(store, finished(0), "f1", flow_path="pipelines.etl:nightly")
        record_flow(store, finished(10), "f2")

        assert store.flow_run("f1").flow_path == "pipelines.etl:nightly"
        assert store.flow_run("f2").flow_path is None

    def test_find_flow_runs_by_id_prefix_and_name(self, store: RunStore) -> None:
        record_flow(store, finished(0), "abc-1", name="nightly")
        record_flow(store, finished(10), "abc-2", name="abc")
        record_flow(store, finished(20), "abd-3", name="nightly")
        record_flow(store, finished(30), "abc", name="other")

        assert ids(store.find_flow_runs("abc")) == ["abc", "abc-1", "abc-2"]  # exact id first
        assert ids(store.find_flow_runs("abc-2")) == ["abc-2"]
        assert ids(store.find_flow_runs("nightly")) == ["abc-1", "abd-3"]
        assert ids(store.find_flow_runs("ab", limit=2)) == ["abc-1", "abc-2"]
        assert store.find_flow_runs("zzz") == []
        assert store.find_flow_runs("") == []

    def test_flow_runs_in_tree_are_the_root_and_all_its_children(self, store: RunStore) -> None:
        _tree(store, "r1", 0)
        _tree(store, "r2", 10)
        record_flow(
            store,
            finished(1),
            "r1-grandchild",
            parent_flow_run_id="r1-child",
            root_flow_run_id="r1",
        )

        assert ids(store.flow_runs_in_tree("r1")) == ["r1", "r1-child", "r1-grandchild"]
        assert ids(store.flow_runs_in_tree("r1-child")) == []  # not a root
        assert store.flow_runs_in_tree("nope") == []

    def test_task_run_counts_by_state_per_flow_run(self, store: RunStore) -> None:
        record_flow(store, finished(0), "f1")
        record_flow(store, finished(10), "f2")
        record_flow(store, finished(20), "f3")
        record_task(store, finished(0), "t1", flow_run_id="f1")
        record_task(store, finished(0), "t2", flow_run_id="f1")
        record_task(store, finished(0, Failed), "t3", flow_run_id="f1")
        record_task(store, finished(10)[:2], "t4", flow_run_id="f2")

        assert store.task_run_counts(["f1", "f2", "f3", "nope"]) == {
            "f1": {"Completed": 2, "Failed": 1},
            "f2": {"Running": 1},
        }
        assert store.task_run_counts([]) == {}
        with pytest.raises(ConfigurationError, match="flow_run_ids='f1'"):
            store.task_run_counts("f1")

    def test_flow_run_counts_by_state_follow_the_filters(self, store: RunStore) -> None:
        record_flow(store, finished(0), "f1", flow_name="etl", tags=("nightly",))
        record_flow(store, finished(10, Failed), "f2", flow_name="etl")
        record_flow(store, finished(20), "f3", flow_name="report", tags=("nightly",))
        record_flow(store, finished(30)[:2], "f4", flow_name="etl", tags=("nightly",))

        assert store.flow_run_counts() == {"Completed": 2, "Failed": 1, "Running": 1}
        assert store.flow_run_counts(flow_name="etl") == {
            "Completed": 1,
            "Failed": 1,
            "Running": 1,
        }
        assert store.flow_run_counts(tags=["nightly"]) == {"Completed": 2, "Running": 1}
        assert store.flow_run_counts(since=at(10), until=at(30)) == {"Failed": 1, "Completed": 1}
        assert store.flow_run_counts(flow_name="nope") == {}
        with pytest.raises(ConfigurationError, match="since"):
            store.flow_run_counts(since="yesterday")  # type: ignore[arg-type]

    def test_task_run_groups_summarise_a_run_per_task(self, store: RunStore) -> None:
        record_flow(store, finished(0), "f1")
        record_task(store, finished(0), "t1", task_name="load", flow_run_id="f1")
        record_task(store, finished(0), "t2", task_name="extract", flow_run_id="f1")
        retried = [Pending(), Running(), AwaitingRetry(), Running(), Completed()]
        record_task(store, retried, "t3", task_name="extract", flow_run_id="f1", run_count=2)
        record_task(store, finished(0, Failed), "t4", task_name="load", flow_run_id="f1")
        record_task(store, finished(0), "t5", task_name="load", flow_run_id="other")

        groups = store.task_run_groups("f1")

        assert [(g.task_name, g.runs, g.states, g.attempts) for g in groups] == [
            ("load", 2, {"Completed": 1, "Failed": 1}, 2),
            ("extract", 2, {"Completed": 2}, 3),
        ]
        assert store.task_run_groups("nope") == []

    def test_logs_after_a_cursor_see_only_newer_lines(self, store: RunStore) -> None:
        store.record_log(log_entry("one", "f1"))
        store.record_log(log_entry("two", "f2"))
        first = store.logs_after()
        assert [r.message for r in first.records] == ["one", "two"]

        store.record_log(log_entry("three", "f1"))
        page = store.logs_after("f1", after=first.cursor)
        assert [r.message for r in page.records] == ["three"]
        assert page.cursor > first.cursor
        again = store.logs_after("f1", after=page.cursor)
        assert again.records == ()
        # (never backwards; it may move on with no new line: a commit-ordered cursor, as
        # PostgreSQL's, passes other transactions that committed meanwhile)
        assert again.cursor >= page.cursor

    def test_logs_after_filter_by_run_level_and_task(self, store: RunStore) -> None:
        record_task(
            store, finished(0), "t1", task_name="extract", name="extract-0", flow_run_id="f1"
        )
        record_task(store, finished(0), "t2", task_name="load", name="load-0", flow_run_id="f1")
        store.record_log(log_entry("flow info", "f1"))
        store.record_log(log_entry("extract warning", "f1", "t1", level=logging.WARNING))
        store.record_log(log_entry("load error", "f1", "t2", level=logging.ERROR))
        store.record_log(log_entry("elsewhere", "f9", level=logging.ERROR))

        def messages(**kwargs: Any) -> list[str]:
            return [r.message for r in store.logs_after(**kwargs).records]

        assert messages(run_id="f1") == ["flow info", "extract warning", "load error"]
        assert messages(run_id="t2") == ["load error"]
        assert messages(run_id="f1", min_level=logging.WARNING) == [
            "extract warning",
            "load error",
        ]
        assert messages(run_id="f1", task_name="extract") == ["extract warning"]
        assert messages(run_id="f1", task_name="load-0") == ["load error"]
        assert messages(run_id="f1", last=2) == ["extract warning", "load error"]
        assert messages(run_id="f1", last=0) == []
        # More than there are, but fewer than twice as many: all of them.
        assert messages(run_id="f1", last=5) == ["flow info", "extract warning", "load error"]
        assert messages(min_level=logging.ERROR, last=1) == ["elsewhere"]
        with pytest.raises(ConfigurationError, match="last=-1"):
            store.logs_after(last=-1)

    def test_summary_counts_runs_logs_and_live_owners(self, store: RunStore) -> None:
        record_flow(store, finished(0), "f1")
        record_flow(store, finished(10, Failed), "f2")
        record_flow(store, finished(20)[:2], "f3")
        record_task(store, finished(0), "t1", flow_run_id="f1")
        store.record_log(log_entry("hello", "f1"))
        write_cache(store, "k1")

        summary = store.summary()

        assert summary.url == store.url
        assert summary.flow_runs == {"Completed": 1, "Failed": 1, "Running": 1}
        assert summary.task_runs == {"Completed": 1}
        assert (summary.logs, summary.cache_records) == (1, 1)
        # (who the owner is differs: the process that wrote the run, or the one it names)
        assert [o.live_runs for o in summary.owners] == [1]

    def test_check_finds_nothing_wrong_in_a_store_written_normally(self, store: RunStore) -> None:
        _tree(store, "r1", 0)
        assert store.check() == []

    def test_prune_deletes_old_finished_trees_only(self, store: RunStore) -> None:
        _tree(store, "old", 0)
        _tree(store, "old-failed", 10, Failed)
        _tree(store, "new", 1000)
        record_flow(store, finished(5)[:2], "running")  # never finished: kept

        dry = store.prune_runs(at(500), dry_run=True)
        assert (dry.flow_runs, dry.task_runs, dry.states, dry.logs) == (4, 4, 24, 4)
        assert len(store.flow_runs()) == 7

        pruned = store.prune_runs(at(500), states=["completed"], batch_size=1)

        assert (pruned.flow_runs, pruned.task_runs, pruned.states, pruned.logs) == (2, 2, 12, 2)
        assert ids(store.flow_runs()) == [
            "running",
            "old-failed",
            "old-failed-child",
            "new",
            "new-child",
        ]
        assert {r.flow_run_id for r in store.task_runs()} == {
            "old-failed",
            "old-failed-child",
            "new",
            "new-child",
        }
        assert {r.flow_run_id for r in store.logs()} == {
            "old-failed",
            "old-failed-child",
            "new",
            "new-child",
        }
        assert store.check() == []
        again = store.prune_runs(at(500), states=["completed"])
        assert again.flow_runs == 0

    def test_prune_refuses_bad_arguments(self, store: RunStore) -> None:
        with pytest.raises(ConfigurationError, match="before='yesterday'"):
            store.prune_runs("yesterday")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="states='Failed'"):
            store.prune_runs(at(0), states="Failed")
        with pytest.raises(ConfigurationError, match="batch_size=0"):
            store.prune_runs(at(0), batch_size=0)
