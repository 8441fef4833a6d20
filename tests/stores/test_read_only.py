"""Reading a SQLite store read-only (``?mode=ro``, ``open_store(url, read_only=True)``): the
file is never written, a dead process's runs are shown Crashed without being recorded so,
and every attempt to write is refused with a clear error."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wfkit.exceptions import ConfigurationError, StoreError
from wfkit.states import Pending, Running
from wfkit.stores import open_store
from wfkit.stores._sqlite_schema import _MIGRATIONS
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing.store_conformance import at, record_flow

from .test_owners import CRASHED, _dead_pid, _names, _record_some_runs, _set_owner


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _crashed_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return sum(
            conn.execute(f"SELECT count(*) FROM {t} WHERE type = 'CRASHED'").fetchone()[0]
            for t in ("flow_run_states", "task_run_states")
        )
    finally:
        conn.close()


@pytest.fixture
def dead_store(tmp_path: Path) -> Path:
    """A store whose running flow run and task run belong to a dead process."""
    path = tmp_path / "runs.db"
    _record_some_runs(path)
    _set_owner(path, _dead_pid(), 0)
    return path


def test_a_read_only_store_shows_a_dead_owners_runs_crashed_without_writing(
    dead_store: Path,
) -> None:
    before = _digest(dead_store)
    with SqliteStore(dead_store, read_only=True) as store:
        assert _names(store) == CRASHED
        first = store.flow_run("live").state
        assert first.is_crashed() and "no longer exists" in (first.message or "")
        assert store.flow_run("live").state == first  # the same moment on every read
        assert [r.id for r in store.flow_runs(state="crashed")] == ["live"]
        assert [r.id for r in store.flow_runs(state="Running")] == []
        crashed_task = store.task_runs(flow_run_id="live")[0]
        assert crashed_task.state.is_crashed() and crashed_task.end_time is not None
    assert _digest(dead_store) == before
    assert _crashed_rows(dead_store) == 0  # nothing was recorded...
    SqliteStore(dead_store).close()
    assert _crashed_rows(dead_store) == 2  # ...until a writer opened it


def test_a_reader_sees_the_crash_once_a_writer_has_recorded_it_without_doubling_it(
    dead_store: Path,
) -> None:
    with SqliteStore(dead_store, read_only=True) as reader:
        assert _names(reader) == CRASHED
        SqliteStore(dead_store).close()  # records Crashed
        assert _names(reader) == CRASHED  # one Crashed state, not two


def test_a_read_only_store_leaves_the_runs_of_a_live_writer_alone(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path) as writer, SqliteStore(path, read_only=True) as reader:
        record_flow(writer, [Pending(timestamp=at(0)), Running(timestamp=at(1))], "mine")
        writer.flush()
        assert reader.flow_run("mine").state_names == ["Pending", "Running"]


def test_every_write_to_a_read_only_store_is_refused_naming_the_mode(dead_store: Path) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with open_store(f"sqlite:///{dead_store}?mode=ro") as store:
        attempts = [
            lambda: record_flow(store, [Pending(timestamp=at(0))], "new"),
            lambda: store.write_cache("k", b"v", "json", None, "t", now),
            lambda: store.delete_cache("k"),
            lambda: store.prune_cache(now),
        ]
        for attempt in attempts:
            with pytest.raises(StoreError, match=r"opened read-only \(\?mode=ro\)"):
                attempt()
        assert store.read_cache("k") is None


def test_a_read_only_store_makes_no_secret_key(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    SqliteStore(path).close()
    key = path.with_name("runs.db.key")
    key.unlink(missing_ok=True)
    with SqliteStore(path, read_only=True) as store:
        assert len(store.cache_secret()) == 32
    assert not key.exists()


def test_open_store_read_only_adds_the_mode_to_the_url(dead_store: Path) -> None:
    store = open_store(f"sqlite:///{dead_store}?mode=rw", read_only=True)
    try:
        assert isinstance(store, SqliteStore) and store.read_only
        assert store.url == f"sqlite:///{dead_store}?mode=ro"
    finally:
        store.close()


def test_a_read_only_memory_store_is_the_configured_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from wfkit import stores
    from wfkit.settings import reload_settings

    monkeypatch.setenv("WFKIT_STORE", "memory://")
    monkeypatch.setattr(stores, "_configured", None)
    reload_settings()  # (settings are cached: another test may have read them)
    try:
        assert open_store(read_only=True) is stores.configured_store()
    finally:
        monkeypatch.undo()
        reload_settings()


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here.db"
    with pytest.raises(StoreError, match="There is no run store at .*nothing-here.db"):
        SqliteStore(path, read_only=True)
    assert not path.exists()


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database")
    with pytest.raises(StoreError, match="is not a SQLite database"):
        SqliteStore(path, read_only=True)
    assert path.read_text() == "not a database"


def test_an_older_schema_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO wfkit_meta VALUES ('schema_version', '1')")
    conn.close()
    before = _digest(path)
    with pytest.raises(StoreError, match="schema version 1.*Open it once for writing"):
        SqliteStore(path, read_only=True)
    assert _digest(path) == before


@pytest.mark.parametrize("query", ["mode=rwc", "cache=shared", "mode=ro&x=1"])
def test_an_unknown_url_query_is_refused_naming_it(tmp_path: Path, query: str) -> None:
    with pytest.raises(ConfigurationError, match=f"has the query '{query}'"):
        open_store(f"sqlite:///{tmp_path}/runs.db?{query}")


def test_the_heartbeat_interval_setting_reaches_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wfkit.settings import reload_settings

    monkeypatch.setenv("WFKIT_HEARTBEAT_INTERVAL", "2.5")
    reload_settings()
    try:
        with SqliteStore(tmp_path / "runs.db") as store:
            assert store._w.heartbeat_interval == 2.5
        monkeypatch.setenv("WFKIT_HEARTBEAT_INTERVAL", "often")
        with pytest.raises(ConfigurationError, match="WFKIT_HEARTBEAT_INTERVAL='often'"):
            reload_settings()
    finally:
        monkeypatch.delenv("WFKIT_HEARTBEAT_INTERVAL")
        reload_settings()


def test_read_only_reads_stay_on_the_indexes(dead_store: Path) -> None:
    from wfkit.stores._sqlite_readonly import crashed_states

    with SqliteStore(dead_store, read_only=True) as store:
        conn = store._w._connection()
        queries = [
            "SELECT seq FROM flow_runs WHERE id = ?",
            "SELECT seq FROM task_runs WHERE flow_run_id = ?",
            "SELECT run_seq FROM task_run_states WHERE run_seq IN "
            "(SELECT seq FROM task_runs WHERE flow_run_id = ?)",
            crashed_states("task_run", "WHERE flow_run_id = ?"),
        ]
        for sql in queries:
            plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", ("x",)))
            assert "SCAN" not in plan, (sql, plan)


def test_read_only_leaves_an_unknown_schemes_url_as_given() -> None:
    with pytest.raises(ConfigurationError, match=r"store url='foo://x' has a scheme"):
        open_store("foo://x", read_only=True)
