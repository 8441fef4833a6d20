"""Flows and tasks as instance methods, classmethods and staticmethods (SPEC §3.1)."""

from __future__ import annotations

from typing import Any

from wfkit import Flow, Task
from wfkit.context import Runtime

from ._support import only_run


def make_class(mode: Any, kind: str) -> type:
    decorate = mode.flow if kind == "flow" else mode.task

    class Pipeline:
        factor = 10

        def __init__(self, offset: int) -> None:
            self.offset = offset

        @decorate
        def instance_step(self, x: int) -> int:
            return x + self.offset

        @decorate
        @classmethod
        def class_step(cls, x: int) -> int:
            return x * cls.factor

        @decorate
        @staticmethod
        def static_step(x: int) -> int:
            return x - 1

    return Pipeline


def test_instance_method(runtime: Runtime, mode: Any, kind: str) -> None:
    pipeline = make_class(mode, kind)(offset=100)

    assert mode.call(pipeline.instance_step, 1) == 101
    assert mode.call(pipeline.instance_step, x=2) == 102

    runs = runtime.store.flow_runs() if kind == "flow" else runtime.store.task_runs()
    assert [r.parameters for r in runs] == [{"x": 1}, {"x": 2}]


def test_classmethod(runtime: Runtime, mode: Any, kind: str) -> None:
    cls = make_class(mode, kind)

    assert mode.call(cls.class_step, 2) == 20
    assert mode.call(cls(offset=0).class_step, 3) == 30

    runs = runtime.store.flow_runs() if kind == "flow" else runtime.store.task_runs()
    assert [r.parameters for r in runs] == [{"x": 2}, {"x": 3}]


def test_staticmethod(runtime: Runtime, mode: Any, kind: str) -> None:
    cls = make_class(mode, kind)

    assert mode.call(cls.static_step, 5) == 4
    assert mode.call(cls(offset=0).static_step, 6) == 5

    runs = runtime.store.flow_runs() if kind == "flow" else runtime.store.task_runs()
    assert [r.parameters for r in runs] == [{"x": 5}, {"x": 6}]


def test_method_flows_are_still_flows(runtime: Runtime, mode: Any, kind: str) -> None:
    cls = make_class(mode, kind)
    expected = Flow if kind == "flow" else Task

    assert isinstance(cls.__dict__["instance_step"], expected)
    assert isinstance(cls(offset=1).instance_step, expected)
    assert isinstance(cls.class_step, expected)
    assert isinstance(cls.static_step, expected)


def test_bound_method_keeps_its_instance_apart(runtime: Runtime, mode: Any, kind: str) -> None:
    cls = make_class(mode, kind)
    a, b = cls(offset=1), cls(offset=2)

    assert mode.call(a.instance_step, 0) == 1
    assert mode.call(b.instance_step, 0) == 2


def test_method_with_options_keeps_the_binding(runtime: Runtime, mode: Any, kind: str) -> None:
    pipeline = make_class(mode, kind)(offset=7)

    renamed = pipeline.instance_step.with_options(name="renamed")

    assert mode.call(renamed, 1) == 8
    run = only_run(runtime, kind)
    assert run.parameters == {"x": 1}
    assert (run.flow_name if kind == "flow" else run.task_name) == "renamed"


def test_classmethod_with_options(runtime: Runtime, mode: Any, kind: str) -> None:
    cls = make_class(mode, kind)

    assert mode.call(cls.class_step.with_options(name="renamed"), 4) == 40
    assert only_run(runtime, kind).parameters == {"x": 4}


def test_method_validation_skips_self(runtime: Runtime, mode: Any) -> None:
    pipeline = make_class(mode, "flow")(offset=1)

    assert mode.call(pipeline.instance_step, "41") == 42
    assert only_run(runtime, "flow").parameters == {"x": 41}
