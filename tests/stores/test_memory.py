"""The memory store journals state changes, files them in batches, and keeps finished runs
packed, out of the cycle collector's way."""

from __future__ import annotations

import gc
import threading

from wfkit.states import Completed, Failed, Pending, Retrying, Running
from wfkit.stores import memory
from wfkit.stores.memory import MemoryStore

from .conftest import at, history, record_flow, record_task, task_snapshot


def test_finished_runs_are_not_tracked_by_the_cycle_collector() -> None:
    store = MemoryStore()
    record_task(store, [Pending(timestamp=at(0)), Running(timestamp=at(1))], "live")
    record_task(store, [Pending(timestamp=at(0)), Completed(timestamp=at(2), data=3)], "done")
    record_flow(store, [Pending(timestamp=at(0)), Completed(timestamp=at(2))], "flow-done")
    store._file()  # (reads file the journal first; this test looks at the tables directly)
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


def test_the_journal_is_filed_in_batches_and_before_every_read() -> None:
    store = MemoryStore()
    n = memory._FILE_EVERY // 3 + 5  # three changes per run: more than one batch
    for i in range(n):
        record_task(store, [Pending(timestamp=at(0)), Running(timestamp=at(1))], f"t{i}")
    assert 0 < len(store._journal) < memory._FILE_EVERY  # a batch was filed, the rest waits
    record_task(store, [Completed(timestamp=at(2), data=1)], "t0")  # changes run t0 again

    runs = store.task_runs()  # reading files what is left

    assert not store._journal
    assert [r.id for r in runs] == [f"t{i}" for i in range(n)]
    assert runs[0].state_names == ["Pending", "Running", "Completed"]
    assert {tuple(r.state_names) for r in runs[1:]} == {("Pending", "Running")}


def test_changes_recorded_by_many_threads_while_others_read_are_all_kept() -> None:
    store = MemoryStore()
    per_thread, threads = 400, 4
    seen: list[list[int]] = [[], []]  # what each reader saw, in order

    def write(t: int) -> None:
        for i in range(per_thread):
            for state in (Pending(timestamp=at(0)), Completed(timestamp=at(1), data=i)):
                store.record_task_run(task_snapshot(state, f"w{t}-{i}", run_count=1))

    def read(r: int) -> None:
        for _ in range(50):
            seen[r].append(len(store.task_runs()))

    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    workers += [threading.Thread(target=read, args=(r,)) for r in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    runs = store.task_runs()
    assert len(runs) == per_thread * threads
    assert all(r.state_names == ["Pending", "Completed"] for r in runs)
    for t in range(threads):  # each writer's runs in the order it recorded them
        mine = [r.id for r in runs if r.id.startswith(f"w{t}-")]
        assert mine == [f"w{t}-{i}" for i in range(per_thread)]
    assert all(s == sorted(s) for s in seen)  # a reader never sees a run disappear
