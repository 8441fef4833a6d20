"""``with tags(...)`` nests additively; task tags are unioned with them (SPEC §3.2, §3.8)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import wfkit
import wfkit.runtime
from wfkit import flow, tags, task
from wfkit.context import Runtime, current_tags

from ._support import only_run


def test_tags_nest_additively() -> None:
    with wfkit.tags("a") as outer:
        assert outer == ("a",)
        with tags("b", "a") as inner:
            assert inner == ("a", "b")
            assert current_tags() == ("a", "b")
        assert current_tags() == ("a",)
    assert current_tags() == ()


def test_tags_are_restored_after_an_error() -> None:
    with pytest.raises(ValueError), tags("a"):
        raise ValueError
    assert current_tags() == ()


def test_tags_must_be_strings() -> None:
    with pytest.raises(TypeError, match="42"), tags("ok", 42):  # type: ignore[arg-type]
        pass


def test_flow_runs_record_the_context_tags(runtime: Runtime, mode: Any) -> None:
    decorated = mode.flow(lambda: None)

    with tags("a"), tags("b"):
        mode.call(decorated)
    mode.call(decorated)

    first, second = runtime.store.flow_runs()
    assert set(first.tags) == {"a", "b"}
    assert second.tags == ()


def test_task_tags_are_unioned_with_context_tags(runtime: Runtime, mode: Any) -> None:
    decorated = mode.task(lambda: None, tags=["own", "shared"])

    with tags("outer", "shared"):
        with tags("inner"):
            mode.call(decorated)

    assert set(only_run(runtime, "task").tags) == {"own", "shared", "outer", "inner"}
    assert len(only_run(runtime, "task").tags) == 4


def test_task_without_context_tags_has_its_own(runtime: Runtime, mode: Any) -> None:
    mode.call(mode.task(lambda: None, tags=["own"]))

    assert only_run(runtime, "task").tags == ("own",)


def test_tags_inside_a_flow_reach_its_tasks(runtime: Runtime, mode: Any) -> None:
    step = task(lambda: None, tags=["step"])

    def body() -> None:
        step()
        with tags("inside"):
            step()

    with tags("around"):
        mode.call(mode.flow(body))

    first, second = runtime.store.task_runs()
    assert set(first.tags) == {"around", "step"}
    assert set(second.tags) == {"around", "inside", "step"}
    assert set(only_run(runtime, "flow").tags) == {"around"}


def test_child_flows_record_tags_added_inside_the_parent(runtime: Runtime, mode: Any) -> None:
    child = flow(lambda: None, name="child")

    def body() -> None:
        with tags("for-child"):
            child()

    with tags("top"):
        mode.call(mode.flow(body, name="parent"))

    runs = {r.flow_name: r for r in runtime.store.flow_runs()}
    assert set(runs["parent"].tags) == {"top"}
    assert set(runs["child"].tags) == {"top", "for-child"}


def test_tags_reach_async_tasks_in_async_flows(runtime: Runtime) -> None:
    @task(tags=["t"])
    async def step() -> None:
        pass

    @flow
    async def outer() -> None:
        with tags("inside"):
            await step()

    with tags("around"):
        asyncio.run(outer())

    assert set(only_run(runtime, "task").tags) == {"around", "inside", "t"}


def test_runtime_tags_inside_a_task(runtime: Runtime, mode: Any) -> None:
    seen: list[list[str]] = []
    decorated = mode.task(lambda: seen.append(wfkit.runtime.task_run.tags), tags=["own"])

    with tags("ctx"):
        mode.call(decorated)

    assert set(seen[0]) == {"own", "ctx"}
