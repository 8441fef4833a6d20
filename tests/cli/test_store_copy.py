"""``wf store copy SRC DST [--merge]``, run as a user runs it (``python -m wfkit`` in a
subprocess) between real SQLite files filled by real flow runs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wfkit.states import Completed, Crashed, Pending, Running
from wfkit.stores import RunStore
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing import harness
from wfkit.testing.store_conformance import at, flow_snapshot, log_entry, task_snapshot

from ._copy_flows import START, contents, fill, squares
from .conftest import process_env

Copy = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.db"
    fill(SqliteStore(path))
    return path


@pytest.fixture
def wf_copy() -> Copy:
    def run(*args: Any) -> subprocess.CompletedProcess[str]:
        urls = [f"sqlite:///{a}" if isinstance(a, Path) else a for a in args]
        return subprocess.run(
            [sys.executable, "-m", "wfkit", "store", "copy", *urls],
            capture_output=True,
            text=True,
            timeout=120,
            env=process_env(),
        )

    return run


def copied(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The counts of a ``--json`` copy that succeeded."""
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document["counts"]


@pytest.fixture
def opened() -> Iterator[Callable[[Path], RunStore]]:
    stores: list[RunStore] = []

    def open_(path: Path) -> RunStore:
        stores.append(SqliteStore(path))
        return stores[-1]

    yield open_
    for store in stores:
        store.close()


def test_every_kind_of_record_arrives(
    source: Path, tmp_path: Path, wf_copy: Copy, opened: Callable[[Path], RunStore]
) -> None:
    target = tmp_path / "target.db"
    counts = copied(wf_copy(source, target, "--json"))

    src, dst = contents(opened(source)), contents(opened(target))
    assert dst == src
    assert len(src["flow_runs"]) == 5 and len(src["task_runs"]) == 10  # (with `alone`)
    assert [r.flow_run_id for r in src["task_runs"]].count(None) == 1
    assert src["cache"] and src["artifacts"] and src["events"] and src["limits"]
    assert any(line.message == "squaring 2" for lines in src["logs"].values() for line in lines)
    assert counts["flow_runs"] == {"copied": 5}
    assert counts["task_runs"] == {"copied": 10}
    runs = src["flow_runs"] + src["task_runs"]
    assert counts["states"] == {"copied": sum(len(r.states) for r in runs)}
    assert counts["logs"] == {"copied": src["lines"]}
    assert counts["cache_records"] == {"copied": len(src["cache"])}
    assert counts["limits"] == {"copied": 1}


def test_the_summary_table(
    source: Path, tmp_path: Path, wf_copy: Copy, opened: Callable[[Path], RunStore]
) -> None:
    result = wf_copy(source, tmp_path / "target.db")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Copied sqlite:///{source} into sqlite:///{tmp_path / 'target.db'}"
    assert lines[1].split() == ["records", "copied"]  # (only the outcomes that happened)
    assert lines[2].split() == ["flow", "runs", "5"]
    assert lines[5].split() == ["logs", str(contents(opened(source))["lines"])]

    again = wf_copy(source, tmp_path / "target.db", "--merge")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1].split() == ["records", "copied", "identical"]
    assert again.stdout.splitlines()[2].split() == ["flow", "runs", "0", "5"]


def test_copied_cache_records_are_hits_in_the_destination(
    source: Path, tmp_path: Path, wf_copy: Copy
) -> None:
    target = tmp_path / "target.db"
    copied(wf_copy(source, target, "--json"))
    with harness(start=START, store=SqliteStore(target)) as h:
        before = {r.id for r in h.task_runs()}
        assert squares(3) == 5 + 9
        states = [r.state.name for r in h.task_runs() if r.id not in before]
    # square(0..3) hit; with the source's MACs (not re-signed) all four would be misses.
    assert sorted(states) == ["Cached"] * 4


def test_a_tampered_source_cache_record_is_not_copied(
    source: Path, tmp_path: Path, wf_copy: Copy, opened: Callable[[Path], RunStore]
) -> None:
    with sqlite3.connect(source) as conn:
        key, value = conn.execute("SELECT key, value FROM cache ORDER BY key LIMIT 1").fetchone()
        conn.execute("UPDATE cache SET value = ? WHERE key = ?", (value[:-1] + b"!", key))
    conn.close()
    target = tmp_path / "target.db"
    counts = copied(wf_copy(source, target, "--json"))
    kept = [k for k in opened(source).cache_keys() if k != key]
    assert counts["cache_records"] == {"copied": len(kept), "unauthentic": 1}
    assert opened(target).cache_keys() == kept


def test_copying_twice_changes_nothing(
    source: Path, tmp_path: Path, wf_copy: Copy, opened: Callable[[Path], RunStore]
) -> None:
    target = tmp_path / "target.db"
    first = copied(wf_copy(source, target, "--json"))
    after_first = contents(opened(target))
    second = copied(wf_copy(source, target, "--merge", "--json"))
    assert contents(opened(target)) == after_first
    assert {kind: sum(n.values()) for kind, n in second.items() if kind != "states"} == {
        kind: sum(n.values()) for kind, n in first.items() if kind != "states"
    }
    assert all(set(n) <= {"identical"} for n in second.values()), second


def test_a_store_that_is_not_empty_is_refused_without_merge(
    source: Path, store_copy: Path, wf_copy: Copy, opened: Callable[[Path], RunStore]
) -> None:
    before = contents(opened(store_copy))
    result = wf_copy(source, store_copy)
    assert result.returncode == 2, result.stderr
    assert f"DST 'sqlite:///{store_copy}' is not empty (" in result.stderr
    assert "pass --merge" in result.stderr and "Traceback" not in result.stderr
    assert contents(opened(store_copy)) == before


def test_merge_keeps_the_runs_the_destination_had(
    source: Path, store_copy: Path, wf_copy: Copy, opened: Callable[[Path], RunStore]
) -> None:
    had = contents(opened(store_copy))
    counts = copied(wf_copy(source, store_copy, "--merge", "--json"))
    assert counts["flow_runs"] == {"copied": 5}
    now = contents(opened(store_copy))
    src = contents(opened(source))
    assert now["flow_runs"] == had["flow_runs"] + src["flow_runs"]
    assert now["task_runs"] == had["task_runs"] + src["task_runs"]
    assert now["lines"] == had["lines"] + src["lines"]


def test_the_source_file_is_untouched(source: Path, tmp_path: Path, wf_copy: Copy) -> None:
    files = [source, source.with_name("source.db.key")]
    before = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    copied(wf_copy(source, tmp_path / "target.db", "--json"))
    assert [hashlib.sha256(f.read_bytes()).hexdigest() for f in files] == before
    # (A reader of a WAL database may leave SQLite's empty -wal and its -shm index behind.)
    wal = source.with_name("source.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_runs_still_going_on_are_left_for_a_later_merge(
    tmp_path: Path, wf_copy: Copy, opened: Callable[[Path], RunStore]
) -> None:
    # This process records the run, so its owner is alive while the copy runs.
    src = opened(tmp_path / "source.db")
    start = [Pending(), Running()]
    for state in start:
        src.record_flow_run(flow_snapshot(state, "live"))
        src.record_task_run(task_snapshot(state, "live-task", flow_run_id="live"))
    src.record_task_run(task_snapshot(Completed(), "done-task", flow_run_id="live"))
    src.flush()
    target = tmp_path / "target.db"
    counts = copied(wf_copy(tmp_path / "source.db", target, "--json"))
    assert counts["flow_runs"] == {"running": 1}
    assert counts["task_runs"] == {"running": 2}
    assert opened(target).flow_runs() == []

    src.record_flow_run(flow_snapshot(Completed(), "live"))
    src.record_task_run(task_snapshot(Completed(), "live-task", flow_run_id="live"))
    src.flush()
    counts = copied(wf_copy(tmp_path / "source.db", target, "--merge", "--json"))
    assert counts["flow_runs"] == {"copied": 1} and counts["task_runs"] == {"copied": 2}
    assert opened(target).flow_run("live").state_names == ["Pending", "Running", "Completed"]


def test_merge_adds_the_states_a_run_lacks_and_keeps_a_crashed_run_crashed(
    source: Path, tmp_path: Path, wf_copy: Copy, opened: Callable[[Path], RunStore]
) -> None:
    src = opened(source)
    finished = next(r for r in src.flow_runs() if r.name == "squares-3")
    failed = next(r for r in src.flow_runs() if r.name == "broken")
    dst = opened(tmp_path / "target.db")
    for state in finished.states[:2]:  # the start of its history, from a live owner
        dst.record_flow_run(flow_snapshot(state, finished.id, name=finished.name))
    for state in [*failed.states[:2], Crashed()]:  # (its process was judged dead)
        dst.record_flow_run(flow_snapshot(state, failed.id, name=failed.name))
    dst.flush()

    result = wf_copy(source, tmp_path / "target.db", "--merge", "--json")
    counts = copied(result)
    assert counts["flow_runs"] == {"copied": 3, "updated": 1, "conflicts": 1}
    assert json.loads(result.stdout)["conflicts"] == [f"flow run {failed.id}"]
    after = opened(tmp_path / "target.db")
    assert after.flow_run(finished.id).states == finished.states
    assert after.flow_run(failed.id).state.name == "Crashed"
    assert after.logs(failed.id) == []  # (a conflicting run's lines stay as they were)


def _many_runs(path: Path, n: int) -> Path:
    """A store of ``n`` finished flow runs, each with 2 kB of parameters and a log line."""
    store = SqliteStore(path)
    for i in range(n):
        run_id = f"run-{i:06d}"
        for state in (
            Pending(timestamp=at(i)),
            Running(timestamp=at(i)),
            Completed(timestamp=at(i)),
        ):
            store.record_flow_run(flow_snapshot(state, run_id, parameters={"pad": "x" * 2000}))
        store.record_log(log_entry("y" * 500, run_id, timestamp=at(i)))
    store.close()
    return path


_PEAK = """
import resource, sys
from wfkit.cli import main
try:
    main(sys.argv[1:])
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def test_memory_stays_bounded_however_many_runs_a_store_holds(tmp_path: Path) -> None:
    def peak_kb(n: int) -> int:
        source = _many_runs(tmp_path / f"source-{n}.db", n)
        done = subprocess.run(
            [sys.executable, "-c", _PEAK, "store", "copy", f"sqlite:///{source}",
             f"sqlite:///{tmp_path / f'target-{n}.db'}", "--json"],
            capture_output=True, text=True, timeout=300, env=process_env(),
        )  # fmt: skip
        assert json.loads(done.stdout)["counts"]["flow_runs"] == {"copied": n}, done.stderr
        return int(done.stderr.split()[-1])

    # Ten times the runs (25 MB more of them): read in one page, they took 24 MB more
    # memory at the peak; a page at a time, about the same peak (measured: +1.4 MB).
    assert peak_kb(10_000) - peak_kb(1_000) < 10_000


def test_bad_input(source: Path, store_copy: Path, tmp_path: Path, wf_copy: Copy) -> None:
    def refused(code: int, *args: Any, says: list[str]) -> None:
        result = wf_copy(*args)
        assert result.returncode == code, (result.stdout, result.stderr)
        assert result.stdout == "" and "Traceback" not in result.stderr
        for phrase in says:
            assert phrase in result.stderr, result.stderr

    target = tmp_path / "target.db"
    refused(2, "mysql://db/runs", target, says=["SRC 'mysql://db/runs'", "scheme"])
    refused(2, source, "nope://x", says=["DST 'nope://x'", "scheme"])
    refused(1, tmp_path / "missing.db", target, says=["SRC ", "There is no run store"])
    assert not (tmp_path / "missing.db").exists() and not target.exists()
    refused(2, source, "memory://", says=["DST 'memory://'", "memory store"])
    refused(2, source, f"sqlite:///{source}?mode=rw", says=["SRC and DST are the same store"])
    refused(2, source, source.parent / "." / "source.db", says=["same store"])
    refused(2, source, f"sqlite:///{store_copy}?mode=ro", says=["is opened read-only"])
    with sqlite3.connect(store_copy) as conn:
        conn.execute("UPDATE wfkit_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    refused(1, source, store_copy, says=["DST ", "schema version 99", "Upgrade wfkit"])
    refused(2, source, says=["Missing argument 'DST'"])
