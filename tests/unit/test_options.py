"""Decorator options are validated at decoration time, with messages naming the option."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from wfkit import flow, task
from wfkit.exceptions import ConfigurationError, ReservedArgumentError, WfkitError
from wfkit.flows import FlowOptionKwargs, FlowOptions
from wfkit.tasks import TaskOptionKwargs, TaskOptions

DECORATORS = [pytest.param(flow, id="flow"), pytest.param(task, id="task")]


def some_function(*args: Any) -> None:
    """A perfectly good hook, passed where a list of hooks is expected."""


def body(x: int = 1) -> int:
    return x


def assert_names(error: BaseException, *fragments: str) -> None:
    message = str(error)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# -- bad values, common to flows and tasks --------------------------------------------------
@pytest.mark.parametrize("decorator", DECORATORS)
@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("retries", -1, "retries=-1"),
        ("retries", 1.5, "retries=1.5"),
        ("retries", "3", "retries='3'"),
        ("retry_delay_seconds", "soon", "retry_delay_seconds='soon'"),
        ("retry_delay_seconds", -1, "retry_delay_seconds=-1"),
        ("timeout_seconds", -5, "timeout_seconds=-5"),
        ("timeout_seconds", "soon", "timeout_seconds='soon'"),
        ("log_prints", "yes", "log_prints='yes'"),
        ("name", "", "name=''"),
        ("name", 3, "name=3"),
        ("description", 3, "description=3"),
    ],
)
def test_bad_value_fails_at_decoration_naming_option_and_value(
    decorator: Any, option: str, value: Any, shown: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        decorator(**{option: value})(body)

    assert_names(info.value, shown)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, WfkitError)


@pytest.mark.parametrize("decorator", DECORATORS)
def test_non_callable_hook_is_rejected(decorator: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        decorator(on_completion=[some_function, 42])(body)

    assert_names(info.value, "on_completion[1]=42", "callable")


@pytest.mark.parametrize("decorator", DECORATORS)
def test_single_hook_instead_of_a_list_is_rejected_with_an_example(decorator: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        decorator(on_failure=some_function)(body)

    assert_names(info.value, "on_failure=", "some_function", "list", "on_failure=[my_hook]")


@pytest.mark.parametrize("decorator", DECORATORS)
def test_string_hook_list_is_rejected(decorator: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        decorator(on_running="some_function")(body)

    assert_names(info.value, "on_running='some_function'")


def test_task_with_51_delays_is_rejected_naming_the_limit() -> None:
    with pytest.raises(ConfigurationError) as info:
        task(retries=51, retry_delay_seconds=list(range(51)))(body)

    assert_names(info.value, "retry_delay_seconds", "51", "50")


def test_task_with_50_delays_is_accepted() -> None:
    decorated = task(retries=50, retry_delay_seconds=list(range(50)))(body)

    assert decorated.options.retry_delay_seconds == tuple(float(i) for i in range(50))


def test_task_with_empty_delay_list_is_rejected() -> None:
    with pytest.raises(ConfigurationError) as info:
        task(retries=1, retry_delay_seconds=[])(body)

    assert_names(info.value, "retry_delay_seconds=[]")


def test_task_with_a_bad_item_in_the_delay_list_names_its_index() -> None:
    with pytest.raises(ConfigurationError) as info:
        task(retries=2, retry_delay_seconds=[1, "soon"])(body)

    assert_names(info.value, "retry_delay_seconds[1]='soon'")


@pytest.mark.parametrize("factor", [-0.5, "lots"])
def test_task_with_bad_jitter_factor_is_rejected(factor: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        task(retry_jitter_factor=factor)(body)

    assert_names(info.value, f"retry_jitter_factor={factor!r}")


def test_task_with_non_callable_retry_condition_is_rejected() -> None:
    with pytest.raises(ConfigurationError) as info:
        task(retry_condition_fn=True)(body)

    assert_names(info.value, "retry_condition_fn=True")


@pytest.mark.parametrize("tags", ["etl", ["etl", 3]])
def test_task_with_bad_tags_is_rejected(tags: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        task(tags=tags)(body)

    assert_names(info.value, f"tags={tags!r}")


def test_flow_delay_must_be_a_number() -> None:
    with pytest.raises(ConfigurationError) as info:
        flow(retries=2, retry_delay_seconds=[1, 2])(body)

    assert_names(info.value, "retry_delay_seconds=[1, 2]")


def test_flow_validate_parameters_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError) as info:
        flow(validate_parameters="no")(body)

    assert_names(info.value, "validate_parameters='no'")


def test_message_names_the_flow() -> None:
    with pytest.raises(ConfigurationError) as info:
        flow(name="nightly-etl", retries=-1)(body)

    assert_names(info.value, "@flow 'nightly-etl'")


# -- reserved parameter names -----------------------------------------------------------------
@pytest.mark.parametrize("decorator", DECORATORS)
@pytest.mark.parametrize("reserved", ["wait_for", "return_state"])
def test_reserved_parameter_name_is_rejected(decorator: Any, reserved: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"def uses_reserved({reserved}=None):\n    return {reserved}\n", namespace)

    with pytest.raises(ReservedArgumentError) as info:
        decorator(namespace["uses_reserved"])

    assert_names(info.value, repr(reserved), "uses_reserved", "Rename")
    assert isinstance(info.value, WfkitError)


# -- run name templates -------------------------------------------------------------------------
def test_flow_run_name_naming_an_unknown_parameter_fails_at_decoration() -> None:
    with pytest.raises(ConfigurationError) as info:
        flow(flow_run_name="run-{day}")(body)

    assert_names(info.value, "flow_run_name='run-{day}'", "{day}", "'x'")


def test_task_run_name_naming_an_unknown_parameter_fails_at_decoration() -> None:
    with pytest.raises(ConfigurationError) as info:
        task(task_run_name="t-{y:>3}")(body)

    assert_names(info.value, "task_run_name='t-{y:>3}'", "{y}")


def test_run_name_with_positional_field_fails_at_decoration() -> None:
    with pytest.raises(ConfigurationError) as info:
        flow(flow_run_name="run-{}")(body)

    assert_names(info.value, "flow_run_name='run-{}'", "positional")


def test_run_name_that_is_not_a_template_fails_at_decoration() -> None:
    with pytest.raises(ConfigurationError) as info:
        flow(flow_run_name="run-{x")(body)

    assert_names(info.value, "flow_run_name='run-{x'")


def test_run_name_template_may_name_anything_with_var_keyword() -> None:
    def kw(**kwargs: Any) -> None: ...

    assert flow(flow_run_name="run-{anything}")(kw).options.flow_run_name == "run-{anything}"


@pytest.mark.parametrize("decorator", DECORATORS)
def test_run_name_of_wrong_type_is_rejected(decorator: Any) -> None:
    argument = "flow_run_name" if decorator is flow else "task_run_name"

    with pytest.raises(ConfigurationError) as info:
        decorator(**{argument: 42})(body)

    assert_names(info.value, f"{argument}=42")


# -- unknown options ----------------------------------------------------------------------------
@pytest.mark.parametrize("decorator", DECORATORS)
def test_unknown_option_is_a_type_error_naming_it(decorator: Any) -> None:
    with pytest.raises(TypeError) as info:
        decorator(retires=3)(body)

    assert_names(info.value, "retires")


def test_decorating_a_non_callable_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="42"):
        flow(42)


# -- good values are normalised into frozen options ---------------------------------------------
def test_zero_timeout_means_none() -> None:
    assert flow(timeout_seconds=0)(body).timeout_seconds is None
    assert task(timeout_seconds=0)(body).timeout_seconds is None


def test_timedeltas_are_seconds() -> None:
    decorated = task(
        retries=1, retry_delay_seconds=timedelta(minutes=1), timeout_seconds=timedelta(seconds=3)
    )(body)

    assert decorated.options.retry_delay_seconds == 60.0
    assert decorated.timeout_seconds == 3.0


def test_retries_none_means_zero() -> None:
    assert flow(retries=None)(body).retries == 0


def test_hooks_are_stored_as_tuples() -> None:
    decorated = flow(on_completion=[some_function])(body)

    assert decorated.options.on_completion == (some_function,)


def test_task_tags_are_deduplicated_in_order() -> None:
    assert task(tags=["b", "a", "b"])(body).tags == ("b", "a")


@pytest.mark.parametrize("decorator", DECORATORS)
def test_options_are_frozen(decorator: Any) -> None:
    decorated = decorator(retries=2)(body)

    with pytest.raises(dataclasses.FrozenInstanceError):
        decorated.options.retries = 5


# -- the typed keyword options match the validated ones ----------------------------------------
@pytest.mark.parametrize(
    ("typed", "validated"),
    [
        pytest.param(TaskOptionKwargs, TaskOptions, id="task"),
        pytest.param(FlowOptionKwargs, FlowOptions, id="flow"),
    ],
)
def test_typed_options_are_exactly_the_validated_options(typed: Any, validated: Any) -> None:
    # What type checkers accept in @task(...)/@flow(...)/with_options is what runs.
    assert set(typed.__annotations__) == {f.name for f in dataclasses.fields(validated)}
    assert not typed.__required_keys__
