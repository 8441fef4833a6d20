"""What only the memory store does: it keeps finished runs frozen, out of the cycle
collector's way, and reads them back as they were recorded."""

from __future__ import annotations

import gc
from typing import Any

from wfkit.states import Completed, Failed, Pending, Running
from wfkit.stores import open_store
from wfkit.stores.memory import MemoryStore
from wfkit.testing.store_conformance import at, record_flow, record_task


def _tracked(value: Any) -> list[Any]:
    """The objects inside ``value`` (a kept run) that the cycle collector still tracks."""
    found = [value] if gc.is_tracked(value) else []
    if type(value) is tuple:
        for item in value:
            found += _tracked(item)
    return found


def _collect() -> None:
    # A collection untracks a tuple once its items are untracked; a tuple inside another one
    # may be reached after its container, so the outer one waits for the next collection.
    for _ in range(3):
        gc.collect()


def test_finished_runs_are_not_tracked_by_the_cycle_collector() -> None:
    store = MemoryStore()
    states = [Pending(timestamp=at(0)), Running(timestamp=at(1))]
    record_task(store, states, "live", parameters={"n": 1})
    record_task(store, [*states, Completed(timestamp=at(2), data=3)], "done", parameters={"n": 2})
    record_flow(store, [*states, Failed(timestamp=at(2), message="x")], "flow-done", tags=("a",))
    _collect()

    assert _tracked(store._task_runs["live"])  # still changing: kept as recorded
    assert _tracked(store._task_runs["done"]) == []
    assert _tracked(store._flow_runs["flow-done"]) == []
    live, done = store.task_runs()
    assert done.state_names == ["Pending", "Running", "Completed"]
    assert done.state.result() == 3 and done.parameters == {"n": 2}
    assert done.states[-1].timestamp == at(2) and live.state_names == ["Pending", "Running"]
    assert store.flow_run("flow-done").state.message == "x"


def test_a_finished_run_holding_a_container_stays_tracked_and_intact() -> None:
    store = MemoryStore()
    result, argument = [1, 2], {"k": [3]}
    record_task(store, [Completed(timestamp=at(0), data=result)], "t1", parameters=argument)
    _collect()

    assert gc.is_tracked(store._task_runs["t1"])  # the collector still sees the result
    (run,) = store.task_runs()
    assert run.state.result() is result and run.parameters["k"] is argument["k"]


def test_each_memory_url_opens_a_new_empty_store() -> None:
    first, second = open_store("memory://"), open_store("memory://")
    record_flow(first, [Pending(timestamp=at(0))], "f1")

    assert isinstance(first, MemoryStore) and first is not second
    assert second.flow_runs() == [] and [r.id for r in first.flow_runs()] == ["f1"]
    assert repr(first) == "MemoryStore('memory://')"
