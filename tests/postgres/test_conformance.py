"""The PostgreSQL store passes the shipped store conformance suite, on a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.postgres._server import PgServer

from wfkit.stores import RunStore
from wfkit.testing.store_conformance import StoreConformance


@pytest.fixture
def empty_url(pg_server: PgServer, pg_url: str) -> str:
    """This module's database, emptied of wfkit's tables (each case starts with none)."""
    name = pg_url.rpartition("/")[2]
    with pg_server.admin(name) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    return pg_url


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def store(self, empty_url: str) -> Iterator[RunStore]:
        from wfkit.stores.postgres import PostgresStore

        store = PostgresStore(empty_url)
        yield store
        store.close()

    def reopen(self, store: RunStore) -> RunStore:
        from wfkit.stores.postgres import PostgresStore

        store.close()
        return PostgresStore(store.url)
