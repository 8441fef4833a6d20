"""Flow and Task objects: defaults, ``.fn`` and ``with_options`` (SPEC §3.1, §3.2)."""

from __future__ import annotations

import hashlib
import inspect
import typing
from pathlib import Path
from typing import Any

import pytest

from wfkit import Flow, State, Task, flow, task
from wfkit.context import Runtime

from ._support import only_run

THIS_FILE_MD5 = hashlib.md5(Path(__file__).read_bytes()).hexdigest()


def load_data_into_warehouse(x: int = 1) -> int:
    """Load the data.

    Then check it twice.
    """
    return x * 2


async def async_load_data(x: int = 1) -> int:
    """Load asynchronously."""
    return x * 2


BODIES = [
    pytest.param(load_data_into_warehouse, id="sync"),
    pytest.param(async_load_data, id="async"),
]


@pytest.mark.parametrize("body", BODIES)
def test_flow_defaults(body: Any) -> None:
    decorated = flow(body)

    assert isinstance(decorated, Flow)
    assert decorated.name == body.__name__.replace("_", "-")
    assert decorated.description == inspect.getdoc(body)
    assert decorated.version == THIS_FILE_MD5
    assert decorated.retries == 0
    assert decorated.timeout_seconds is None


@pytest.mark.parametrize("body", BODIES)
def test_task_defaults(body: Any) -> None:
    decorated = task(body)

    assert isinstance(decorated, Task)
    assert decorated.name == body.__name__
    assert decorated.description == inspect.getdoc(body)
    assert decorated.tags == ()
    assert decorated.retries == 0


def test_flow_name_replaces_underscores() -> None:
    assert flow(load_data_into_warehouse).name == "load-data-into-warehouse"


def test_task_name_is_unchanged() -> None:
    assert task(load_data_into_warehouse).name == "load_data_into_warehouse"


def test_explicit_name_description_version() -> None:
    decorated = flow(name="etl", description="Moves data.", version="v2")(load_data_into_warehouse)

    assert (decorated.name, decorated.description, decorated.version) == (
        "etl",
        "Moves data.",
        "v2",
    )


def test_version_can_be_none() -> None:
    assert flow(version=None)(load_data_into_warehouse).version is None


def test_version_is_none_without_a_source_file() -> None:
    namespace: dict[str, Any] = {}
    exec("def made_up():\n    return 1\n", namespace)

    assert flow(namespace["made_up"]).version is None


def test_flow_version_is_recorded(runtime: Runtime, mode: Any) -> None:
    decorated = flow(async_load_data if mode.is_async else load_data_into_warehouse)

    mode.call(decorated)

    assert only_run(runtime, "flow").flow_version == THIS_FILE_MD5


def test_flow_name_is_recorded(runtime: Runtime, mode: Any) -> None:
    mode.call(flow(async_load_data if mode.is_async else load_data_into_warehouse))

    assert only_run(runtime, "flow").flow_name == (
        "async-load-data" if mode.is_async else "load-data-into-warehouse"
    )


def test_task_name_is_recorded(runtime: Runtime, mode: Any) -> None:
    mode.call(task(async_load_data if mode.is_async else load_data_into_warehouse))

    assert only_run(runtime, "task").task_name == (
        "async_load_data" if mode.is_async else "load_data_into_warehouse"
    )


@pytest.mark.parametrize("decorator", [flow, task])
@pytest.mark.parametrize("body", BODIES)
def test_fn_is_the_raw_function(runtime: Runtime, decorator: Any, body: Any) -> None:
    decorated = decorator(body)

    assert decorated.fn is body
    assert runtime.store.flow_runs() == [] and runtime.store.task_runs() == []


def test_calling_fn_records_no_run(runtime: Runtime) -> None:
    decorated = flow(load_data_into_warehouse)

    assert decorated.fn(4) == 8
    assert runtime.store.flow_runs() == []


def test_decorated_keeps_the_function_identity() -> None:
    decorated = flow(load_data_into_warehouse)

    assert decorated.__name__ == "load_data_into_warehouse"
    assert decorated.__doc__ == load_data_into_warehouse.__doc__
    assert decorated.__wrapped__ is load_data_into_warehouse
    assert decorated.__module__ == __name__


@pytest.mark.parametrize("decorator", [flow, task])
def test_bare_and_called_decorators_are_the_same(decorator: Any) -> None:
    bare = decorator(load_data_into_warehouse)
    called = decorator()(load_data_into_warehouse)

    assert type(bare) is type(called)
    assert bare.name == called.name


# -- with_options --------------------------------------------------------------------------------
@pytest.mark.parametrize("body", BODIES)
def test_flow_with_options_returns_a_new_flow(body: Any) -> None:
    original = flow(retries=1, timeout_seconds=5)(body)

    changed = original.with_options(name="renamed", retries=3)

    assert isinstance(changed, Flow)
    assert changed is not original
    assert (changed.name, changed.retries, changed.timeout_seconds) == ("renamed", 3, 5.0)
    assert (original.name, original.retries, original.timeout_seconds) == (
        body.__name__.replace("_", "-"),
        1,
        5.0,
    )
    assert changed.fn is original.fn


@pytest.mark.parametrize("body", BODIES)
def test_task_with_options_returns_a_new_task(body: Any) -> None:
    original = task(tags=["a"], retries=1)(body)

    changed = original.with_options(tags=["b"], retry_delay_seconds=[1, 2])

    assert isinstance(changed, Task)
    assert changed is not original
    assert changed.tags == ("b",)
    assert changed.retries == 1
    assert changed.options.retry_delay_seconds == (1.0, 2.0)
    assert original.tags == ("a",)
    assert original.options.retry_delay_seconds == 0.0
    assert changed.fn is original.fn


def test_with_options_validates_the_changes() -> None:
    from wfkit.exceptions import ConfigurationError

    original = task(load_data_into_warehouse)

    with pytest.raises(ConfigurationError, match="retries=-2"):
        original.with_options(retries=-2)
    with pytest.raises(TypeError, match="retires"):
        original.with_options(retires=2)


def test_with_options_keeps_derived_defaults() -> None:
    changed = flow(load_data_into_warehouse).with_options(retries=2)

    assert changed.name == "load-data-into-warehouse"
    assert changed.version == THIS_FILE_MD5
    assert changed.description == inspect.getdoc(load_data_into_warehouse)


def test_with_options_runs_under_the_new_options(runtime: Runtime, mode: Any, kind: str) -> None:
    original = mode.make(kind, lambda: "x", name="before")

    assert mode.call(original.with_options(name="after")) == "x"
    assert mode.call(original) == "x"

    if kind == "flow":
        assert [r.flow_name for r in runtime.store.flow_runs()] == ["after", "before"]
    else:
        assert [r.task_name for r in runtime.store.task_runs()] == ["after", "before"]


# -- generic types ---------------------------------------------------------------------------------
def test_flow_task_and_state_are_subscriptable_at_run_time() -> None:
    # Annotations such as Task[[int], int] may be evaluated (typing.get_type_hints, pydantic).
    def uses(t: Task[[int], int], f: Flow[[], None], s: State[int]) -> None: ...

    hints = typing.get_type_hints(uses)

    assert typing.get_origin(hints["t"]) is Task
    assert typing.get_args(hints["f"]) == ((), type(None))
    assert typing.get_args(hints["s"]) == (int,)
