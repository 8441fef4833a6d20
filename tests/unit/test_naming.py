"""Run names: random slugs, format templates over parameters, callables."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from wfkit import flow, task
from wfkit._engine.naming import random_slug, render_run_name, short_suffix
from wfkit.context import Runtime
from wfkit.exceptions import ConfigurationError

SLUG = re.compile(r"^[a-z]+-[a-z]+$")


def test_random_slug_is_two_lowercase_words() -> None:
    for _ in range(50):
        assert SLUG.match(random_slug())


def test_random_slugs_vary() -> None:
    assert len({random_slug() for _ in range(50)}) > 1


def test_short_suffix_is_three_hex_chars() -> None:
    for _ in range(50):
        assert re.fullmatch(r"[0-9a-f]{3}", short_suffix())


def test_render_template_with_format_spec() -> None:
    name = render_run_name(
        "report-{date:%A}",
        {"date": datetime(2026, 1, 1)},
        default=random_slug,
        argument="flow_run_name",
    )

    assert name == "report-Thursday"  # 2026-01-01 is a Thursday


def test_render_without_spec_uses_the_default() -> None:
    assert render_run_name(None, {}, default=lambda: "dflt", argument="flow_run_name") == "dflt"


def test_render_callable_without_arguments() -> None:
    assert (
        render_run_name(lambda: "fixed", {"x": 1}, default=random_slug, argument="task_run_name")
        == "fixed"
    )


def test_render_callable_with_parameters_argument() -> None:
    def name_from(parameters: dict[str, Any]) -> str:
        return f"x-is-{parameters['x']}"

    assert (
        render_run_name(name_from, {"x": 7}, default=random_slug, argument="task_run_name")
        == "x-is-7"
    )


def test_render_callable_returning_a_non_string_names_it() -> None:
    def bad_name() -> int:
        return 3

    with pytest.raises(ConfigurationError) as info:
        render_run_name(bad_name, {}, default=random_slug, argument="task_run_name")

    assert "task_run_name" in str(info.value)
    assert "bad_name" in str(info.value)
    assert "3" in str(info.value)


def test_render_template_with_bad_spec_names_template_and_parameters() -> None:
    with pytest.raises(ConfigurationError) as info:
        render_run_name("r-{x:%A}", {"x": 5}, default=random_slug, argument="flow_run_name")

    assert "'r-{x:%A}'" in str(info.value)
    assert "{'x': 5}" in str(info.value)


# -- names as recorded by runs ----------------------------------------------------------------
def test_flow_run_default_name_is_a_slug(runtime: Runtime) -> None:
    @flow
    def plain() -> None:
        pass

    plain()

    assert SLUG.match(runtime.store.flow_runs()[0].name)


def test_flow_run_name_template_with_format_spec(runtime: Runtime) -> None:
    @flow(flow_run_name="report-{date:%A}")
    def report(date: datetime) -> None:
        pass

    report(datetime(2026, 1, 1))

    assert runtime.store.flow_runs()[0].name == "report-Thursday"


def test_flow_run_name_callable(runtime: Runtime) -> None:
    @flow(flow_run_name=lambda: "named-by-callable")
    def plain() -> None:
        pass

    plain()

    assert runtime.store.flow_runs()[0].name == "named-by-callable"


def test_task_run_default_name_inside_a_flow(runtime: Runtime) -> None:
    @task
    def add(x: int) -> int:
        return x + 1

    @flow
    def outer() -> None:
        add(1)

    outer()

    assert re.fullmatch(r"add-[0-9a-f]{3}", runtime.store.task_runs()[0].name)


def test_task_run_name_template(runtime: Runtime) -> None:
    @task(task_run_name="add-{x:03d}")
    def add(x: int) -> int:
        return x + 1

    add(7)

    assert runtime.store.task_runs()[0].name == "add-007"


@pytest.mark.parametrize("with_parameters", [False, True])
def test_task_run_name_callable(runtime: Runtime, with_parameters: bool) -> None:
    if with_parameters:

        def namer(parameters: dict[str, Any]) -> str:
            return f"add-{parameters['x']}"

    else:

        def namer() -> str:  # type: ignore[misc]
            return "add-fixed"

    @task(task_run_name=namer)
    def add(x: int) -> int:
        return x + 1

    add(7)

    assert runtime.store.task_runs()[0].name == ("add-7" if with_parameters else "add-fixed")
