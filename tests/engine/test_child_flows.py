"""Child flows and the links between runs (SPEC §3.1)."""

from __future__ import annotations

import asyncio
from typing import Any

from wfkit import flow, task
from wfkit.context import Runtime


def by_flow_name(runtime: Runtime) -> dict[str, Any]:
    return {r.flow_name: r for r in runtime.store.flow_runs()}


def test_top_level_flow_is_its_own_root(runtime: Runtime, mode: Any) -> None:
    mode.call(mode.flow(lambda: None, name="alone"))

    [run] = runtime.store.flow_runs()
    assert run.parent_flow_run_id is None
    assert run.parent_task_run_id is None
    assert run.root_flow_run_id == run.id


def test_child_and_grandchild_link_to_parent_and_root(runtime: Runtime, mode: Any) -> None:
    grandchild = flow(lambda: "leaf", name="grandchild")
    child = flow(lambda: grandchild(), name="child")
    parent = mode.flow(lambda: child(), name="parent")

    assert mode.call(parent) == "leaf"

    runs = by_flow_name(runtime)
    assert runs["child"].parent_flow_run_id == runs["parent"].id
    assert runs["grandchild"].parent_flow_run_id == runs["child"].id
    assert runs["child"].root_flow_run_id == runs["parent"].id
    assert runs["grandchild"].root_flow_run_id == runs["parent"].id
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in runs.values())


def test_child_flow_failure_fails_the_parent(runtime: Runtime, mode: Any) -> None:
    def boom() -> None:
        raise ValueError("child broke")

    child = flow(boom, name="child")
    parent = mode.flow(lambda: child(), name="parent")

    state = mode.call(parent, return_state=True)

    assert state.is_failed()
    runs = by_flow_name(runtime)
    assert runs["child"].state.name == "Failed"
    assert runs["parent"].state.name == "Failed"


def test_task_runs_link_to_their_flow_run(runtime: Runtime, mode: Any) -> None:
    step = task(lambda x: x + 1, name="step")
    child = flow(lambda: step(10), name="child")
    parent = mode.flow(lambda: (step(1), child()), name="parent")

    assert mode.call(parent) == (2, 11)

    runs = by_flow_name(runtime)
    parent_tasks = runtime.store.task_runs(flow_run_id=runs["parent"].id)
    child_tasks = runtime.store.task_runs(flow_run_id=runs["child"].id)
    assert [t.parameters for t in parent_tasks] == [{"x": 1}]
    assert [t.parameters for t in child_tasks] == [{"x": 10}]


def test_task_outside_a_flow_has_no_flow_run(runtime: Runtime, mode: Any) -> None:
    mode.call(mode.task(lambda: None))

    [run] = runtime.store.task_runs()
    assert run.flow_run_id is None
    assert runtime.store.flow_runs() == []


def test_flow_called_inside_a_task_records_the_task_run(runtime: Runtime, mode: Any) -> None:
    inner = flow(lambda: "inner", name="inner")
    wrapper = task(lambda: inner(), name="wrapper")
    outer = mode.flow(lambda: wrapper(), name="outer")

    assert mode.call(outer) == "inner"

    runs = by_flow_name(runtime)
    [wrapper_run] = runtime.store.task_runs()
    assert runs["inner"].parent_task_run_id == wrapper_run.id
    assert runs["inner"].parent_flow_run_id == runs["outer"].id
    assert runs["inner"].root_flow_run_id == runs["outer"].id
    assert wrapper_run.flow_run_id == runs["outer"].id


def test_tasks_inside_a_flow_inside_a_task_belong_to_the_inner_flow(runtime: Runtime) -> None:
    leaf = task(lambda: 1, name="leaf")
    inner = flow(lambda: leaf(), name="inner")
    wrapper = task(lambda: inner(), name="wrapper")

    wrapper()

    runs = by_flow_name(runtime)
    [leaf_run] = runtime.store.task_runs(task_name="leaf")
    [wrapper_run] = runtime.store.task_runs(task_name="wrapper")
    assert leaf_run.flow_run_id == runs["inner"].id
    assert wrapper_run.flow_run_id is None
    assert runs["inner"].parent_task_run_id == wrapper_run.id
    assert runs["inner"].parent_flow_run_id is None
    assert runs["inner"].root_flow_run_id == runs["inner"].id


def test_async_child_flows_and_tasks(runtime: Runtime) -> None:
    @task
    async def step(x: int) -> int:
        return x * 2

    @flow(name="child")
    async def child(x: int) -> int:
        return await step(x)

    @flow(name="parent")
    async def parent() -> list[int]:
        return [await child(1), await child(2)]

    assert asyncio.run(parent()) == [2, 4]

    runs = runtime.store.flow_runs()
    parent_run = next(r for r in runs if r.flow_name == "parent")
    children = [r for r in runs if r.flow_name == "child"]
    assert len(children) == 2
    assert all(c.parent_flow_run_id == parent_run.id for c in children)
    assert {t.flow_run_id for t in runtime.store.task_runs()} == {c.id for c in children}


def test_concurrent_async_children_keep_their_own_context(runtime: Runtime) -> None:
    @task
    async def step(x: int) -> int:
        await asyncio.sleep(0)
        return x

    @flow(name="child")
    async def child(x: int) -> int:
        return await step(x)

    @flow(name="parent")
    async def parent() -> list[int]:
        return list(await asyncio.gather(child(1), child(2), child(3)))

    assert asyncio.run(parent()) == [1, 2, 3]

    children = {r.id: r for r in runtime.store.flow_runs() if r.flow_name == "child"}
    for task_run in runtime.store.task_runs():
        assert children[task_run.flow_run_id].parameters == task_run.parameters


def test_run_name_functions_see_their_run_context(runtime):
    from wfkit.runtime import flow_run, task_run

    def task_name_from_context() -> str:
        return f"{task_run.task_name}-{task_run.parameters['who']}-in-{flow_run.flow_name}"

    def flow_name_from_context() -> str:
        return f"{flow_run.flow_name}-with-{flow_run.parameters['who']}"

    @task(task_run_name=task_name_from_context)
    def greet(who: str) -> str:
        return who

    @flow(flow_run_name=flow_name_from_context)
    def greeting(who: str) -> str:
        return greet(who)

    greeting("marvin")
    assert runtime.store.flow_runs()[0].name == "greeting-with-marvin"
    assert runtime.store.task_runs()[0].name == "greet-marvin-in-greeting"
