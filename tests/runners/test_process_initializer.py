"""ProcessPoolTaskRunner(initializer=, initargs=): each worker process runs the initializer
once as it starts (issue 15, item 4), as Prefect's runner passes them to its executor."""

from __future__ import annotations

import os

import pytest

from wfkit import flow, task
from wfkit.context import use_runtime
from wfkit.exceptions import ConfigurationError
from wfkit.task_runners import ProcessPoolTaskRunner

_greeting = "not initialized"


def set_greeting(word: str, name: str) -> None:
    """The initializer: runs in the worker process before any task."""
    global _greeting
    _greeting = f"{word}, {name}"


@task
def greeting(i: int) -> tuple[str, int]:
    return _greeting, os.getpid()


def test_each_worker_process_runs_the_initializer_with_its_arguments() -> None:
    runner = ProcessPoolTaskRunner(max_workers=2, initializer=set_greeting, initargs=("hi", "x"))

    @flow(task_runner=runner)
    def greet() -> list[tuple[str, int]]:
        return greeting.map(range(4)).result()

    with use_runtime(store="memory://"):
        results = greet()
    assert {word for word, _ in results} == {"hi, x"}
    assert all(pid != os.getpid() for _, pid in results)
    assert _greeting == "not initialized"  # the flow's own process was left alone


def test_duplicate_keeps_the_initializer() -> None:
    runner = ProcessPoolTaskRunner(initializer=set_greeting, initargs=("a", "b"))
    copy = runner.duplicate()
    assert (copy.initializer, copy.initargs) == (set_greeting, ("a", "b"))
    assert "initializer=" in repr(copy)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"initializer": "set_greeting"}, "initializer="), ({"initargs": ["hi"]}, "initargs=")],
)
def test_bad_initializer_arguments_are_named(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        ProcessPoolTaskRunner(**kwargs)  # type: ignore[arg-type]
