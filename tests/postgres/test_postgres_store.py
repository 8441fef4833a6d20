"""The PostgreSQL store's own behaviour on a real server: bad URLs and logins, schemas it
must not touch, read-only use, what a flow call commits, and NUL characters."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.postgres._server import PASSWORD, PgServer, free_port

from wfkit.exceptions import ConfigurationError, StoreError
from wfkit.states import Completed, Pending, Running
from wfkit.stores import open_store
from wfkit.testing.store_conformance import at, log_entry, record_flow


def _store(url: str, **options: object):  # noqa: ANN202
    from wfkit.stores.postgres import PostgresStore  # (psycopg: only once the server runs)

    return PostgresStore(url, **options)  # type: ignore[arg-type]


def test_a_wrong_password_names_host_and_database_but_never_the_password(
    pg_server: PgServer, pg_url: str
) -> None:
    url = pg_url.replace(PASSWORD, "not-the-password-xyz")
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "'127.0.0.1'" in message and "'wfkit_test_postgres_store'" in message
    assert "password authentication failed" in message
    assert "not-the-password-xyz" not in message and PASSWORD not in message


def test_an_unknown_database_is_named(pg_server: PgServer) -> None:
    with pytest.raises(StoreError, match="database 'no_such_db' on host '127.0.0.1'"):
        open_store(pg_server.url("no_such_db"))


def test_a_server_that_is_down_at_start_is_a_store_error() -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/wfkit"
    with pytest.raises(StoreError, match="Cannot connect to the PostgreSQL run store") as caught:
        open_store(url)
    assert PASSWORD not in str(caught.value)


def test_a_flow_call_raises_before_its_body_runs_when_the_server_is_down(tmp_path: Path) -> None:
    marker = tmp_path / "body-ran"
    script = textwrap.dedent(
        f"""
        from wfkit import flow
        from wfkit.exceptions import StoreError

        @flow
        def job():
            open({str(marker)!r}, "w").close()

        try:
            job()
        except StoreError as exc:
            print("StoreError:", exc)
        """
    )
    env = {**os.environ, "WFKIT_STORE": f"postgresql://u@127.0.0.1:{free_port()}/wfkit"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert "StoreError: Cannot connect to the PostgreSQL run store" in result.stdout, result
    assert not marker.exists()


@pytest.mark.parametrize(
    ("query", "words"),
    [("?sslmod=require", "sslmod"), ("?mode=fast", "mode='fast'")],
)
def test_an_unknown_url_option_is_refused(pg_url: str, query: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words) as caught:
        open_store(pg_url + query)
    assert PASSWORD not in str(caught.value)


def test_a_url_without_a_database_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="names no database"):
        open_store("postgresql://u@localhost/")


def _tables(server: PgServer, database: str) -> list[tuple[str, str]]:
    with server.admin(database) as conn:
        return conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()


def test_a_newer_schema_is_refused_and_left_alone(pg_server: PgServer, fresh_url: str) -> None:
    database = fresh_url.rpartition("/")[2]
    _store(fresh_url).close()
    with pg_server.admin(database) as conn:
        conn.execute("UPDATE wfkit_meta SET value = '99' WHERE key = 'schema_version'")
    before = _tables(pg_server, database)
    with pytest.raises(StoreError, match="schema version 99.*newer wfkit"):
        open_store(fresh_url)
    assert _tables(pg_server, database) == before


def test_another_applications_flow_runs_table_is_refused(
    pg_server: PgServer, fresh_url: str
) -> None:
    database = fresh_url.rpartition("/")[2]
    with pg_server.admin(database) as conn:
        conn.execute("CREATE TABLE flow_runs (id serial PRIMARY KEY, dag text)")
        conn.execute("INSERT INTO flow_runs (dag) VALUES ('nightly')")
        conn.execute("CREATE TABLE invoices (id int)")
    with pytest.raises(StoreError, match=r"tables named like wfkit's \(flow_runs\)"):
        open_store(fresh_url)
    assert _tables(pg_server, database) == [
        ("flow_runs", "dag"), ("flow_runs", "id"), ("invoices", "id"),
    ]  # fmt: skip


def test_other_tables_are_allowed(pg_server: PgServer, fresh_url: str) -> None:
    with pg_server.admin(fresh_url.rpartition("/")[2]) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    with _store(fresh_url) as store:
        record_flow(store, [Pending(timestamp=at(0))], "f1")
        assert [r.id for r in store.flow_runs()] == ["f1"]


def test_read_only_reads_and_refuses_to_write(fresh_url: str) -> None:
    with pytest.raises(StoreError, match="no wfkit schema"):
        open_store(fresh_url, read_only=True)
    with _store(fresh_url) as store:
        record_flow(store, [Pending(timestamp=at(0)), Completed(timestamp=at(1))], "f1")
    reader = open_store(fresh_url, read_only=True)
    try:
        assert [r.state.name for r in reader.flow_runs()] == ["Completed"]
        with pytest.raises(StoreError, match="read-only"):
            reader.record_log(log_entry("nope", "f1"))
        with pytest.raises(StoreError, match="read-only"):
            reader.delete_cache("k")
    finally:
        reader.close()


def test_nul_characters_are_stored_as_backslash_x00(fresh_url: str) -> None:
    with _store(fresh_url) as store:
        record_flow(store, [Running(timestamp=at(0), message="a\x00b")], "f1")
        store.record_log(log_entry("c\x00d", "f1"))
        store.flush()
        assert store.flow_run("f1").state.message == "a\\x00b"
        assert [r.message for r in store.logs()] == ["c\\x00d"]


def test_a_flow_calls_records_are_committed_when_it_returns(
    pg_server: PgServer, fresh_url: str
) -> None:
    # A long commit interval: only the end of the call can have committed the task runs.
    script = textwrap.dedent(
        """
        import os
        from wfkit import flow, task
        from wfkit.stores.postgres import PostgresStore

        @task
        def double(x):
            return 2 * x

        @flow
        def job(n):
            return [double(i) for i in range(n)]

        job(25)
        # Read on a connection of its own, before this process ends (no exit flush yet).
        with PostgresStore(os.environ["WFKIT_STORE"] + "?mode=ro") as reader:
            print(len(reader.task_runs()), reader.flow_runs()[0].state.name)
        os._exit(0)
        """
    )
    env = {**os.environ, "WFKIT_STORE": fresh_url, "WFKIT_STORE_COMMIT_INTERVAL": "60"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == ["25", "Completed"], result.stderr
