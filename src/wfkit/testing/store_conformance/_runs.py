"""The conformance cases for recording runs, state changes and log lines, and reading them
back through ``flow_run``, ``task_runs`` and ``logs``."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from types import MappingProxyType

import pytest

from wfkit.exceptions import StoreError
from wfkit.states import (
    AwaitingRetry,
    Cached,
    Completed,
    Crashed,
    Failed,
    Pending,
    Retrying,
    Running,
    StateType,
)
from wfkit.stores import CacheStore, RunReader, RunRecorder, RunStore
from wfkit.testing.store_conformance._support import (
    T0,
    StoreCases,
    at,
    finished,
    flow_snapshot,
    history,
    log_entry,
    record_flow,
    record_task,
    task_snapshot,
)

__all__ = ["RunCases"]


class RunCases(StoreCases):
    """Recording runs, state changes and log lines, and reading them back."""

    def test_implements_the_store_protocols(self, store: RunStore) -> None:
        for protocol in (RunRecorder, RunReader, CacheStore, RunStore):
            assert isinstance(store, protocol), f"{store!r} lacks members of {protocol.__name__}"
        assert isinstance(store.url, str)

    def test_flow_run_round_trips_every_field(self, store: RunStore) -> None:
        params = {"n": 3, "name": "x", "items": [1, 2.5, None, True], "nested": {"a": {"b": "ü"}}}
        fields = dict(
            name="happy-otter",
            flow_name="etl",
            flow_version="2.1",
            parameters=params,
            tags=("nightly", "team-a"),
            parent_flow_run_id="parent-flow",
            parent_task_run_id="parent-task",
            root_flow_run_id="root-flow",
            run_count=1,
            host="worker-7",
            pid=31337,
        )
        record_flow(store, finished(), "f1", **fields)

        run = store.flow_run("f1")

        assert run.id == "f1"
        for key, value in fields.items():
            assert getattr(run, key) == value, key
        assert history(run) == [
            ("PENDING", "Pending", at(0), None),
            ("RUNNING", "Running", at(1), None),
            ("COMPLETED", "Completed", at(2), None),
        ]
        assert run.state.is_completed() and run.state_type is StateType.COMPLETED
        assert (run.start_time, run.end_time) == (at(1), at(2))
        assert run.start_time is not None and run.start_time.utcoffset() == timedelta(0)
        assert store.flow_runs() == [run]

    def test_task_run_round_trips_every_field(self, store: RunStore) -> None:
        fields = dict(
            name="extract-0",
            task_name="extract",
            flow_run_id="f1",
            parameters={"path": "/data", "limit": 10},
            tags=("io",),
            cache_key="abc123",
            upstream_ids=("t0", "t00"),
            run_count=2,
            host="worker-2",
            pid=99,
        )
        states = [Pending(timestamp=at(0)), Running(timestamp=at(1))]
        states.append(Failed(timestamp=at(2), message="boom: ValueError('x')"))
        record_task(store, states, "t1", **fields)

        (run,) = store.task_runs()

        assert run.id == "t1"
        for key, value in fields.items():
            assert getattr(run, key) == value, key
        assert history(run)[-1] == ("FAILED", "Failed", at(2), "boom: ValueError('x')")
        assert run.state.message == "boom: ValueError('x')"
        assert (run.start_time, run.end_time) == (at(1), at(2))

    def test_records_are_frozen_values_with_tuple_fields(self, store: RunStore) -> None:
        record_flow(store, finished(), "f1", tags=("a", "b"))
        record_task(store, finished(), "t1", flow_run_id="f1", tags=("io",), upstream_ids=("t0",))
        store.record_log(log_entry("hello", "f1", timestamp=at(0)))

        flow_run, (task_run,), (log,) = store.flow_run("f1"), store.task_runs(), store.logs()

        assert type(flow_run.tags) is tuple and type(task_run.tags) is tuple
        assert type(task_run.upstream_ids) is tuple and type(flow_run.states) is tuple
        assert store.flow_run("f1") == flow_run and store.logs() == [log]
        assert flow_run != store.flow_runs(flow_name="nope")
        for record, field in ((flow_run, "name"), (task_run, "name"), (log, "message")):
            assert dataclasses.is_dataclass(record)
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(record, field, "changed")
            assert not hasattr(record, "__dict__")  # slotted

    def test_histories_keep_the_order_of_the_calls(self, store: RunStore) -> None:
        retried = [
            Pending(timestamp=at(0)),
            Running(timestamp=at(1)),
            AwaitingRetry(timestamp=at(2), message="retry 1 of 1"),
            Retrying(timestamp=at(2)),
            Completed(timestamp=at(3)),
        ]
        # Interleave two task runs and a flow run, with a flush in the middle.
        for i, state in enumerate(retried):
            store.record_flow_run(flow_snapshot(state, "f1"))
            store.record_task_run(task_snapshot(state, "t1", run_count=1 + (i >= 3)))
            if i < 3:
                store.record_task_run(task_snapshot(finished()[i], "t2"))
            if i == 2:
                store.flush()

        t1, t2 = store.task_runs()

        expected = ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
        assert t1.state_names == expected
        assert store.flow_run("f1").state_names == expected
        assert history(t1)[2] == ("SCHEDULED", "AwaitingRetry", at(2), "retry 1 of 1")
        assert t2.state_names == ["Pending", "Running", "Completed"]

    def test_recording_again_updates_the_run(self, store: RunStore) -> None:
        store.record_task_run(task_snapshot(Pending(timestamp=at(0)), "t1", tags=("a",)))
        store.flush()
        store.record_task_run(
            task_snapshot(Running(timestamp=at(1)), "t1", run_count=2, tags=("a", "b"))
        )

        (run,) = store.task_runs()

        assert run.run_count == 2
        assert run.tags == ("a", "b")
        assert run.state.name == "Running"
        assert run.end_time is None

    def test_unknown_flow_run_is_a_store_error(self, store: RunStore) -> None:
        record_flow(store, finished(), "f1")

        with pytest.raises(StoreError, match="no-such-run"):
            store.flow_run("no-such-run")

    def test_task_runs_in_creation_order_and_filtered(self, store: RunStore) -> None:
        record_task(store, finished(5), "b", flow_run_id="f1", task_name="load")
        record_task(store, finished(0), "a", flow_run_id="f1", task_name="extract")
        record_task(store, finished(1), "c", flow_run_id="f2", task_name="extract")
        record_task(store, finished(1)[:1], "d", flow_run_id=None, task_name="extract")
        store.record_task_run(
            task_snapshot(Running(timestamp=at(9)), "b", flow_run_id="f1", task_name="load")
        )

        assert [r.id for r in store.task_runs()] == ["b", "a", "c", "d"]
        assert [r.id for r in store.task_runs(flow_run_id="f1")] == ["b", "a"]
        assert [r.id for r in store.task_runs(task_name="extract")] == ["a", "c", "d"]
        assert [r.id for r in store.task_runs(flow_run_id="f2", task_name="extract")] == ["c"]
        assert store.task_runs(flow_run_id="f2", task_name="load") == []
        assert store.task_runs(flow_run_id="f1")[0].state_names[-1] == "Running"

    def test_logs_in_order_and_filtered_by_flow_or_task_run(self, store: RunStore) -> None:
        store.record_log(log_entry("flow starts", "f1", timestamp=at(0)))
        store.record_log(log_entry("in task", "f1", "t1", level=logging.WARNING, timestamp=at(1)))
        store.record_log(log_entry("other flow", "f2", timestamp=at(2)))
        store.record_log(log_entry("orphan task", None, "t9", timestamp=at(3)))
        store.record_log(log_entry("flow ends", "f1", timestamp=at(4)))

        logs = store.logs()
        assert [r.message for r in logs] == [
            "flow starts",
            "in task",
            "other flow",
            "orphan task",
            "flow ends",
        ]
        assert [r.message for r in store.logs("f1")] == ["flow starts", "in task", "flow ends"]
        assert [r.message for r in store.logs("t1")] == ["in task"]
        assert [r.message for r in store.logs("t9")] == ["orphan task"]
        assert store.logs("nobody") == []
        second = logs[1]
        assert (second.flow_run_id, second.task_run_id, second.run_id) == ("f1", "t1", "t1")
        assert (second.level, second.level_name, second.logger) == (
            logging.WARNING,
            "WARNING",
            "wfkit.test",
        )
        assert second.timestamp == at(1)

    def test_parameters_json_cannot_hold_are_kept_readable(self, store: RunStore) -> None:
        class Opaque:
            def __repr__(self) -> str:
                return "Opaque()"

        class Huge:
            def __repr__(self) -> str:
                return "H" * 10_000

        odd = {"obj": Opaque(), "huge": Huge(), "fine": 1, "tuple_key_dict": {(1, 2): "x"}}
        record_flow(store, finished(), "f1", parameters=odd)
        record_task(store, finished(), "t1", parameters={"s": {1, 2}})

        params = store.flow_run("f1").parameters
        task_params = store.task_runs()[0].parameters

        assert params["fine"] == 1
        if self.keeps_parameter_objects:
            assert params["obj"] is odd["obj"] and params["huge"] is odd["huge"]
            assert task_params["s"] == {1, 2}
        else:
            assert params["obj"] == "Opaque()"
            assert params["huge"].startswith("HHH") and len(params["huge"]) <= 200
            assert params["tuple_key_dict"] == "{(1, 2): 'x'}"
            assert task_params == {"s": "{1, 2}"}

    def test_a_circular_parameter_is_kept_readable(self, store: RunStore) -> None:
        loop: list[object] = [1]
        loop.append(loop)
        record_task(store, finished(), "t1", parameters={"loop": loop, "fine": "ok"})

        params = store.task_runs()[0].parameters
        assert params["fine"] == "ok"
        if self.keeps_parameter_objects:
            assert params["loop"] is loop
        else:
            assert params["loop"] == "[1, [...]]"

    def test_parameters_may_be_any_mapping(self, store: RunStore) -> None:
        # The engine hands over a read-only view of the bound arguments.
        record_task(store, finished(), "t1", parameters=MappingProxyType({"n": 1, "xs": [1]}))

        assert store.task_runs()[0].parameters == {"n": 1, "xs": [1]}

    def test_text_that_cannot_be_encoded_does_not_break_the_store(self, store: RunStore) -> None:
        bad = "broken \udc80 text"
        states = [Pending(timestamp=at(0)), Failed(timestamp=at(1), message=bad)]
        record_task(store, states, "t1", name=bad, parameters={"p": bad})
        store.record_log(log_entry(bad, "f1", "t1"))
        record_task(store, finished(), "t2")
        store.flush()

        t1, t2 = store.task_runs()

        message = t1.state.message or ""
        assert message.startswith("broken ") and message.endswith(" text")
        assert t1.parameters["p"] == bad  # JSON escapes it
        assert store.logs()[0].message.startswith("broken ")
        assert t2.state_names == ["Pending", "Running", "Completed"]

    def test_timestamps_come_back_as_the_same_utc_instants(self, store: RunStore) -> None:
        moments = [
            T0.replace(microsecond=1),
            T0.replace(microsecond=999_999),
            at(86_400 * 365 * 30),
        ]
        record_task(store, [Pending(timestamp=m) for m in moments], "t1")
        store.record_log(log_entry("x", timestamp=moments[1]))

        assert [s.timestamp for s in store.task_runs()[0].states] == moments
        assert store.logs()[0].timestamp == moments[1]

    def test_results_and_exceptions_come_back_only_where_kept(self, store: RunStore) -> None:
        error = ValueError("x")
        record_task(store, [Completed(timestamp=at(0), data={"big": "result"})], "t1")
        record_task(store, [Failed(timestamp=at(0), exception=error, message="x")], "t2")

        t1, t2 = store.task_runs()

        assert t1.state.is_completed() and t2.state.is_failed()
        assert t2.state.message == "x"
        if self.keeps_results:
            assert t1.state.result() == {"big": "result"}
            assert t2.state.exception is error
        else:
            assert (t1.state.data, t2.state.exception) == (None, None)

    def test_a_run_that_changes_after_a_final_state_keeps_its_whole_history(
        self, store: RunStore
    ) -> None:
        states = [*finished(0, Failed), Retrying(timestamp=at(3)), Completed(timestamp=at(4))]
        record_task(store, states[:3], "t1")
        assert store.task_runs()[0].end_time == at(2)
        record_task(store, states[3:], "t1", run_count=2)

        (run,) = store.task_runs()

        assert history(run) == [(s.type.value, s.name, s.timestamp, s.message) for s in states]
        assert (run.run_count, run.start_time, run.end_time) == (2, at(1), at(4))

    def test_a_crashed_run_stays_crashed_whatever_is_recorded_after(self, store: RunStore) -> None:
        # A reader recorded the run Crashed (its process seemed dead), then the process
        # records more: a Crashed run never comes back, so those records are dropped.
        running = [Pending(timestamp=at(0)), Running(timestamp=at(1))]
        crashed = [*running, Crashed(timestamp=at(2), message="process gone")]
        for kind, record in (("flow", record_flow), ("task", record_task)):
            record(store, crashed, f"{kind}-1")
            store.flush()  # a buffering store applies the rule to what it has written
            record(store, [Completed(timestamp=at(3))], f"{kind}-1")
            store.flush()
            record(store, [Crashed(timestamp=at(4), message="again")], f"{kind}-1")

        (flow,), (task,) = store.flow_runs(), store.task_runs()
        for run in (flow, task):
            assert run.state_names == ["Pending", "Running", "Crashed", "Crashed"]
            assert run.state.message == "again" and run.end_time == at(4)

    def test_everything_reads_back_the_same_after_reopening(
        self, store: RunStore, reopened: Callable[[], RunStore]
    ) -> None:
        record_flow(store, finished(0), "f1", parameters={"a": [1, 2]}, tags=("x",))
        record_flow(store, finished(10, Failed), "f2", flow_name="other", parent_flow_run_id="f1")
        record_task(store, finished(1), "t1", flow_run_id="f1", upstream_ids=("t0",))
        record_task(store, finished(2, Cached), "t2", flow_run_id="f2", cache_key="k")
        store.record_log(log_entry("hello", "f1", "t1", timestamp=at(1)))
        before = (store.flow_runs(), store.task_runs(), store.logs())

        again = reopened()

        after = (again.flow_runs(), again.task_runs(), again.logs())
        assert after == before
        assert again.flow_run("f2") == before[0][1]

    def test_close_is_idempotent(self, store: RunStore) -> None:
        record_flow(store, finished(), "f1")
        store.flush()
        store.close()
        store.close()

    def test_many_threads_record_while_others_read(self, store: RunStore) -> None:
        per_thread, writers = 50, 4
        seen: list[list[int]] = [[], []]  # how many task runs each reader saw, in order
        errors: list[BaseException] = []

        def write(t: int) -> None:
            for i in range(per_thread):
                for state in (Pending(timestamp=at(0)), Completed(timestamp=at(1))):
                    store.record_task_run(task_snapshot(state, f"w{t}-{i}"))

        def read(r: int) -> None:
            for _ in range(10):
                seen[r].append(len(store.task_runs()))

        def guarded(work: Callable[[int], None], n: int) -> None:
            try:
                work(n)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=guarded, args=(write, t)) for t in range(writers)]
        threads += [threading.Thread(target=guarded, args=(read, r)) for r in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        runs = store.task_runs()
        assert len(runs) == per_thread * writers
        assert all(r.state_names == ["Pending", "Completed"] for r in runs)
        for t in range(writers):  # each writer's runs in the order it recorded them
            mine = [r.id for r in runs if r.id.startswith(f"w{t}-")]
            assert mine == [f"w{t}-{i}" for i in range(per_thread)]
        assert all(s == sorted(s) for s in seen)  # a reader never sees a run disappear
