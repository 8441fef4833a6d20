"""Odd arguments: values that contain themselves, and values nested thousands of levels
deep, passed to tasks and flows (issue 12, item 8). No raw RecursionError: a value that
contains itself is passed as it is and recorded as its repr; one nested deeper than
``MAX_DEPTH`` is refused with an error naming the parameter."""

from __future__ import annotations

from typing import Any

import pytest

import wfkit
from wfkit._engine.inputs import MAX_DEPTH
from wfkit.exceptions import ConfigurationError
from wfkit.testing import harness


def self_list() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


def self_dict() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["me"] = value
    return value


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@wfkit.task
def length(x: Any, y: Any = None) -> int:
    return len(x)


@wfkit.flow
def flow_length(x: Any) -> int:
    return len(x)


@pytest.mark.parametrize(
    ("make", "recorded"), [(self_list, "[[...]]"), (self_dict, "{'me': {...}}")]
)
@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_value_containing_itself_is_passed_and_recorded_as_its_repr(
    make: Any, recorded: str, store: str
) -> None:
    value = make()
    with harness(store=store) as h:
        assert length(value) == 1
        assert flow_length(value) == 1
        task_run, flow_run = h.task_run(length), h.flow_run(flow_length)
    assert task_run.state.name == flow_run.state.name == "Completed"
    if store == "sqlite":  # (the memory store keeps the value itself)
        assert task_run.parameters["x"] == flow_run.parameters["x"] == recorded


def test_a_value_containing_itself_next_to_a_future_reaches_the_task() -> None:
    value = self_list()

    @wfkit.flow
    def pipeline() -> int:
        return length(value, length.submit([1, 2]))

    with harness(store="sqlite") as h:
        assert pipeline() == 1
        run = h.task_runs(length)[-1]
    assert run.parameters["x"] == "[[...]]"
    assert run.parameters["y"].startswith("<future of task run ")


def test_a_value_nested_too_deep_for_a_task_names_the_parameter() -> None:
    with harness() as h, pytest.raises(ConfigurationError) as info:
        length(nested(5_000))
    assert f"parameter 'x' (a list) is nested more than {MAX_DEPTH} levels" in str(info.value)
    assert "quote(x)" in str(info.value)
    assert h.task_runs() == []  # refused before a run was made


def test_a_deep_value_wrapped_in_quote_is_passed_unseen() -> None:
    with harness():
        assert length(wfkit.quote(nested(5_000))) == 1


def test_a_value_at_the_depth_limit_is_looked_through() -> None:
    with harness() as h:
        assert length(nested(MAX_DEPTH - 1)) == 1
    assert h.task_run(length).state.name == "Completed"


def test_a_value_nested_too_deep_for_a_flow_is_recorded_without_its_repr() -> None:
    with harness(store="sqlite") as h:
        assert flow_length(nested(5_000)) == 1
        run = h.flow_run(flow_length)
    assert run.state.name == "Completed"
    assert run.parameters == {"x": "<list nested too deeply to show>"}


def test_a_flow_returning_a_value_containing_itself_completes() -> None:
    value = self_list()

    @wfkit.flow
    def returns_it() -> Any:
        return value

    with harness():
        assert returns_it() is value
