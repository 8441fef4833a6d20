"""Binding and validating parameters (SPEC §3.1)."""

from __future__ import annotations

from typing import Any

import pytest

from wfkit import flow, task
from wfkit.context import Runtime
from wfkit.exceptions import ParameterBindError, ParameterTypeError, WfkitError

from ._support import only_run, runs_of


def test_values_are_coerced_from_type_hints(runtime: Runtime, mode: Any) -> None:
    seen: list[Any] = []

    def body(x: int) -> int:
        seen.append(x)
        return x * 2

    assert mode.call(mode.flow(body), "5") == 10

    assert seen == [5]
    assert type(seen[0]) is int
    run = only_run(runtime, "flow")
    assert run.parameters == {"x": 5}
    assert type(run.parameters["x"]) is int


def test_invalid_value_records_a_failed_run_and_never_runs_the_body(
    runtime: Runtime, mode: Any
) -> None:
    ran: list[Any] = []

    def body(x: int) -> int:
        ran.append(x)
        return x

    with pytest.raises(ParameterTypeError) as info:
        mode.call(mode.flow(body), "abc")

    assert ran == []
    assert isinstance(info.value, WfkitError)
    message = str(info.value)
    assert "- x: Input should be a valid integer" in message
    assert "'abc'" in message
    run = only_run(runtime, "flow")
    assert run.state_names == ["Pending", "Failed"]
    assert run.run_count == 0
    assert run.state.exception is info.value
    assert "- x: Input should be a valid integer" in run.state.message
    assert run.parameters == {"x": "abc"}


def test_each_bad_parameter_is_listed(runtime: Runtime, mode: Any) -> None:
    def body(x: int, y: float, z: str = "ok") -> None:
        pass

    with pytest.raises(ParameterTypeError) as info:
        mode.call(mode.flow(body), "one", y="two")

    lines = str(info.value).splitlines()
    assert any(line.startswith("- x: ") for line in lines)
    assert any(line.startswith("- y: ") for line in lines)
    assert not any(line.startswith("- z: ") for line in lines)


def test_coerced_values_name_the_run(runtime: Runtime, mode: Any) -> None:
    def body(x: int) -> int:
        return x

    mode.call(mode.flow(body, flow_run_name="n-{x:03d}"), "5")

    assert only_run(runtime, "flow").name == "n-005"


def test_invalid_value_is_reported_even_when_the_run_name_needs_it(
    runtime: Runtime, mode: Any
) -> None:
    """The run name template cannot be rendered from an invalid value; the caller must still
    get ParameterTypeError and a Failed run must still be recorded (SPEC §3.1)."""

    def body(x: int) -> int:
        return x

    with pytest.raises(ParameterTypeError, match="- x: "):
        mode.call(mode.flow(body, flow_run_name="n-{x:03d}"), "abc")

    assert only_run(runtime, "flow").state_names == ["Pending", "Failed"]


def test_invalid_value_with_return_state_returns_the_failed_state(
    runtime: Runtime, mode: Any
) -> None:
    def body(x: int) -> int:
        return x

    state = mode.call(mode.flow(body), "abc", return_state=True)

    assert state.is_failed()
    assert isinstance(state.exception, ParameterTypeError)


def test_invalid_value_is_not_retried(runtime: Runtime, mode: Any) -> None:
    def body(x: int) -> int:
        return x

    with pytest.raises(ParameterTypeError):
        mode.call(mode.flow(body, retries=3, retry_delay_seconds=10), "abc")

    assert only_run(runtime, "flow").state_names == ["Pending", "Failed"]
    assert runtime.clock.sleeps == []


def test_validation_can_be_turned_off(runtime: Runtime, mode: Any) -> None:
    seen: list[Any] = []

    def body(x: int) -> Any:
        seen.append(x)
        return x

    assert mode.call(mode.flow(body, validate_parameters=False), "5") == "5"

    assert seen == ["5"]
    assert only_run(runtime, "flow").parameters == {"x": "5"}


def test_values_of_the_right_type_pass_unchanged(runtime: Runtime, mode: Any) -> None:
    marker = object()

    def body(x: int, y: Any, z: list[int]) -> Any:
        return y

    assert mode.call(mode.flow(body), 1, marker, [1, 2]) is marker


def test_parameters_of_a_pydantic_type_are_coerced(runtime: Runtime, mode: Any) -> None:
    def body(xs: list[int], flag: bool) -> Any:
        return xs, flag

    assert mode.call(mode.flow(body), ["1", 2], "yes") == ([1, 2], True)


def test_defaults_are_recorded(runtime: Runtime, mode: Any, kind: str) -> None:
    def body(x: int, y: int = 3, *, label: str = "l") -> int:
        return x + y

    assert mode.call(mode.make(kind, body), 1) == 4

    assert only_run(runtime, kind).parameters == {"x": 1, "y": 3, "label": "l"}


def test_var_args_are_recorded(runtime: Runtime, mode: Any, kind: str) -> None:
    def body(*args: int, **kwargs: int) -> int:
        return sum(args) + sum(kwargs.values())

    assert mode.call(mode.make(kind, body), 1, 2, c=3) == 6

    assert only_run(runtime, kind).parameters == {"args": (1, 2), "kwargs": {"c": 3}}


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        pytest.param((), {}, id="missing"),
        pytest.param((1, 2), {}, id="too-many"),
        pytest.param((1,), {"nope": 2}, id="unknown-keyword"),
        pytest.param((1,), {"x": 2}, id="given-twice"),
    ],
)
def test_bad_arguments_raise_bind_error_and_record_nothing(
    runtime: Runtime, mode: Any, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    ran: list[Any] = []

    def body(x: int) -> None:
        ran.append(x)

    with pytest.raises(ParameterBindError) as info:
        mode.call(mode.make(kind, body), *args, **kwargs)

    assert isinstance(info.value, TypeError)
    assert ran == []
    assert runs_of(runtime, kind) == []
    assert runtime.store.logs() == []
    message = str(info.value)
    assert "(x: " in message  # the signature is shown
    assert f"args={args!r}" in message


def test_bind_error_names_the_flow(runtime: Runtime) -> None:
    @flow(name="my-etl")
    def etl(day: str) -> None:
        pass

    with pytest.raises(ParameterBindError, match="'my-etl'"):
        etl()


def test_tasks_do_not_validate_types(runtime: Runtime, mode: Any) -> None:
    def body(x: int) -> Any:
        return x

    assert mode.call(mode.task(body), "5") == "5"


def test_parameters_recorded_for_tasks_inside_flows(runtime: Runtime, mode: Any) -> None:
    @task
    def add(a: int, b: int = 10) -> int:
        return a + b

    assert mode.call(mode.flow(lambda: add(1))) == 11

    assert only_run(runtime, "task").parameters == {"a": 1, "b": 10}


def test_parameters_typed_with_a_plain_protocol_are_passed_unvalidated(runtime):
    from typing import Protocol

    class Greeter(Protocol):
        def greet(self) -> str: ...

    class English:
        def greet(self) -> str:
            return "hello"

    @flow
    def greet(greeter: Greeter, times: int) -> str:
        return " ".join([greeter.greet()] * times)

    assert greet(English(), "2") == "hello hello"  # the int is still coerced
    (run,) = runtime.store.flow_runs()
    assert run.state_names == ["Pending", "Running", "Completed"]
    with pytest.raises(ParameterTypeError, match="- times: Input should be a valid integer"):
        greet(English(), "many")
