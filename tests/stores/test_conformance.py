"""The built-in stores run the shipped conformance suite, as a third-party store would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wfkit.stores import RunStore
from wfkit.stores.memory import MemoryStore
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing.store_conformance import StoreConformance


class TestMemoryStore(StoreConformance):
    keeps_parameter_objects = True
    keeps_results = True

    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


class TestSqliteStore(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqliteStore]:
        store = SqliteStore(tmp_path / "runs.db")
        yield store
        store.close()

    def reopen(self, store: RunStore) -> RunStore:
        assert isinstance(store, SqliteStore)
        store.close()
        return SqliteStore(store.path)
