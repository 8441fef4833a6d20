"""user_code.py runs, and what its ``assert_type`` calls claim holds at run time: each value
is an instance of the asserted type's class (``State`` for ``State[int]``, a coroutine for
``Coroutine[...]``, ...). This keeps the overloads honest about what wfkit returns."""

from __future__ import annotations

import asyncio
import importlib.util
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from wfkit.context import Runtime

USER_CODE = Path(__file__).with_name("user_code.py")


def checked_assert_type(value: Any, expected: Any) -> Any:
    """``typing.assert_type`` that also checks, at run time, the class of ``value``."""
    __tracebackhide__ = True
    if expected is Any:
        return value
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        classes = tuple(typing.get_origin(t) or t for t in typing.get_args(expected))
    else:
        classes = (typing.get_origin(expected) or expected,)
    assert isinstance(value, classes), f"{value!r} is not a {expected}"
    return value


def test_user_code_runs_as_its_types_say(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(typing, "assert_type", checked_assert_type)
    spec = importlib.util.spec_from_file_location("wfkit_typing_user_code", USER_CODE)
    assert spec is not None and spec.loader is not None
    user_code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(user_code)  # (its module-level assertions run here)

    user_code.call_tasks()
    asyncio.run(user_code.call_async_tasks())
    user_code.run_flows()
    user_code.call_methods()
    state = user_code.add(1, 2, return_state=True)
    user_code.read_state(state, state)

    runs = runtime.store.task_runs() + runtime.store.flow_runs()
    assert runs and all(run.state.is_completed() for run in runs if run.state.is_final())
