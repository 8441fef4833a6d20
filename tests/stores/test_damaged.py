"""Damaged SQLite stores are refused and left alone; a migration killed half-way is undone."""

from __future__ import annotations

import json
import logging
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wfkit.stores
from wfkit.exceptions import StoreError
from wfkit.states import Completed, Pending, Running
from wfkit.stores import _sqlite_schema
from wfkit.stores.sqlite import SCHEMA_VERSION, SqliteStore
from wfkit.testing.store_conformance import at, log_entry, record_task

from ._old_files import version_1_store

SRC = Path(wfkit.stores.__file__).resolve().parents[2]
PAGE = 4096  # SQLite's default page size, which wfkit keeps


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    """Start ``code`` in a fresh interpreter that imports this checkout's wfkit."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _output(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"child failed:\n{out}\n{err}"
    return out


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in ``directory``: its bytes and modification time (ns)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def _filled_store(path: Path, runs: int = 300) -> None:
    """A closed store of many pages (its log checkpointed into the file and removed)."""
    with SqliteStore(path) as store:
        for i in range(runs):
            states = [
                Pending(timestamp=at(i)),
                Running(timestamp=at(i)),
                Completed(timestamp=at(i)),
            ]
            record_task(store, states, run_id=f"task-{i}", parameters={"i": i, "pad": "x" * 200})
            store.record_log(log_entry(f"line {i}", task_run_id=f"task-{i}"))
    assert not Path(f"{path}-wal").exists()


def _damage(path: Path, how: str) -> None:
    """Damage a page in the middle of ``path``, then date the file in the past, so that any
    write would show in its mtime."""
    middle = path.stat().st_size // PAGE // 2
    with open(path, "r+b") as file:
        if how == "garbage":
            file.seek(middle * PAGE)
            file.write(random.Random(0).randbytes(PAGE))
        else:  # cells zeroed: quick_check reports rows instead of failing outright
            file.seek(middle * PAGE + 100)
            file.write(bytes(400))
    os.utime(path, ns=(10**18, 10**18))


def _assert_damage_refused(path: Path, info: pytest.ExceptionInfo[StoreError]) -> None:
    message = str(info.value)
    assert repr(str(path)) in message
    assert "damaged" in message and "quick_check" in message
    assert "backup" in message and ".recover" in message  # what to do


# refusing damaged stores --------------------------------------------------------------------
@pytest.mark.parametrize("how", ["garbage", "zeroed"])
def test_a_damaged_store_is_refused_and_left_byte_identical(tmp_path: Path, how: str) -> None:
    path = tmp_path / "runs.db"
    _filled_store(path)
    _damage(path, how)
    before = _snapshot(tmp_path)

    with pytest.raises(StoreError) as info:
        SqliteStore(path)

    _assert_damage_refused(path, info)
    assert _snapshot(tmp_path) == before  # same bytes, same mtime, no -wal or -shm left behind


def test_a_damaged_store_with_a_killed_writers_log_is_left_alone(tmp_path: Path) -> None:
    # A writer killed after committing leaves frames in the log. A read-write connection
    # would copy them into the damaged file when it closes; the refusal must not.
    path = tmp_path / "runs.db"
    _filled_store(path)
    _output(
        _python(
            """
            import os, sqlite3, sys
            conn = sqlite3.connect(sys.argv[1], isolation_level=None)
            conn.execute("INSERT INTO logs (message) VALUES ('written just before the kill')")
            os._exit(0)  # as SIGKILL would: no close, no checkpoint
            """,
            str(path),
        )
    )
    assert Path(f"{path}-wal").stat().st_size > 0
    _damage(path, "zeroed")
    before = _snapshot(tmp_path)

    with pytest.raises(StoreError) as info:
        SqliteStore(path)

    _assert_damage_refused(path, info)
    after = _snapshot(tmp_path)
    assert after[path.name] == before[path.name]
    assert after[f"{path.name}-wal"] == before[f"{path.name}-wal"]


def test_a_sound_store_with_a_killed_writers_log_opens_with_its_last_rows(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _filled_store(path, runs=3)
    _output(
        _python(
            """
            import os, sys
            from wfkit.stores.sqlite import SqliteStore
            from wfkit.testing.store_conformance import log_entry
            store = SqliteStore(sys.argv[1])
            store.record_log(log_entry("written just before the kill"))
            store.flush()
            os._exit(0)
            """,
            str(path),
        )
    )
    assert Path(f"{path}-wal").stat().st_size > 0

    with SqliteStore(path) as store:
        assert store.logs()[-1].message == "written just before the kill"


def test_a_store_over_the_size_bound_is_opened_unchecked_with_a_debug_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "runs.db"
    _filled_store(path)
    _damage(path, "zeroed")
    monkeypatch.setattr(_sqlite_schema, "_QUICK_CHECK_MAX_BYTES", PAGE)

    with caplog.at_level(logging.DEBUG, logger="wfkit.stores"):
        SqliteStore(path).close()

    assert any(
        "not integrity-checked" in r.getMessage() and str(path) in r.getMessage()
        for r in caplog.records
    )


# migrations killed half-way ------------------------------------------------------------------
# The child stops inside the migration at the statement starting with PAUSE_AT (seen through
# SQLite's trace callback, so the migration itself runs unchanged), says so on its stdout and
# waits to be killed. PAUSE_AT "opened" stops after the store is open instead.
_MIGRATE_AND_PAUSE = """
    import signal, sqlite3, sys
    path, pause_at = sys.argv[1], sys.argv[2]

    def pause():
        print("paused", flush=True)
        signal.pause()

    def trace(sql):
        if sql.lstrip().startswith(pause_at):
            pause()

    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(trace)
        return conn

    sqlite3.connect = connect
    from wfkit.stores.sqlite import SqliteStore
    store = SqliteStore(path)
    if pause_at == "opened":
        pause()
    print("never paused", flush=True)
"""

# Read from a fresh process: the file's schema version, its tables, its flow run ids and
# what quick_check says, without wfkit (which would migrate it).
_INSPECT = """
    import json, sqlite3, sys
    conn = sqlite3.connect(sys.argv[1])
    tables = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    version = 0
    if "wfkit_meta" in tables:
        (value,) = conn.execute("SELECT value FROM wfkit_meta WHERE key = 'schema_version'").fetchone()
        version = int(value)
    runs = [r for (r,) in conn.execute("SELECT id FROM flow_runs")] if "flow_runs" in tables else []
    check = [r for (r,) in conn.execute("PRAGMA quick_check")]
    print(json.dumps({"version": version, "tables": sorted(tables), "runs": runs, "check": check}))
"""


def _kill_when_paused(path: Path, pause_at: str) -> None:
    child = _python(_MIGRATE_AND_PAUSE, str(path), pause_at)
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 30)
        line = child.stdout.readline() if ready else ""
        assert line == "paused\n", f"the child did not pause at {pause_at!r}: {line!r}"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL


def _inspect(path: Path) -> dict:
    return json.loads(_output(_python(_INSPECT, str(path))))


_V1_TABLES = sorted(
    ["wfkit_meta", "flow_runs", "task_runs", "flow_run_states", "task_run_states", "logs"]
)
_NEW_TABLES = sorted(
    [*_V1_TABLES, "cache", "owners", "concurrency_limits", "limit_leases", "artifacts", "events"]
)


@pytest.mark.parametrize(
    ("pause_at", "version"),
    [
        ("CREATE TABLE cache", 1),
        ("CREATE INDEX cache_expires", 1),
        ("CREATE TABLE owners", 1),
        ("ALTER TABLE task_runs ADD COLUMN owner", 1),
        ("CREATE INDEX task_runs_live", 1),
        ("ALTER TABLE flow_runs ADD COLUMN flow_path", 1),
        ("CREATE INDEX task_runs_summary", 1),
        ("CREATE TABLE limit_leases", 1),
        ("INSERT INTO wfkit_meta", 1),
        ("COMMIT", 1),
        ("opened", SCHEMA_VERSION),
    ],
)
def test_a_migration_killed_half_way_leaves_the_old_version(
    tmp_path: Path, pause_at: str, version: int
) -> None:
    assert SCHEMA_VERSION == 5, "add the newest migration's statements to the pause points"
    path = tmp_path / "runs.db"
    version_1_store(path)

    _kill_when_paused(path, pause_at)

    seen = _inspect(path)
    assert seen == {
        "version": version,
        "tables": _V1_TABLES if version == 1 else _NEW_TABLES,
        "runs": ["old-run"],
        "check": ["ok"],
    }
    with SqliteStore(path) as store:  # and the next open finishes the job
        assert [run.id for run in store.flow_runs()] == ["old-run"]
        assert store.info()["cache_records"] == 0
    assert _inspect(path)["version"] == SCHEMA_VERSION


@pytest.mark.parametrize("pause_at", ["CREATE INDEX task_runs_task_name", "COMMIT"])
def test_a_first_migration_killed_half_way_leaves_an_empty_file(
    tmp_path: Path, pause_at: str
) -> None:
    path = tmp_path / "runs.db"

    _kill_when_paused(path, pause_at)

    assert _inspect(path) == {"version": 0, "tables": [], "runs": [], "check": ["ok"]}
    SqliteStore(path).close()
    assert _inspect(path)["version"] == SCHEMA_VERSION
