"""``wf store copy`` between SQLite and a real PostgreSQL server, both ways, as a user runs
it (``python -m wfkit`` in a subprocess): moving history from the default SQLite file to a
team's database, and back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.cli._copy_flows import START, contents, fill, squares
from tests.cli.conftest import process_env

from wfkit.stores.postgres import PostgresStore
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing import harness


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m wfkit store copy ARGS``; the URLs' password never shows."""
    done = subprocess.run(
        [sys.executable, "-m", "wfkit", "store", "copy", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=process_env(),
    )
    for arg in args:
        password = urlsplit(arg).password
        assert not password or password not in done.stdout + done.stderr
    return done


def _copy(*args: str) -> dict[str, Any]:
    """``python -m wfkit store copy ARGS --json``, checked; its counts."""
    done = _run(*args, "--json")
    assert done.returncode == 0, done.stderr
    counts: dict[str, Any] = json.loads(done.stdout)["counts"]
    return counts


def _read(store: SqliteStore | PostgresStore) -> dict[str, Any]:
    try:
        return contents(store)
    finally:
        store.close()


def test_sqlite_to_postgresql_and_back(fresh_url: str, tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    fill(SqliteStore(source))
    expected = _read(SqliteStore(source))

    counts = _copy(f"sqlite:///{source}", fresh_url)
    assert counts["flow_runs"] == {"copied": 5} and counts["task_runs"] == {"copied": 10}
    assert _read(PostgresStore(fresh_url)) == expected

    back = tmp_path / "back.db"
    _copy(fresh_url, f"sqlite:///{back}")
    assert _read(SqliteStore(back)) == expected

    again = _copy(f"sqlite:///{source}", fresh_url, "--merge")
    assert all(set(n) <= {"identical"} for n in again.values()), again
    assert _read(PostgresStore(fresh_url)) == expected


def test_copied_cache_records_are_hits_in_postgresql(fresh_url: str, tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    fill(SqliteStore(source))
    _copy(f"sqlite:///{source}", fresh_url)
    with harness(start=START, store=PostgresStore(fresh_url)) as h:
        before = {r.id for r in h.task_runs()}
        assert squares(3) == 5 + 9
        states = [r.state.name for r in h.task_runs() if r.id not in before]
    assert sorted(states) == ["Cached"] * 4


def test_a_postgresql_store_that_is_not_empty_is_refused(fresh_url: str, tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    fill(SqliteStore(source))
    fill(PostgresStore(fresh_url))
    done = _run(f"sqlite:///{source}", fresh_url)
    assert done.returncode == 2, done.stderr
    assert "is not empty (5 flow runs, 10 task runs" in done.stderr and "--merge" in done.stderr


def test_the_same_database_under_another_url_is_refused(fresh_url: str) -> None:
    fill(PostgresStore(fresh_url))
    parts = urlsplit(fresh_url)
    # The host and port as libpq options: only the stores' secrets show it is one database.
    netloc = f"{parts.username}:{parts.password}@"
    other = f"postgresql://{netloc}{parts.path}?host={parts.hostname}&port={parts.port}"
    for url in (fresh_url.replace("127.0.0.1", "localhost"), other):
        done = _run(fresh_url, url, "--merge")
        assert done.returncode == 2, done.stderr
        assert "SRC and DST are the same store" in done.stderr
