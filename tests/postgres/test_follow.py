"""``logs_after`` (``wf runs logs --follow``) on PostgreSQL: writers take log seqs, then
commit in either order; a follower still sees every line once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from tests.postgres._server import PgServer

from wfkit.stores import RunStore, open_store
from wfkit.testing.store_conformance import log_entry

_INSERT = (
    "INSERT INTO logs (flow_run_id, task_run_id, level, logger, message, at_us) "
    "VALUES ('flow-1', NULL, 20, 'test', %s, 0)"
)


@pytest.fixture
def reader(fresh_url: str) -> Iterator[RunStore]:
    with open_store(fresh_url) as writer:  # (makes the schema)
        writer.flush()
    with open_store(fresh_url, read_only=True) as store:
        yield store


def _session(pg_server: PgServer, url: str) -> Any:
    """A session of its own, as another writer process has (not autocommit)."""
    import psycopg  # (the tests skip before this where psycopg is missing)

    return psycopg.connect(
        host=str(pg_server.root), port=pg_server.port, user="postgres",
        dbname=url.rpartition("/")[2],
    )  # fmt: skip


def test_a_lower_seq_committed_after_a_read_is_not_skipped(
    pg_server: PgServer, fresh_url: str, reader: RunStore
) -> None:
    first = reader.logs_after("flow-1")
    assert first.records == ()
    with _session(pg_server, fresh_url) as slow, _session(pg_server, fresh_url) as quick:
        slow.execute(_INSERT, ("taken first, committed last",))  # the lower seq...
        quick.execute(_INSERT, ("taken last, committed first",))
        quick.commit()
        middle = reader.logs_after("flow-1", after=first.cursor)  # (read in between)
        slow.commit()  # ...committed after a higher one was readable
    last = reader.logs_after("flow-1", after=middle.cursor)
    seen = [r.message for page in (middle, last) for r in page.records]
    assert sorted(seen) == ["taken first, committed last", "taken last, committed first"]
    assert reader.logs_after("flow-1", after=last.cursor).records == ()


_WRITER = textwrap.dedent(
    """
    import sys
    from wfkit.stores import open_store
    from wfkit.testing.store_conformance import log_entry

    name, lines = sys.argv[1], int(sys.argv[2])
    with open_store() as store:
        for i in range(lines):
            store.record_log(log_entry(f"{name} {i}"))
            store.flush()  # one transaction per line: as many interleavings as can be
    """
)


def test_two_writer_processes_and_a_follower_lose_no_line(fresh_url: str, reader: RunStore) -> None:
    lines = 300
    env = {**os.environ, "WFKIT_STORE": fresh_url}
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, name, str(lines)], env=env)
        for name in ("a", "b")
    ]
    seen: list[str] = []
    cursor = 0
    while any(w.poll() is None for w in writers):
        page = reader.logs_after("flow-1", after=cursor)
        seen += [r.message for r in page.records]
        cursor = page.cursor
    assert [w.returncode for w in writers] == [0, 0]
    seen += [r.message for r in reader.logs_after("flow-1", after=cursor).records]
    for name in ("a", "b"):  # every line once, each writer's in its order
        assert [m for m in seen if m.startswith(f"{name} ")] == [
            f"{name} {i}" for i in range(lines)
        ]


def test_lines_from_before_schema_3_are_read_and_followed(
    pg_server: PgServer, fresh_url: str
) -> None:
    from wfkit.stores._pg_schema import _MIGRATIONS  # (psycopg: only once the server runs)

    with pg_server.admin(fresh_url.rpartition("/")[2]) as conn:  # a store of schema 2...
        for statement in (s for step in _MIGRATIONS[:2] for s in step):
            conn.execute(statement)
        conn.execute("INSERT INTO wfkit_meta VALUES ('schema_version', '2')")
        conn.execute(_INSERT, ("before the upgrade",))
    with open_store(fresh_url) as writer:  # ...moved to 3 by the first writer
        page = writer.logs_after("flow-1")
        assert [r.message for r in page.records] == ["before the upgrade"]
        writer.record_log(log_entry("after the upgrade"))
        writer.flush()
        later = writer.logs_after("flow-1", after=page.cursor)
        assert [r.message for r in later.records] == ["after the upgrade"]


def test_a_long_transaction_on_another_database_holds_nothing_back(
    pg_server: PgServer, fresh_url: str, reader: RunStore
) -> None:
    """Transaction ids are numbered across the server, but another database's transaction
    cannot write these logs: a line committed after it began is read at once. (It was held
    back until that transaction ended: a plain read missed it, a follow waited.)"""
    other = fresh_url.rpartition("/")[0] + "/postgres"
    with _session(pg_server, other) as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")  # an xid, kept until it ends
        with open_store(fresh_url) as writer:
            writer.record_log(log_entry("written during it"))
            writer.flush()
        page = reader.logs_after("flow-1")
        assert [r.message for r in page.records] == ["written during it"]
        assert reader.logs_after("flow-1", after=page.cursor).records == ()
        elsewhere.rollback()


def test_a_transaction_on_the_same_database_still_holds_later_lines_back(
    pg_server: PgServer, fresh_url: str, reader: RunStore
) -> None:
    """The filter is by database only: an open transaction of this database may still
    write lines, so those committed after it began wait for it (then none is skipped)."""
    with _session(pg_server, fresh_url) as slow:
        slow.execute(_INSERT, ("the slow one",))
        with open_store(fresh_url) as writer:
            writer.record_log(log_entry("the quick one"))
            writer.flush()
        held = reader.logs_after("flow-1")
        assert held.records == ()  # (both wait for the slow transaction)
        slow.commit()
    page = reader.logs_after("flow-1", after=held.cursor)
    assert sorted(r.message for r in page.records) == ["the quick one", "the slow one"]
