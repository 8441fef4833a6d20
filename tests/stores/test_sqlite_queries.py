"""The SQLite store's reads for ``wf`` (``_sqlite_queries``): they stay on indexes, they show
a dead process's runs Crashed (also read-only), and schema version 4 keeps older runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from wfkit.stores.sqlite import SqliteStore
from wfkit.testing.store_conformance import at, finished, log_entry, record_flow, record_task

from ._old_files import version_1_store
from .test_owners import _dead_pid, _record_some_runs, _set_owner


@pytest.mark.parametrize("read_only", [False, True])
def test_counts_and_groups_show_a_dead_owners_task_runs_crashed(
    tmp_path: Path, read_only: bool
) -> None:
    path = tmp_path / "runs.db"
    _record_some_runs(path)  # flow run "live": task runs t-run (running) and t-done
    _set_owner(path, _dead_pid(), 0)

    with SqliteStore(path, read_only=read_only) as store:
        assert store.task_run_counts(["live"]) == {"live": {"Crashed": 1, "Completed": 1}}
        [group] = store.task_run_groups("live")
        assert group.states == {"Crashed": 1, "Completed": 1}
        assert store.flow_run_counts() == {"Crashed": 1, "Completed": 1}
        summary = store.summary()
        assert summary.flow_runs == {"Crashed": 1, "Completed": 1}
        assert summary.task_runs == {"Crashed": 1, "Completed": 1}
        assert summary.owners == ()


def test_the_reads_of_wf_stay_on_indexes(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path) as store:
        record_flow(store, finished(0), "f1", name="nightly", root_flow_run_id="f1")
        record_task(store, finished(0), "t1", flow_run_id="f1")
        store.record_log(log_entry("hello", "f1", "t1"))
    for read_only in (False, True):
        with SqliteStore(path, read_only=read_only) as store:
            conn = store._w._connection()
            seen: list[str] = []
            conn.set_trace_callback(seen.append)
            store.find_flow_runs("f")
            store.flow_runs_in_tree("f1")
            store.task_run_counts(["f1"])
            store.flow_run_counts(flow_name="etl", tags=["nightly"])
            store.flow_run_counts(since=at(0))
            store.task_run_groups("f1")
            store.logs_after("f1", after=0, last=20)
            store.logs_after("t1", min_level=40)
            store.logs_after("f1", task_name="extract")
            store.prune_runs(at(100), dry_run=True)
            conn.set_trace_callback(None)
            selects = [sql for sql in seen if sql.lstrip().startswith("SELECT")]
            assert len(selects) > 10
            for sql in selects:
                plan = " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
                scans = [
                    part for part in plan.split(" | ")
                    # (the owners tables hold a row per process: the crash check reads them)
                    # (json_each: one run's own tags, for a run the index found)
                    if part.startswith("SCAN") and "owners" not in part
                    and "json_each" not in part
                    and "CONSTANT ROW" not in part
                ]  # fmt: skip
                assert not scans, (sql, plan)


def test_version_4_adds_the_indexes_and_keeps_older_runs(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    version_1_store(path)

    with SqliteStore(path) as store:
        run = store.flow_run("old-run")
        assert run.flow_path is None
        assert [r.id for r in store.find_flow_runs("old")] == ["old-run"]
    conn = sqlite3.connect(path)
    indexes = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    conn.close()
    assert {
        "flow_runs_flow_start", "flow_runs_name", "flow_runs_root", "flow_runs_finished",
        "task_runs_summary",
    } <= indexes  # fmt: skip
    assert not {"flow_runs_flow_name", "task_runs_flow_run_id"} & indexes
