"""``wfkit.runtime.flow_run`` / ``task_run`` read the live run (SPEC §3.8)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import wfkit.runtime
from wfkit import flow, tags, task
from wfkit.context import Runtime
from wfkit.runtime import flow_run, task_run

from ._support import only_run

FLOW_ATTRIBUTES = [
    "id",
    "name",
    "flow_name",
    "flow_version",
    "parameters",
    "tags",
    "run_count",
    "parent_flow_run_id",
    "root_flow_run_id",
    "scheduled_start_time",
]
TASK_ATTRIBUTES = ["id", "name", "task_name", "parameters", "tags", "run_count"]


def snapshot(module: Any, attributes: list[str]) -> dict[str, Any]:
    return {a: getattr(module, a) for a in attributes}


def test_flow_run_inside_a_flow_matches_the_record(runtime: Runtime, mode: Any) -> None:
    seen: dict[str, Any] = {}

    def body(x: int, y: str = "why") -> None:
        seen.update(snapshot(flow_run, FLOW_ATTRIBUTES))

    runtime.clock.advance(10)
    with tags("t1"):
        mode.call(mode.flow(body, name="observed"), 3)

    run = only_run(runtime, "flow")
    assert seen == {
        "id": run.id,
        "name": run.name,
        "flow_name": "observed",
        "flow_version": run.flow_version,
        "parameters": {"x": 3, "y": "why"},
        "tags": ["t1"],
        "run_count": 1,
        "parent_flow_run_id": None,
        "root_flow_run_id": run.id,
        "scheduled_start_time": runtime.clock.start + timedelta(seconds=10),
    }
    assert run.parameters == seen["parameters"]


def test_flow_run_inside_a_child_flow(runtime: Runtime, mode: Any) -> None:
    seen: dict[str, Any] = {}
    child = flow(lambda: seen.update(snapshot(flow_run, FLOW_ATTRIBUTES)), name="child")

    mode.call(mode.flow(lambda: child(), name="parent"))

    runs = {r.flow_name: r for r in runtime.store.flow_runs()}
    assert seen["id"] == runs["child"].id
    assert seen["parent_flow_run_id"] == runs["parent"].id
    assert seen["root_flow_run_id"] == runs["parent"].id


def test_task_run_inside_a_task_matches_the_record(runtime: Runtime, mode: Any) -> None:
    seen: dict[str, Any] = {}

    @task(tags=["own"], task_run_name="step-{x}")
    def step(x: int) -> None:
        seen.update(snapshot(task_run, TASK_ATTRIBUTES))
        seen["flow_run.id"] = flow_run.id

    mode.call(mode.flow(lambda: step(4)))

    run = only_run(runtime, "task")
    assert seen == {
        "id": run.id,
        "name": "step-4",
        "task_name": "step",
        "parameters": {"x": 4},
        "tags": ["own"],
        "run_count": 1,
        "flow_run.id": only_run(runtime, "flow").id,
    }


def test_task_run_is_neutral_in_the_flow_body(runtime: Runtime, mode: Any) -> None:
    seen: dict[str, Any] = {}

    mode.call(mode.flow(lambda: seen.update(snapshot(task_run, TASK_ATTRIBUTES))))

    assert seen == {
        "id": None,
        "name": None,
        "task_name": None,
        "parameters": {},
        "tags": [],
        "run_count": 0,
    }


def test_task_run_inside_an_async_task(runtime: Runtime) -> None:
    import asyncio

    seen: dict[str, Any] = {}

    @task
    async def step(x: int) -> None:
        seen.update(snapshot(task_run, TASK_ATTRIBUTES))

    asyncio.run(step(2))

    assert seen["id"] == only_run(runtime, "task").id
    assert seen["parameters"] == {"x": 2}


def test_neutral_values_outside_a_run() -> None:
    assert snapshot(flow_run, FLOW_ATTRIBUTES) == {
        "id": None,
        "name": None,
        "flow_name": None,
        "flow_version": None,
        "parameters": {},
        "tags": [],
        "run_count": 0,
        "parent_flow_run_id": None,
        "root_flow_run_id": None,
        "scheduled_start_time": None,
    }
    assert snapshot(task_run, TASK_ATTRIBUTES) == {
        "id": None,
        "name": None,
        "task_name": None,
        "parameters": {},
        "tags": [],
        "run_count": 0,
    }


def test_neutral_values_are_fresh_copies() -> None:
    flow_run.parameters["x"] = 1
    task_run.tags.append("leak")

    assert flow_run.parameters == {}
    assert task_run.tags == []


def test_values_revert_after_the_run(runtime: Runtime, mode: Any) -> None:
    mode.call(mode.flow(lambda: None))

    assert flow_run.id is None


def test_unknown_attribute_lists_the_available_ones() -> None:
    with pytest.raises(AttributeError) as info:
        wfkit.runtime.flow_run.nope  # noqa: B018

    assert "'nope'" in str(info.value)
    assert "flow_name" in str(info.value)
    with pytest.raises(AttributeError, match="task_name"):
        wfkit.runtime.task_run.nope  # noqa: B018


def test_parameters_inside_are_a_copy(runtime: Runtime, mode: Any) -> None:
    def body(x: int) -> None:
        flow_run.parameters["x"] = 99

    mode.call(mode.flow(body), 1)

    assert only_run(runtime, "flow").parameters == {"x": 1}
