"""A flow run's final state is recorded only after every task run it submitted has reached
one (issue 12: it used to be recorded Completed while a submitted run was still going)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import wfkit
from wfkit import flow, task
from wfkit.context import use_runtime
from wfkit.testing import harness


class StateOrder:
    """Records (kind, name, state) for every state change, in the order published."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.flow_final = threading.Event()

    @wfkit.hookimpl
    def wfkit_flow_run_state_changed(self, new_state: Any) -> None:
        self.events.append(("flow", new_state.name))
        if new_state.is_final():
            self.flow_final.set()

    @wfkit.hookimpl
    def wfkit_task_run_state_changed(self, task_run: Any, new_state: Any) -> None:
        self.events.append((task_run.task_name, new_state.name))


@pytest.fixture
def order():
    plugin = StateOrder()
    wfkit.register_plugin(plugin)
    try:
        yield plugin
    finally:
        wfkit._plugins.unregister_plugin(plugin)


def _final_positions(events: list[tuple[str, str]]) -> dict[str, int]:
    finals = {"Completed", "Failed", "TimedOut", "Crashed", "Cancelled"}
    return {who: i for i, (who, name) in enumerate(events) if name in finals}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_flow_run_ends_after_a_run_it_submitted_and_never_waited_for(
    order: StateOrder, kind: str
) -> None:
    # Before the fix the flow recorded Completed at once; this task then saw that and ended.
    @task
    def straggler() -> str:
        order.flow_final.wait(timeout=0.5)
        return "late"

    if kind == "sync":

        @flow
        def forgetful() -> str:
            straggler.submit()
            return "done"

        run = forgetful
    else:

        @flow
        async def forgetful_async() -> str:
            straggler.submit()
            return "done"

        def run() -> str:
            return asyncio.run(forgetful_async())

    with use_runtime(store="memory://"):
        assert run() == "done"

    finals = _final_positions(order.events)
    assert finals["straggler"] < finals["flow"], order.events


def test_the_flow_run_ends_after_a_failing_body_s_submitted_runs(order: StateOrder) -> None:
    @task
    def straggler() -> None:
        order.flow_final.wait(timeout=0.5)

    @flow
    def broken() -> None:
        straggler.submit()
        raise ValueError("the body failed")

    with use_runtime(store="memory://"):
        state = broken(return_state=True)

    assert state.is_failed()
    finals = _final_positions(order.events)
    assert finals["straggler"] < finals["flow"], order.events


def test_under_the_fake_clock_the_flow_ends_when_its_last_submitted_run_did() -> None:
    @task(timeout_seconds=30)
    def sleeper() -> None:
        time.sleep(60)  # virtual: TimedOut at t = 30 s

    @flow
    def fire_and_forget() -> None:
        sleeper.submit()

    with harness(start="2026-01-01T00:00:00Z") as h:
        fire_and_forget()
        task_end = h.task_run(sleeper).end_time
        flow_end = h.flow_run(fire_and_forget).end_time

    assert h.task_run(sleeper).state.name == "TimedOut"
    assert task_end is not None and flow_end is not None
    assert (task_end - h.clock.start).total_seconds() == 30
    assert flow_end >= task_end


def test_a_generator_flow_ends_after_its_submitted_runs(order: StateOrder) -> None:
    @task
    def straggler() -> None:
        order.flow_final.wait(timeout=0.5)

    @flow
    def streams():
        straggler.submit()
        yield 1
        yield 2

    with use_runtime(store="memory://"):
        assert list(streams()) == [1, 2]

    finals = _final_positions(order.events)
    assert finals["straggler"] < finals["flow"], order.events
