"""What only the SQLite store has to get right: its file, its schema, concurrency, durability."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import wfkit.stores
from wfkit.exceptions import ConfigurationError, StoreError
from wfkit.states import Completed, Pending, Running
from wfkit.stores import open_store
from wfkit.stores.sqlite import SCHEMA_VERSION, SqliteStore
from wfkit.testing.store_conformance import at, log_entry, record_flow, record_task, task_snapshot

SRC = Path(wfkit.stores.__file__).resolve().parents[2]


def _three_states(i: int = 0) -> list:
    return [
        Pending(timestamp=at(i)),
        Running(timestamp=at(i + 0.5)),
        Completed(timestamp=at(i + 1)),
    ]


def _run_python(code: str, *args: str, wait: bool = True) -> subprocess.Popen[str]:
    """Run ``code`` in a fresh interpreter that imports this checkout's wfkit."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if wait:
        _check(proc)
    return proc


def _check(proc: subprocess.Popen[str]) -> None:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"child failed:\n{out}\n{err}"


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# opening --------------------------------------------------------------------------------------
def test_open_store_opens_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}")  # four slashes: absolute path
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel/runs.db")
    try:
        assert isinstance(absolute, SqliteStore) and isinstance(relative, SqliteStore)
        assert absolute.url == f"sqlite:///{tmp_path / 'abs.db'}"
        assert absolute.path == tmp_path / "abs.db" and absolute.path.exists()
        assert relative.url == "sqlite:///rel/runs.db"
        assert (tmp_path / "rel" / "runs.db").exists()
    finally:
        absolute.close()
        relative.close()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite:", "sqlite:////", "sqlite:///:memory:"]
)
def test_a_url_without_a_file_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        open_store(url)
    assert repr(url) in str(info.value)
    assert "sqlite:///./wfkit.db" in str(info.value)
    with pytest.raises(ConfigurationError):
        SqliteStore.from_url(url)


def test_the_file_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "runs.db"
    with SqliteStore(path) as store:
        record_task(store, _three_states())
        store.flush()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_journal_is_wal(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "runs.db"):
        conn = sqlite3.connect(tmp_path / "runs.db")
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        SqliteStore(tmp_path)


# refusing files -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [b"this is not a database" * 100, b"SQLite format 3\x00" + bytes(range(256)) * 16],
    ids=["text", "sqlite-header-then-garbage"],
)
@pytest.mark.parametrize("opener", [SqliteStore, lambda p: open_store(f"sqlite:///{p}")])
def test_a_file_that_is_not_a_store_is_refused_and_left_alone(
    tmp_path: Path, content: bytes, opener
) -> None:
    path = tmp_path / "precious.db"
    path.write_bytes(content)
    before = _files(tmp_path)

    with pytest.raises(StoreError) as info:
        opener(path)

    assert str(path) in str(info.value)
    assert "not a wfkit store" in str(info.value)
    assert _files(tmp_path) == before


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path) as store:
        record_task(store, _three_states())
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE wfkit_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    before = _files(tmp_path)

    with pytest.raises(StoreError) as info:
        SqliteStore(path)

    message = str(info.value)
    assert str(path) in message and "99" in message and str(SCHEMA_VERSION) in message
    assert "upgrade wfkit" in message.lower()
    assert _files(tmp_path) == before


def test_another_programs_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    conn.close()
    before = _files(tmp_path)

    with pytest.raises(StoreError, match="users"):
        SqliteStore(path)

    assert _files(tmp_path) == before


def test_an_empty_sqlite_database_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE scratch (x)")
    conn.execute("DROP TABLE scratch")
    conn.close()

    with SqliteStore(path) as store:
        record_task(store, _three_states())
        assert store.info()["task_runs"] == 1


# durability and visibility --------------------------------------------------------------------
def test_runs_persist_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path) as store:
        record_flow(store, _three_states(), "f1")
        record_task(store, _three_states(), "t1", flow_run_id="f1")
        store.record_log(log_entry("hi", "f1", "t1"))

    with SqliteStore(path) as again:
        assert again.flow_run("f1").state_names == ["Pending", "Running", "Completed"]
        assert [t.id for t in again.task_runs(flow_run_id="f1")] == ["t1"]
        assert [log.message for log in again.logs("t1")] == ["hi"]
        info = again.info()
    assert (info["flow_runs"], info["task_runs"], info["states"], info["logs"]) == (1, 1, 6, 1)
    assert info["schema_version"] == SCHEMA_VERSION and info["path"] == str(path)
    assert info["size_bytes"] > 0


def test_flushed_runs_are_visible_to_another_store_on_the_file(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "runs.db") as writer, SqliteStore(tmp_path / "runs.db") as reader:
        record_task(writer, _three_states(), "t1")
        writer.flush()
        assert [t.state_names for t in reader.task_runs()] == [["Pending", "Running", "Completed"]]


def test_a_big_buffer_flushes_itself(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "runs.db") as writer, SqliteStore(tmp_path / "runs.db") as reader:
        for i in range(2000):
            record_task(writer, _three_states(), f"t{i}")
        assert reader.info()["states"] > 0  # written without a flush or a read on the writer
        writer.flush()
        assert reader.info()["states"] == 6000


@pytest.mark.parametrize("ending", ["exit", "drop the store"])
def test_runs_recorded_just_before_the_process_ends_are_kept(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "runs.db"
    _run_python(
        """
        import gc, sys
        from datetime import UTC, datetime, timedelta
        from wfkit.states import Completed, Pending, Running
        from wfkit.stores import LogEntry, TaskRunSnapshot, open_store

        store = open_store(f"sqlite:///{sys.argv[1]}")
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        for i in range(1000):
            for state in (Pending, Running, Completed):
                store.record_task_run(TaskRunSnapshot(
                    f"t{i}", f"t{i}", "work", "f1", {"i": i}, (), None, (), 1,
                    state(timestamp=t0 + timedelta(seconds=i)), "host", 1))
            store.record_log(LogEntry("f1", f"t{i}", 20, "x", f"line {i}", t0))
        if sys.argv[2] == "drop the store":
            del store
            gc.collect()
            print("dropped")
        """,
        str(path),
        ending,
    )

    with SqliteStore(path) as store:
        info = store.info()
        assert (info["task_runs"], info["states"], info["logs"]) == (1000, 3000, 1000)
        assert store.task_runs()[-1].parameters == {"i": 999}


def test_a_failed_flush_keeps_the_runs_for_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(path, timeout=0.05)
    record_task(store, _three_states(), "t1")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock for too long
    try:
        with pytest.raises(StoreError, match="buffered") as info:
            store.flush()
        assert str(path) in str(info.value)
        record_task(store, _three_states(5)[:1], "t2")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert [t.id for t in store.task_runs()] == ["t1", "t2"]
    assert store.task_runs()[0].state_names == ["Pending", "Running", "Completed"]
    store.close()


def test_a_closed_store_refuses_new_runs(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.record_task_run(task_snapshot(Pending(timestamp=at(0))))
    with pytest.raises(StoreError, match="closed"):
        store.task_runs()


# concurrency ---------------------------------------------------------------------------------
def test_many_threads_share_one_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(200):
                record_task(store, _three_states(i), f"t{n}-{i}", task_name=f"worker-{n}")
                store.record_log(log_entry(f"{n}-{i}", "f1", f"t{n}-{i}"))
                if i % 50 == 0:
                    store.task_runs(task_name=f"worker-{n}")  # reads interleave with writes
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.flush()

    assert errors == []
    runs = store.task_runs()
    assert len(runs) == 1600 and len({r.id for r in runs}) == 1600
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in runs)
    assert store.info()["states"] == 4800 and len(store.logs()) == 1600
    store.close()


def test_several_processes_write_one_file(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "runs.db"  # the processes race to create it, too
    writer = """
        import sys
        from datetime import UTC, datetime, timedelta
        from wfkit.states import Completed, Pending, Running
        from wfkit.stores import FlowRunSnapshot, TaskRunSnapshot
        from wfkit.stores.sqlite import SqliteStore

        store = SqliteStore(sys.argv[1])
        me = sys.argv[2]
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        flow = FlowRunSnapshot(me, me, "multi", None, {}, (), None, None, me, 1,
                               Running(timestamp=t0), "host", 1)
        store.record_flow_run(flow)
        for i in range(300):
            for state in (Pending, Running, Completed):
                store.record_task_run(TaskRunSnapshot(
                    f"{me}-{i}", "t", "work", me, {}, (), None, (), 1,
                    state(timestamp=t0 + timedelta(seconds=i)), "host", 1))
            if i % 100 == 0:
                store.flush()
        store.record_flow_run(flow._replace(state=Completed(timestamp=t0)))
        store.close()
        """
    procs = [_run_python(writer, str(path), f"p{n}", wait=False) for n in range(4)]
    for proc in procs:
        _check(proc)

    with SqliteStore(path) as store:
        assert sorted(r.id for r in store.flow_runs()) == ["p0", "p1", "p2", "p3"]
        assert all(r.state_names == ["Running", "Completed"] for r in store.flow_runs())
        for n in range(4):
            runs = store.task_runs(flow_run_id=f"p{n}")
            assert [r.id for r in runs] == [f"p{n}-{i}" for i in range(300)]
            assert all(len(r.states) == 3 for r in runs)


def _record_in_forked_child(store: SqliteStore) -> None:
    record_task(store, _three_states(), "from-child")
    store.flush()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_write_its_parents_buffer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    record_task(store, _three_states(), "from-parent")  # buffered, not yet written
    child = multiprocessing.get_context("fork").Process(
        target=_record_in_forked_child, args=(store,)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0

    runs = {r.id: r.state_names for r in store.task_runs()}
    assert runs == {
        "from-parent": ["Pending", "Running", "Completed"],
        "from-child": ["Pending", "Running", "Completed"],
    }
    store.close()


def test_rows_past_the_commit_interval_are_flushed_by_the_recording_call(tmp_path: Path) -> None:
    # Recording checks the age of the oldest buffered row (real time) and flushes on the
    # caller's thread once it reaches the commit interval: with 0, every row at once.
    # (tests/stores/test_durability.py covers the interval itself, and the idle committer.)
    path = tmp_path / "runs.db"
    store = SqliteStore(path, commit_interval=0)
    reader = sqlite3.connect(path)
    record_task(store, _three_states(), "t1")
    assert reader.execute("SELECT count(*) FROM task_runs").fetchone() == (1,)
    record_task(store, _three_states(5)[:1], "t2")
    assert reader.execute("SELECT count(*) FROM task_runs").fetchone() == (2,)
    reader.close()
    store.close()


def test_a_failing_automatic_flush_never_fails_the_recording(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(path, timeout=0.05, commit_interval=0)
    record_task(store, _three_states(), "t1")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        record_task(store, _three_states(5)[:1], "t2")  # due for a flush, which fails
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert "automatic flush of the run store failed" in caplog.text
    assert [t.id for t in store.task_runs()] == ["t1", "t2"]
    store.close()


class _FlushBeforeFirstAcquire:
    """Stands in for the store's buffer lock and runs a flush just before the first time a
    recording call acquires it: the interleaving in which another thread's flush swaps the
    buffers between a recording call starting and taking the lock."""

    def __init__(self, store: SqliteStore) -> None:
        self._store, self._inner, self._armed = store, threading.Lock(), True

    def __enter__(self) -> None:
        if self._armed:
            self._armed = False
            self._store.flush()  # takes this lock itself (now disarmed) to swap the buffers
        self._inner.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._inner.release()


def test_a_flush_between_recording_and_locking_loses_no_state(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    states = _three_states()
    store.record_task_run(task_snapshot(states[0], "t1"))
    store._w.lock = _FlushBeforeFirstAcquire(store)  # type: ignore[assignment]
    store.record_task_run(task_snapshot(states[1], "t1"))
    store.record_task_run(task_snapshot(states[2], "t1"))

    assert store.task_runs()[0].state_names == ["Pending", "Running", "Completed"]
    store.close()


def test_a_flush_of_many_runs_keeps_every_run_and_history_in_order(tmp_path: Path) -> None:
    # Rows go to SQLite in multi-row statements of 64; 150 runs leave a partial last group.
    with SqliteStore(tmp_path / "runs.db") as store:
        for i in range(150):
            record_task(store, _three_states(i), f"t{i:03d}", parameters={"i": i})
        store.flush()
        runs = store.task_runs()
    assert [r.id for r in runs] == [f"t{i:03d}" for i in range(150)]
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in runs)
    assert [r.parameters for r in runs] == [{"i": i} for i in range(150)]
    assert [r.start_time for r in runs] == [at(i + 0.5) for i in range(150)]


def test_one_value_sqlite_refuses_does_not_cost_the_other_runs(tmp_path: Path) -> None:
    # A lone surrogate cannot be stored as text: the batch is written again with it cleaned.
    with SqliteStore(tmp_path / "runs.db") as store:
        for i in range(100):
            name = "bad-\ud800" if i == 70 else f"name-{i}"
            record_task(store, _three_states(i), f"t{i:03d}", name=name)
        store.flush()
        runs = store.task_runs()
    assert len(runs) == 100 and all(len(r.states) == 3 for r in runs)
    assert runs[70].name == "bad-?" and runs[71].name == "name-71"


def test_absent_values_are_stored_as_sql_null(tmp_path: Path) -> None:
    # The row encoding binds NULL as a NaN for the columns that are mostly NULL (faster than
    # binding None); SQLite must store those as NULL, not as a REAL, and read them as None.
    path = tmp_path / "runs.db"
    with SqliteStore(path) as store:
        record_flow(store, [Pending(timestamp=at(0))], "f1", flow_version=None)
        record_task(
            store,
            [Pending(timestamp=at(0)), Running(timestamp=at(1)), Completed(timestamp=at(2))],
            "t1",
            flow_run_id=None,
            cache_key=None,
        )
        store.record_log(log_entry("hello", flow_run_id="f1", task_run_id=None))
        store.flush()
        (flow_run,) = store.flow_runs()
        (task_run,) = store.task_runs()
        (log,) = store.logs()
    assert flow_run.flow_version is None and flow_run.parent_flow_run_id is None
    assert flow_run.start_time is None  # never running
    assert task_run.flow_run_id is None and task_run.cache_key is None
    assert all(s.message is None for s in task_run.states)
    assert log.task_run_id is None
    conn = sqlite3.connect(path)
    try:
        kinds = [
            conn.execute(sql).fetchall()
            for sql in (
                "SELECT typeof(flow_version), typeof(parent_flow_run_id),"
                " typeof(parent_task_run_id), typeof(start_us) FROM flow_runs",
                "SELECT typeof(flow_run_id), typeof(cache_key) FROM task_runs",
                "SELECT DISTINCT typeof(message) FROM task_run_states",
                "SELECT typeof(task_run_id) FROM logs",
            )
        ]
    finally:
        conn.close()
    assert kinds == [
        [("null", "null", "null", "null")],
        [("null", "null")],
        [("null",)],
        [("null",)],
    ]
