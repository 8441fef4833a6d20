"""The hypothesis stateful model of the run store, on PostgreSQL (a fresh schema per example)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import rule
from tests.postgres._server import PgServer
from tests.properties.test_store_machine import StoreMachine

from wfkit.stores import RunStore

_where: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _database(pg_server: PgServer, pg_url: str) -> Iterator[None]:
    _where.update(server=pg_server, url=pg_url)
    yield
    _where.clear()


def _as_stored(text: str) -> str:
    """What PostgreSQL gives back for ``text``: its TEXT cannot hold NUL characters, so the
    store writes each as the four characters ``\\x00`` (the README says so)."""
    return text.replace("\x00", "\\x00")


class PostgresStoreMachine(StoreMachine):
    # (States reach the store and the model as one object, so their messages are written
    # as stored; test_postgres_store.py records a NUL in a state message itself.)
    def _stamp(self, state):  # type: ignore[no-untyped-def]
        if state.message:
            state.message = _as_stored(state.message)
        return super()._stamp(state)

    @rule(task_id=StoreMachine.task_ids, message=st.text(max_size=30))
    def log(self, task_id, message):  # type: ignore[no-untyped-def]
        """The store is given ``message`` as it is; the model expects it as stored."""
        super().log(task_id, message)
        self.logs[-1] = self.logs[-1]._replace(message=_as_stored(message))

    def make_store(self, directory: Path) -> RunStore:
        from wfkit.stores.postgres import PostgresStore

        server, url = _where["server"], str(_where["url"])
        assert isinstance(server, PgServer)
        with server.admin(url.rpartition("/")[2]) as conn:
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        return PostgresStore(url)


TestPostgresStoreMachine = PostgresStoreMachine.TestCase
TestPostgresStoreMachine.settings = settings(max_examples=15, stateful_step_count=25, deadline=None)
