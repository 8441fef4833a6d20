"""Runs are readable from the store as soon as the call returns (SPEC §4.5)."""

from __future__ import annotations

from typing import Any

import pytest

from wfkit import flow, task
from wfkit.clock import FakeClock
from wfkit.context import Runtime, use_runtime


def test_completed_run_is_visible_immediately(runtime: Runtime, mode: Any, kind: str) -> None:
    decorated = mode.make(kind, lambda: 1)

    mode.call(decorated)
    runs = runtime.store.flow_runs() if kind == "flow" else runtime.store.task_runs()

    assert [r.state_names for r in runs] == [["Pending", "Running", "Completed"]]


def test_failed_run_is_visible_when_the_error_reaches_the_caller(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        mode.call(mode.make(kind, boom))
    runs = runtime.store.flow_runs() if kind == "flow" else runtime.store.task_runs()

    assert runs[0].state_names == ["Pending", "Running", "Failed"]


def test_every_run_of_a_flow_is_visible(runtime: Runtime, mode: Any) -> None:
    step = task(lambda x: x)

    mode.call(mode.flow(lambda: [step(i) for i in range(20)]))

    assert len(runtime.store.task_runs()) == 20
    assert all(r.state.name == "Completed" for r in runtime.store.task_runs())


def test_history_is_visible_while_the_run_is_going(runtime: Runtime, mode: Any) -> None:
    seen: list[list[str]] = []

    def body() -> None:
        [current] = runtime.store.flow_runs()
        seen.append(current.state_names)

    mode.call(mode.flow(body))

    assert seen == [["Pending", "Running"]]


def test_visible_in_a_sqlite_store(tmp_path: Any, mode: Any) -> None:
    url = f"sqlite:///{tmp_path / 'wf.db'}"
    with use_runtime(clock=FakeClock("2026-01-01T00:00:00Z"), store=url) as rt:
        mode.call(mode.flow(lambda: 1, name="to-sqlite"))
        runs = rt.store.flow_runs()

    assert [(r.flow_name, r.state_names) for r in runs] == [
        ("to-sqlite", ["Pending", "Running", "Completed"])
    ]


def test_flow_runs_in_start_order(runtime: Runtime) -> None:
    decorated = flow(lambda i: i, name="ordered")

    for i in range(3):
        runtime.clock.advance(1)
        decorated(i)

    assert [r.parameters["i"] for r in runtime.store.flow_runs()] == [0, 1, 2]
