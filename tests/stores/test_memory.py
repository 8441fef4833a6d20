"""The memory store keeps finished runs packed, out of the cycle collector's way."""

from __future__ import annotations

import gc

from wfkit.states import Completed, Failed, Pending, Retrying, Running
from wfkit.stores.memory import MemoryStore

from .conftest import at, history, record_flow, record_task


def test_finished_runs_are_not_tracked_by_the_cycle_collector() -> None:
    store = MemoryStore()
    record_task(store, [Pending(timestamp=at(0)), Running(timestamp=at(1))], "live")
    record_task(store, [Pending(timestamp=at(0)), Completed(timestamp=at(2), data=3)], "done")
    record_flow(store, [Pending(timestamp=at(0)), Completed(timestamp=at(2))], "flow-done")
    gc.collect()  # tuples holding only untracked values are untracked by a collection

    assert gc.is_tracked(store._task_runs["live"])  # still changing: kept as it came
    assert not gc.is_tracked(store._task_runs["done"])
    assert not gc.is_tracked(store._flow_runs["flow-done"])
    (done,) = store.task_runs(task_name=None, flow_run_id=None)[1:]
    assert done.state_names == ["Pending", "Completed"]
    assert done.state.result() == 3 and done.states[-1].timestamp == at(2)


def test_a_run_that_changes_after_a_final_state_keeps_its_whole_history() -> None:
    store = MemoryStore()
    states = [
        Pending(timestamp=at(0)),
        Running(timestamp=at(1)),
        Failed(timestamp=at(2), message="boom"),
        Retrying(timestamp=at(3)),
        Completed(timestamp=at(4), data="ok"),
    ]
    record_task(store, states, "t1")

    (run,) = store.task_runs()
    assert history(run) == [(s.type.value, s.name, s.timestamp, s.message) for s in states]
    assert run.run_count == 1 and run.state.data == "ok"
