"""A stateful model of the run store: any interleaving of recorded flow runs, task runs,
state changes and log lines reads back exactly as a simple in-test model says, also through
the tags and start-time filters. Each store kind is a subclass that says how to make one, as
the conformance suite's subclasses do."""

from __future__ import annotations

import os
import socket
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from wfkit.stores import FlowRunSnapshot, LogEntry, RunStore, TaskRunSnapshot
from wfkit.stores.memory import MemoryStore
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing.strategies import states

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOST, PID = socket.gethostname(), os.getpid()


TAGS = ("a", "b", "c")


def _stays_crashed(entry, state) -> bool:
    """Whether the store ignores ``state`` because the run is Crashed (a Crashed run stays
    so; the invariant's reads have flushed every earlier record)."""
    return entry["states"][-1].type.value == "CRASHED" and state.type.value != "CRASHED"


class StoreMachine(RuleBasedStateMachine):
    flow_ids = Bundle("flow_ids")
    task_ids = Bundle("task_ids")

    def make_store(self, directory: Path) -> RunStore:
        """A new, empty store of the kind under test (files, if any, in ``directory``)."""
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.store = self.make_store(Path(self._dir.name))
        self.tick = 0
        self.flows: dict[str, dict] = {}  # id -> {"snap": ..., "states": [...]}
        self.tasks: dict[str, dict] = {}
        self.logs: list[LogEntry] = []

    def _stamp(self, state):
        self.tick += 1
        state.timestamp = T0 + timedelta(seconds=self.tick)
        return state

    @rule(
        target=flow_ids,
        name=st.sampled_from(["etl", "report", "sync"]),
        tags=st.lists(st.sampled_from(TAGS), unique=True, max_size=2),
        state=states(),
    )
    def new_flow_run(self, name, tags, state):
        run_id = f"f{len(self.flows)}"
        snap = FlowRunSnapshot(
            id=run_id,
            name=f"{name}-run",
            flow_name=name,
            flow_version=None,
            parameters={"n": len(self.flows)},
            tags=tuple(tags),
            parent_flow_run_id=None,
            parent_task_run_id=None,
            root_flow_run_id=run_id,
            run_count=0,
            state=self._stamp(state),
            host=HOST,
            pid=PID,
        )
        self.store.record_flow_run(snap)
        self.flows[run_id] = {"snap": snap, "states": [state]}
        return run_id

    @rule(
        target=task_ids, flow_id=flow_ids, name=st.sampled_from(["extract", "load"]), state=states()
    )
    def new_task_run(self, flow_id, name, state):
        run_id = f"t{len(self.tasks)}"
        snap = TaskRunSnapshot(
            id=run_id,
            name=f"{name}-x",
            task_name=name,
            flow_run_id=flow_id,
            parameters={},
            tags=(),
            cache_key=None,
            upstream_ids=(),
            run_count=0,
            state=self._stamp(state),
            host=HOST,
            pid=PID,
        )
        self.store.record_task_run(snap)
        self.tasks[run_id] = {"snap": snap, "states": [state]}
        return run_id

    @rule(flow_id=flow_ids, state=states())
    def flow_state_change(self, flow_id, state):
        entry = self.flows[flow_id]
        snap = entry["snap"]._replace(state=self._stamp(state), run_count=len(entry["states"]))
        self.store.record_flow_run(snap)
        if _stays_crashed(entry, state):
            return
        entry["snap"] = snap
        entry["states"].append(state)

    @rule(task_id=task_ids, state=states())
    def task_state_change(self, task_id, state):
        entry = self.tasks[task_id]
        snap = entry["snap"]._replace(state=self._stamp(state))
        self.store.record_task_run(snap)
        if _stays_crashed(entry, state):
            return
        entry["snap"] = snap
        entry["states"].append(state)

    @rule(task_id=task_ids, message=st.text(max_size=30))
    def log(self, task_id, message):
        self.tick += 1
        entry = LogEntry(
            flow_run_id=self.tasks[task_id]["snap"].flow_run_id,
            task_run_id=task_id,
            level=20,
            logger="wfkit.task_runs",
            message=message,
            timestamp=T0 + timedelta(seconds=self.tick),
        )
        self.store.record_log(entry)
        self.logs.append(entry)

    @rule()
    def flush(self):
        self.store.flush()

    @invariant()
    def reads_match_the_model(self):
        def start_key(entry):
            running = [s.timestamp for s in entry["states"] if s.type.value == "RUNNING"]
            return running[0] if running else entry["states"][0].timestamp

        expected_order = [k for k, _ in sorted(self.flows.items(), key=lambda kv: start_key(kv[1]))]
        records = self.store.flow_runs()
        assert [r.id for r in records] == expected_order
        for tag in TAGS:
            carrying = [k for k in expected_order if tag in self.flows[k]["snap"].tags]
            assert [r.id for r in self.store.flow_runs(tags=[tag])] == carrying
        middle = T0 + timedelta(seconds=self.tick // 2)
        starts = {k: start_key(entry) for k, entry in self.flows.items()}
        since = [r.id for r in self.store.flow_runs(since=middle)]
        until = [r.id for r in self.store.flow_runs(until=middle)]
        assert since == [k for k in expected_order if starts[k] >= middle]
        assert until == [k for k in expected_order if starts[k] < middle]
        for record in records:
            want = self.flows[record.id]["states"]
            assert [(s.name, s.type, s.message, s.timestamp) for s in record.states] == [
                (s.name, s.type, s.message, s.timestamp) for s in want
            ]
            assert record.run_count == self.flows[record.id]["snap"].run_count
        task_records = self.store.task_runs()
        assert [r.id for r in task_records] == list(self.tasks)
        for record in task_records:
            assert record.state_names == [s.name for s in self.tasks[record.id]["states"]]
        assert [(r.task_run_id, r.message) for r in self.store.logs()] == [
            (e.task_run_id, e.message) for e in self.logs
        ]

    def teardown(self):
        self.store.close()
        self._dir.cleanup()


class MemoryStoreMachine(StoreMachine):
    def make_store(self, directory: Path) -> RunStore:
        return MemoryStore()


class SqliteStoreMachine(StoreMachine):
    def make_store(self, directory: Path) -> RunStore:
        return SqliteStore(directory / "machine.db")


TestMemoryStoreMachine = MemoryStoreMachine.TestCase
TestMemoryStoreMachine.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestSqliteStoreMachine = SqliteStoreMachine.TestCase
TestSqliteStoreMachine.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
