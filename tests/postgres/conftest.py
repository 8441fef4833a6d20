"""Fixtures of the PostgreSQL store's tests: a real server per test session (per xdist
worker), a fresh database per test module made from a template, dropped afterwards.

Where no server binary exists the tests skip, naming the package to install; under
``CI=true`` a missing server (or psycopg) fails instead, so CI never passes by skipping.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator

import pytest
from tests.postgres._server import PACKAGE, PgServer, server_bin

TEMPLATE = "wfkit_test_template"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A running PostgreSQL server of this session, with the template database made."""
    if importlib.util.find_spec("psycopg") is None:
        _unavailable("psycopg is not installed: pip install -e '.[test]' (or 'wfkit[postgres]')")
    bin_dir = server_bin()
    if bin_dir is None:
        _unavailable(
            f"no PostgreSQL server binary (initdb) found: install the {PACKAGE!r} package "
            f"(apt-get install -y {PACKAGE})"
        )
        raise AssertionError("unreachable")
    server = PgServer(bin_dir)
    try:
        server.start()
        server.create_database(TEMPLATE)
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def pg_url(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh database of this test module (dropped afterwards)."""
    name = "wfkit_" + re.sub(r"\W", "_", request.module.__name__.rpartition(".")[2])[:40]
    url = pg_server.create_database(name, template=TEMPLATE)
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def fresh_url(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh, empty database of this test alone (dropped afterwards)."""
    name = "wfkit_t_" + re.sub(r"\W", "_", request.node.name)[:40].lower()
    url = pg_server.create_database(name, template=TEMPLATE)
    yield url
    pg_server.drop_database(name)
