"""The conformance cases for walking a whole store a page at a time (``flow_runs_page``,
``task_runs_page``, ``cache_keys``: what ``wf store copy`` reads)."""

from __future__ import annotations

import pytest

from wfkit.exceptions import ConfigurationError
from wfkit.stores import RunStore
from wfkit.testing.store_conformance._support import (
    StoreCases,
    at,
    finished,
    history,
    record_flow,
    record_task,
    write_cache,
)

__all__ = ["PageCases"]


class PageCases(StoreCases):
    """Pages of runs in creation order, each run whole; cache keys oldest first."""

    def test_flow_runs_come_page_by_page_in_creation_order(self, store: RunStore) -> None:
        # Started in the opposite order to their creation: pages follow creation.
        for i in range(5):
            record_flow(store, finished(100 - 10 * i), run_id=f"flow-{i}")
        first = store.flow_runs_page(limit=2)
        second = store.flow_runs_page(after=first[-1].id, limit=2)
        third = store.flow_runs_page(after=second[-1].id, limit=2)
        assert [r.id for r in first + second + third] == [f"flow-{i}" for i in range(5)]
        assert store.flow_runs_page(after="flow-4", limit=2) == []
        assert history(third[0]) == history(store.flow_run("flow-4"))
        assert [r.id for r in store.flow_runs_page()] == [f"flow-{i}" for i in range(5)]

    def test_task_runs_come_page_by_page_with_those_run_outside_a_flow(
        self, store: RunStore
    ) -> None:
        record_flow(store, finished(), run_id="flow-1")
        record_task(store, finished(1), run_id="task-a", flow_run_id="flow-1")
        record_task(store, finished(2), run_id="task-b", flow_run_id=None)
        record_task(store, finished(3), run_id="task-c", flow_run_id="flow-1")
        first = store.task_runs_page(limit=2)
        rest = store.task_runs_page(after=first[-1].id, limit=5)
        assert [r.id for r in first] == ["task-a", "task-b"]
        assert [(r.id, r.flow_run_id) for r in rest] == [("task-c", "flow-1")]
        assert first[1].flow_run_id is None and len(first[1].states) == 3

    def test_a_page_after_an_unknown_run_is_empty(self, store: RunStore) -> None:
        record_flow(store, finished(), run_id="flow-1")
        assert store.flow_runs_page(after="no-such-run") == []
        assert store.task_runs_page(after="no-such-run") == []
        assert store.flow_runs_page(limit=0) == []

    def test_a_negative_page_size_is_refused(self, store: RunStore) -> None:
        with pytest.raises(ConfigurationError, match="limit=-1"):
            store.flow_runs_page(limit=-1)

    def test_cache_keys_are_listed_oldest_first_without_values(self, store: RunStore) -> None:
        assert store.cache_keys() == []
        write_cache(store, "k-late", b"x" * 1000, created_at=at(5))
        write_cache(store, "k-b", created_at=at(1))
        write_cache(store, "k-a", created_at=at(1))
        assert store.cache_keys() == ["k-a", "k-b", "k-late"]
        assert store.cache_keys() == [r.key for r in store.cache_records()]
