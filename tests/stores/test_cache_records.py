"""Cache records in the SQLite store: what only it has to get right (other processes see
records at once; records kept in memory follow the file; older files migrate). The cases
every store passes are in wfkit.testing.store_conformance."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import wfkit.stores
from wfkit.exceptions import StoreError
from wfkit.states import Pending
from wfkit.stores import _sqlite_schema as schema
from wfkit.stores.sqlite import SCHEMA_VERSION, SqliteStore
from wfkit.testing.store_conformance import T0, at, record_flow, write_cache

from ._old_files import version_1_store

SRC = Path(wfkit.stores.__file__).resolve().parents[2]


# SQLite only --------------------------------------------------------------------------------
def test_a_record_is_visible_to_another_store_on_the_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path) as writer, SqliteStore(path) as reader:
        written = write_cache(writer, "k1", b"payload")  # no flush
        assert reader.read_cache("k1") == written
        assert reader.delete_cache("k1") is True
        assert writer.read_cache("k1") is None


def test_a_record_read_once_follows_changes_made_through_another_store(tmp_path: Path) -> None:
    # Records this store read are served from memory only while no other connection has
    # committed to the file: every change made elsewhere is seen at the next read.
    path = tmp_path / "runs.db"
    with SqliteStore(path) as reader, SqliteStore(path) as other:
        write_cache(reader, "k1", b"mine")
        write_cache(reader, "k2", b"untouched")
        assert reader.read_cache("k1").value == b"mine"  # type: ignore[union-attr]
        assert reader.read_cache("k2").value == b"untouched"  # type: ignore[union-attr]

        replaced = write_cache(other, "k1", b"theirs", expires_at=at(5), created_at=at(1))
        assert reader.read_cache("k1") == replaced
        assert other.delete_cache("k1") is True
        assert reader.read_cache("k1") is None
        assert other.prune_cache(at(10)) == 0
        write_cache(other, "k1", b"back", expires_at=at(5))
        assert reader.read_cache("k1").value == b"back"  # type: ignore[union-attr]
        assert other.prune_cache(at(10)) == 1
        assert reader.read_cache("k1") is None
        assert reader.read_cache("k2").value == b"untouched"  # type: ignore[union-attr]


def _change_records_in_a_process(path: Path, *actions: str) -> None:
    """Run ``actions`` (Python statements using ``store``) in a new process on ``path``."""
    code = f"""
        import sys
        from datetime import UTC, datetime
        from wfkit.stores import open_store

        T = datetime(2024, 1, 1, tzinfo=UTC)
        store = open_store(f"sqlite:///{{sys.argv[1]}}")
        {"; ".join(actions)}
        """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(path)], env=env, check=True, timeout=120
    )


def test_a_record_read_once_follows_changes_made_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path) as store:
        write_cache(store, "k1", b"mine")
        assert store.read_cache("k1").value == b"mine"  # type: ignore[union-attr]

        _change_records_in_a_process(
            path, "store.write_cache('k1', b'theirs', 'json', None, 'other', T)"
        )
        record = store.read_cache("k1")
        assert record is not None
        assert (record.value, record.serializer, record.task_name) == (b"theirs", "json", "other")

        _change_records_in_a_process(path, "store.delete_cache('k1')")
        assert store.read_cache("k1") is None


def test_a_record_read_once_follows_changes_to_runs_and_records_alike(tmp_path: Path) -> None:
    # Another connection committing only run states still makes the kept records be read
    # again (harmless); the records' own changes after that are seen too.
    path = tmp_path / "runs.db"
    with SqliteStore(path) as reader, SqliteStore(path) as other:
        written = write_cache(reader, "k1", b"mine")
        assert reader.read_cache("k1") == written
        record_flow(other, [Pending(timestamp=at(0))], "f1")
        other.flush()
        assert reader.read_cache("k1") == written
        other.delete_cache("k1")
        assert reader.read_cache("k1") is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_records_read_before_a_fork_follow_the_childs_changes(tmp_path: Path) -> None:
    import multiprocessing

    path = tmp_path / "runs.db"
    store = SqliteStore(path)
    try:
        write_cache(store, "k1", b"parent")
        assert store.read_cache("k1").value == b"parent"  # type: ignore[union-attr]
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_use_inherited_store, args=(store, queue))
        child.start()
        child.join(timeout=120)
        assert child.exitcode == 0
        assert queue.get(timeout=5) == (b"parent", None)  # the child read, then deleted it
        assert store.read_cache("k1") is None
    finally:
        store.close()


def _use_inherited_store(store: SqliteStore, result: Any) -> None:
    before = store.read_cache("k1")
    store.delete_cache("k1")
    result.put((before.value if before else None, store.read_cache("k1")))


def test_records_kept_in_memory_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wfkit.stores import _sqlite_cache

    monkeypatch.setattr(_sqlite_cache, "_MAX_RECORDS", 8)
    monkeypatch.setattr(_sqlite_cache, "_MAX_BYTES", 100)
    monkeypatch.setattr(_sqlite_cache, "_MAX_VALUE", 40)
    with SqliteStore(tmp_path / "runs.db") as store:
        written = [write_cache(store, f"k{i}", bytes([i]) * (i % 50)) for i in range(30)]
        for _ in range(2):
            assert [store.read_cache(f"k{i}") for i in range(30)] == written
        kept = store._kept._records
        assert 0 < len(kept) <= 8
        assert sum(len(r.value) for r in kept.values()) <= 100
        assert all(len(r.value) <= 40 for r in kept.values())


def test_a_cache_write_does_not_flush_buffered_runs(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path) as writer, SqliteStore(path) as reader:
        record_flow(writer, [Pending(timestamp=at(0))], "f1")
        write_cache(writer, "k1")
        assert reader.flow_runs() == []  # the run is still buffered
        writer.flush()
        assert [r.id for r in reader.flow_runs()] == ["f1"]


def test_records_persist_and_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path) as store:
        written = write_cache(store, "k1", expires_at=at(60))
        write_cache(store, "k2")
    with SqliteStore(path) as again:
        assert again.read_cache("k1") == written
        assert again.info()["cache_records"] == 2


def test_a_record_written_by_another_process_is_read(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    code = """
        import sys
        from datetime import UTC, datetime
        from wfkit.stores import open_store

        store = open_store(f"sqlite:///{sys.argv[1]}")
        store.write_cache("from-child", b"\\x00result", "pickle", None, "work",
                          datetime(2024, 1, 1, tzinfo=UTC))
        import os
        os._exit(0)  # no close, no flush: the record must already be committed
        """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(path)], env=env, check=True, timeout=120
    )

    with SqliteStore(path) as store:
        record = store.read_cache("from-child")
    assert record is not None and record.value == b"\x00result" and record.task_name == "work"


def test_a_closed_store_refuses_cache_operations(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.read_cache("k1")
    with pytest.raises(StoreError, match="closed"):
        write_cache(store, "k1")


def test_a_locked_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(path, timeout=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock for too long
    try:
        with pytest.raises(StoreError, match="write a cache record") as info:
            write_cache(store, "k1")
        assert str(path) in str(info.value)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    write_cache(store, "k1")  # works again once the lock is released
    assert store.read_cache("k1") is not None
    store.close()


def _schema_of(path: Path) -> tuple[str, set[str]]:
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("SELECT value FROM wfkit_meta WHERE key = 'schema_version'")
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return version.fetchone()[0], {name for (name,) in tables}
    finally:
        conn.close()


def test_a_version_1_file_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    version_1_store(path)
    assert _schema_of(path)[0] == "1" and "cache" not in _schema_of(path)[1]

    with SqliteStore(path) as store:
        assert _schema_of(path) == (str(SCHEMA_VERSION), _schema_of(path)[1])
        assert {"cache", "owners"} <= _schema_of(path)[1]
        # A run written before owners existed names none: it is never judged crashed.
        assert store.flow_run("old-run").state_names == ["Pending"]
        written = write_cache(store, "k1")
        assert store.read_cache("k1") == written
        assert store.info()["schema_version"] == SCHEMA_VERSION == 5


def test_the_released_first_migration_step_is_unchanged() -> None:
    # Steps are never edited once released (files of version 1 exist): the cache table came
    # as a new step. This digest pins step 1's text as released.
    step_1 = "\n".join(schema._MIGRATIONS[0]).encode()
    assert hashlib.sha256(step_1).hexdigest() == (
        "1df77a3daefc2e1a9d03f1803940cc85f5cdc2dbdc33ab5b2e7ee3baf4f791be"
    )
    assert any("CREATE TABLE cache " in statement for statement in schema._MIGRATIONS[1])


def test_times_keep_microseconds(tmp_path: Path) -> None:
    moment = datetime(2031, 12, 31, 23, 59, 59, 999999, tzinfo=T0.tzinfo)
    with SqliteStore(tmp_path / "runs.db") as store:
        write_cache(store, "k1", created_at=moment, expires_at=moment)
        record = store.read_cache("k1")
    assert record is not None and record.created_at == moment == record.expires_at
