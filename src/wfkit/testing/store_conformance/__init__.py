"""The run store conformance suite: every store, built in or third-party, passes it unchanged.

Subclass :class:`StoreConformance` in a test module and give it a ``store`` fixture that
returns a new, empty store; pytest collects the inherited tests::

    import pytest
    from wfkit.testing.store_conformance import StoreConformance

    class TestMyStore(StoreConformance):
        keeps_parameter_objects = False  # the defaults: a store that persists
        keeps_results = False

        @pytest.fixture
        def store(self, tmp_path):
            store = MyStore(tmp_path / "runs")
            yield store
            store.close()

        def reopen(self, store):  # what a later process sees
            store.close()
            return MyStore(store.path)

Stores may differ only where a flag says so (class attributes):

- ``keeps_parameter_objects``: True for a store in memory, whose parameters come back as the
  very objects recorded. False (the default): parameters JSON cannot hold come back as their
  ``repr``, cut to at most 200 characters.
- ``keeps_results``: True if read-back states carry the recorded result (``data``) and
  exception. False (the default): they carry neither (a persistent store keeps results as
  cache records, not in states).

Override :meth:`StoreConformance.reopen` for a store that outlives its process: the suite
then checks that everything reads back the same after reopening.

Importing this module imports pytest; importing :mod:`wfkit.testing` does not. The helpers
(``flow_snapshot``, ``task_snapshot``, ``log_entry``, ``record_flow``, ``record_task``,
``write_cache``, ``artifact``, ``event``, ``at``, ``T0``...) are exported for a store's own extra tests.
"""

from __future__ import annotations

from wfkit.testing.store_conformance._artifacts import ArtifactCases, artifact
from wfkit.testing.store_conformance._cache import CacheCases
from wfkit.testing.store_conformance._events import EventCases, event
from wfkit.testing.store_conformance._filters import FlowRunQueryCases
from wfkit.testing.store_conformance._limits import LimitCases
from wfkit.testing.store_conformance._pages import PageCases
from wfkit.testing.store_conformance._queries import QueryCases
from wfkit.testing.store_conformance._runs import RunCases
from wfkit.testing.store_conformance._support import (
    T0,
    at,
    finished,
    flow_snapshot,
    history,
    log_entry,
    record_flow,
    record_task,
    task_snapshot,
    write_cache,
)

__all__ = [
    "T0",
    "artifact",
    "event",
    "StoreConformance",
    "at",
    "finished",
    "flow_snapshot",
    "history",
    "log_entry",
    "record_flow",
    "record_task",
    "task_snapshot",
    "write_cache",
]


class StoreConformance(
    RunCases,
    FlowRunQueryCases,
    QueryCases,
    CacheCases,
    LimitCases,
    ArtifactCases,
    EventCases,
    PageCases,
):
    """Every conformance case of the store protocols; subclass it and define ``store``.

    The name does not start with ``Test``, so pytest collects only the subclasses.
    """
