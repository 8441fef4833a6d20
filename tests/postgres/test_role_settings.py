"""A role whose settings would break wfkit (``ALTER ROLE ... SET statement_timeout = '1ms'``):
wfkit's sessions set their own timeouts at login, and a timeout the URL asks for explicitly
fails with an error that names the setting and says what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from tests.postgres._hosts import MANY_TASKS
from tests.postgres._server import PgServer

from wfkit.exceptions import StoreError
from wfkit.stores import open_store


@pytest.fixture
def hasty_url(pg_server: PgServer) -> Iterator[str]:
    """A database owned by a role whose statements and lock waits time out after 1 ms."""
    with pg_server.admin() as conn:
        conn.execute("DROP DATABASE IF EXISTS wfkit_hasty WITH (FORCE)")
        conn.execute("DROP ROLE IF EXISTS wfkit_hasty")
        conn.execute("CREATE ROLE wfkit_hasty LOGIN PASSWORD 'hasty-pw'")
        conn.execute("ALTER ROLE wfkit_hasty SET statement_timeout = '1ms'")
        conn.execute("ALTER ROLE wfkit_hasty SET lock_timeout = '1ms'")
        conn.execute("CREATE DATABASE wfkit_hasty OWNER wfkit_hasty")
    yield f"postgresql://wfkit_hasty:hasty-pw@127.0.0.1:{pg_server.port}/wfkit_hasty"
    with pg_server.admin() as conn:
        conn.execute("DROP DATABASE IF EXISTS wfkit_hasty WITH (FORCE)")
        conn.execute("DROP ROLE IF EXISTS wfkit_hasty")


def test_a_role_with_a_1ms_statement_timeout_still_records_flows(hasty_url: str) -> None:
    env = {**os.environ, "WFKIT_STORE": hasty_url}
    result = subprocess.run(
        [sys.executable, "-c", MANY_TASKS, "300"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(sum(i * i for i in range(300)))]
    with open_store(hasty_url, read_only=True) as reader:
        summary = reader.summary()
        assert (summary.flow_runs, summary.task_runs) == ({"Completed": 1}, {"Completed": 300})
        assert len(reader.logs()) >= 300


def test_the_urls_own_options_are_kept_beside_wfkits(pg_server: PgServer, pg_url: str) -> None:
    from wfkit.stores._pg_schema import connect, parse_url  # (psycopg: once the server runs)

    url = f"{pg_url}?options={quote('-c application_name=mine -c lock_timeout=7s')}"
    with connect(parse_url(url)) as conn:
        shown = [conn.execute(f"SHOW {name}").fetchone()[0] for name in _SETTINGS]
    assert shown == ["mine", "7s", "5min"]  # the URL's, then wfkit's 300 s


_SETTINGS = ("application_name", "lock_timeout", "statement_timeout")


def test_a_timeout_the_url_sets_too_low_is_a_clear_store_error(hasty_url: str) -> None:
    url = f"{hasty_url}?options={quote('-c statement_timeout=1ms')}"
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "statement timeout" in message  # the server's words...
    assert "statement_timeout=300s" in message and "URL's options" in message  # ...and ours
    assert "hasty-pw" not in message
