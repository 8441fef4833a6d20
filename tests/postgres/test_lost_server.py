"""Losing the PostgreSQL server mid-run, for real: the server of this module is stopped and
started again. Buffered rows are retried with backoff for the retry timeout; if the server
comes back in time nothing is lost, else the flush says how many records were not written
and what was committed before stays intact."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from tests.postgres._server import PgServer, server_bin

from wfkit.exceptions import StoreError
from wfkit.states import Completed, Pending, Running
from wfkit.testing.store_conformance import at, log_entry, record_flow


@pytest.fixture(scope="module")
def own_server(pg_server: PgServer) -> Iterator[PgServer]:
    """A server of this module alone (pg_server only proves one can run): stopping it
    disturbs no other test."""
    bin_dir = server_bin()
    assert bin_dir is not None
    server = PgServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def url(own_server: PgServer) -> Iterator[str]:
    yield own_server.create_database("lost")
    own_server.drop_database("lost")


def _store(url: str, **options: object):  # noqa: ANN202
    from wfkit.stores.postgres import PostgresStore  # (psycopg: only once a server runs)

    return PostgresStore(url, **options)  # type: ignore[arg-type]


def test_a_server_back_within_the_retry_timeout_loses_nothing(
    own_server: PgServer, url: str
) -> None:
    store = _store(url, retry_timeout=60, commit_interval=60)
    try:
        record_flow(store, [Pending(timestamp=at(0)), Running(timestamp=at(1))], "before")
        store.flush()
        record_flow(store, [Pending(timestamp=at(2)), Completed(timestamp=at(3))], "during")
        store.record_log(log_entry("while the server was away", "during"))
        own_server.stop()
        restart = threading.Timer(1.0, own_server.start)
        restart.start()
        store.flush()  # retries until the server is back
        restart.join()
        assert [r.id for r in store.flow_runs()] == ["before", "during"]
        assert [r.message for r in store.logs()] == ["while the server was away"]
    finally:
        store.close()


def test_a_server_gone_for_good_is_a_store_error_counting_the_records(
    own_server: PgServer, url: str
) -> None:
    store = _store(url, retry_timeout=0.5, commit_interval=60)
    try:
        record_flow(store, [Pending(timestamp=at(0)), Completed(timestamp=at(1))], "kept")
        store.flush()
        record_flow(store, [Pending(timestamp=at(2)), Running(timestamp=at(3))], "lost")
        store.record_log(log_entry("unwritten", "lost"))
        own_server.stop()
        try:
            with pytest.raises(StoreError, match=r"^3 records .* could not be written .* 0.5 s"):
                store.flush()
        finally:
            own_server.start()
        # What was committed before is intact, and the rows were kept for a later flush.
        store.flush()
        assert [r.id for r in store.flow_runs()] == ["kept", "lost"]
        assert [s.name for s in store.flow_run("kept").states] == ["Pending", "Completed"]
    finally:
        store.close()
