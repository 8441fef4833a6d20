"""Cache records in the run store: the conformance part every store passes, then what only the
SQLite store has to get right (other processes see records at once; older files migrate)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import wfkit.stores
from wfkit.exceptions import StoreError
from wfkit.states import Completed, Pending, Running
from wfkit.stores import RunStore
from wfkit.stores import _sqlite_schema as schema
from wfkit.stores._base import CacheRecord
from wfkit.stores.sqlite import SCHEMA_VERSION, SqliteStore

from .conftest import T0, at, record_flow

SRC = Path(wfkit.stores.__file__).resolve().parents[2]


def _write(store: RunStore, key: str, value: bytes = b"v", **fields: object) -> CacheRecord:
    """Write a cache record with defaults for the fields not given; the record written."""
    values: dict[str, object] = {
        "serializer": "pickle",
        "expires_at": None,
        "task_name": "extract",
        "created_at": T0,
    }
    values.update(fields)
    store.write_cache(key, value, **values)  # type: ignore[arg-type]
    return CacheRecord(key, value, **values)  # type: ignore[arg-type]


class TestCacheRecordConformance:
    def test_a_record_round_trips_every_field(self, store: RunStore) -> None:
        value = bytes(range(256)) * 40  # binary, and bigger than a page
        written = _write(store, "k1", value, serializer="json", expires_at=at(60), task_name="t")

        record = store.read_cache("k1")

        assert record == written
        assert isinstance(record, CacheRecord) and isinstance(record.value, bytes)
        assert record.created_at.tzinfo is not None and record.expires_at == at(60)

    def test_a_record_without_expiry_or_task_name_round_trips(self, store: RunStore) -> None:
        written = _write(store, "k1", b"", expires_at=None, task_name=None)
        assert store.read_cache("k1") == written

    def test_a_missing_key_reads_as_none(self, store: RunStore) -> None:
        _write(store, "k1")
        assert store.read_cache("other") is None

    def test_writing_a_key_again_replaces_the_record(self, store: RunStore) -> None:
        _write(store, "k1", b"old", expires_at=at(10), task_name="a")
        newer = _write(
            store, "k1", b"new", serializer="json", expires_at=None, task_name="b", created_at=at(5)
        )

        assert store.read_cache("k1") == newer
        assert store.cache_records() == [newer]

    def test_an_expired_record_is_still_read(self, store: RunStore) -> None:
        # Expiry is the engine's decision, made on its clock: the store returns the record.
        written = _write(store, "k1", expires_at=at(-3600))
        assert store.read_cache("k1") == written

    def test_records_are_listed_oldest_first(self, store: RunStore) -> None:
        assert store.cache_records() == []
        late = _write(store, "a", created_at=at(30))
        early = _write(store, "z", created_at=at(10))
        tie_b = _write(store, "b", created_at=at(20))
        tie_a = _write(store, "a2", created_at=at(20))

        assert store.cache_records() == [early, tie_a, tie_b, late]

    def test_delete_removes_one_record_and_says_whether_there_was_one(
        self, store: RunStore
    ) -> None:
        _write(store, "k1")
        kept = _write(store, "k2")

        assert store.delete_cache("k1") is True
        assert store.delete_cache("k1") is False
        assert store.read_cache("k1") is None
        assert store.cache_records() == [kept]

    def test_prune_deletes_records_expired_at_or_before_now(self, store: RunStore) -> None:
        _write(store, "past", expires_at=at(5))
        _write(store, "now", expires_at=at(10))
        future = _write(store, "future", expires_at=at(10.000001))
        forever = _write(store, "forever", expires_at=None)

        assert store.prune_cache(at(10)) == 2
        assert sorted(store.cache_records()) == sorted([future, forever])
        assert store.prune_cache(at(10)) == 0
        assert store.prune_cache(at(3600)) == 1
        assert store.cache_records() == [forever]

    def test_reads_follow_the_stores_own_changes(self, store: RunStore) -> None:
        # A record read once must not be served again after the store changed or removed it.
        _write(store, "k1", b"one", expires_at=at(5))
        assert store.read_cache("k1") is not None
        newer = _write(store, "k1", b"two", expires_at=at(5))
        assert store.read_cache("k1") == newer
        assert store.prune_cache(at(5)) == 1
        assert store.read_cache("k1") is None
        again = _write(store, "k1", b"three")
        assert store.read_cache("k1") == again
        assert store.delete_cache("k1") is True
        assert store.read_cache("k1") is None

    def test_naive_times_are_read_as_utc(self, store: RunStore) -> None:
        naive = T0.replace(tzinfo=None)
        store.write_cache("k1", b"v", "pickle", naive + timedelta(seconds=5), None, naive)

        record = store.read_cache("k1")

        assert record is not None
        assert (record.created_at, record.expires_at) == (T0, at(5))
        assert store.prune_cache(naive + timedelta(seconds=5)) == 1

    def test_a_bytes_like_value_is_stored_as_bytes(self, store: RunStore) -> None:
        store.write_cache("k1", bytearray(b"abc"), "pickle", None, None, T0)  # type: ignore[arg-type]
        record = store.read_cache("k1")
        assert record is not None and record.value == b"abc" and type(record.value) is bytes

    def test_a_value_that_is_not_bytes_is_refused(self, store: RunStore) -> None:
        with pytest.raises(TypeError, match="'k1'.*bytes.*str"):
            store.write_cache("k1", "text", "json", None, None, T0)  # type: ignore[arg-type]
        assert store.read_cache("k1") is None

    def test_prune_needs_a_datetime(self, store: RunStore) -> None:
        with pytest.raises(TypeError, match="datetime"):
            store.prune_cache(10)  # type: ignore[arg-type]

    def test_cache_records_do_not_disturb_runs(self, store: RunStore) -> None:
        record_flow(store, [Pending(timestamp=at(0)), Running(timestamp=at(1))], "f1")
        _write(store, "k1")
        record_flow(store, [Completed(timestamp=at(2))], "f1")

        assert store.flow_run("f1").state_names == ["Pending", "Running", "Completed"]
        assert [r.key for r in store.cache_records()] == ["k1"]


# SQLite only --------------------------------------------------------------------------------
def test_a_record_is_visible_to_another_store_on_the_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path) as writer, SqliteStore(path) as reader:
        written = _write(writer, "k1", b"payload")  # no flush
        assert reader.read_cache("k1") == written
        assert reader.delete_cache("k1") is True
        assert writer.read_cache("k1") is None


def test_a_record_read_once_follows_changes_made_through_another_store(tmp_path: Path) -> None:
    # Records this store read are served from memory only while no other connection has
    # committed to the file: every change made elsewhere is seen at the next read.
    path = tmp_path / "runs.db"
    with SqliteStore(path) as reader, SqliteStore(path) as other:
        _write(reader, "k1", b"mine")
        _write(reader, "k2", b"untouched")
        assert reader.read_cache("k1").value == b"mine"  # type: ignore[union-attr]
        assert reader.read_cache("k2").value == b"untouched"  # type: ignore[union-attr]

        replaced = _write(other, "k1", b"theirs", expires_at=at(5), created_at=at(1))
        assert reader.read_cache("k1") == replaced
        assert other.delete_cache("k1") is True
        assert reader.read_cache("k1") is None
        assert other.prune_cache(at(10)) == 0
        _write(other, "k1", b"back", expires_at=at(5))
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
        _write(store, "k1", b"mine")
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
        written = _write(reader, "k1", b"mine")
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
        _write(store, "k1", b"parent")
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
        written = [_write(store, f"k{i}", bytes([i]) * (i % 50)) for i in range(30)]
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
        _write(writer, "k1")
        assert reader.flow_runs() == []  # the run is still buffered
        writer.flush()
        assert [r.id for r in reader.flow_runs()] == ["f1"]


def test_records_persist_and_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqliteStore(path) as store:
        written = _write(store, "k1", expires_at=at(60))
        _write(store, "k2")
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
        _write(store, "k1")


def test_a_locked_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(path, timeout=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock for too long
    try:
        with pytest.raises(StoreError, match="write a cache record") as info:
            _write(store, "k1")
        assert str(path) in str(info.value)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    _write(store, "k1")  # works again once the lock is released
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


def test_a_version_1_file_is_migrated_and_keeps_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v1.db"
    # Write the file as the code of schema version 1 did: only the first migration step.
    monkeypatch.setattr(schema, "_MIGRATIONS", schema._MIGRATIONS[:1])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 1)
    with SqliteStore(path) as old:
        record_flow(old, [Pending(timestamp=at(0)), Completed(timestamp=at(1))], "f1")
    assert _schema_of(path)[0] == "1" and "cache" not in _schema_of(path)[1]
    monkeypatch.undo()

    with SqliteStore(path) as store:
        assert _schema_of(path) == (str(SCHEMA_VERSION), _schema_of(path)[1])
        assert "cache" in _schema_of(path)[1]
        assert store.flow_run("f1").state_names == ["Pending", "Completed"]
        written = _write(store, "k1")
        assert store.read_cache("k1") == written
        assert store.info()["schema_version"] == SCHEMA_VERSION == 2


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
        _write(store, "k1", created_at=moment, expires_at=moment)
        record = store.read_cache("k1")
    assert record is not None and record.created_at == moment == record.expires_at
