"""Assertion helpers whose failures show expected and actual side by side."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest
from typing import Any

__all__ = ["assert_state_history", "format_history_diff"]


def format_history_diff(run: Any, expected: Sequence[str]) -> str:
    """A table of expected vs actual state names, with each actual state's message."""
    kind = "task" if hasattr(run, "task_name") else "flow"
    owner = getattr(run, "task_name", None) or getattr(run, "flow_name", "?")
    lines = [
        f"state history of {kind} run {run.name!r} ({kind} {owner!r}) does not match",
        f"  {'#':>2}  {'expected':<16} {'':1} {'actual':<16} message",
    ]
    for i, (want, state) in enumerate(zip_longest(expected, run.states), start=1):
        got = state.name if state is not None else "-"
        mark = " " if want == got else "≠"
        message = (state.message or "") if state is not None else ""
        lines.append(f"  {i:>2}  {want or '-':<16} {mark} {got:<16} {message}".rstrip())
    return "\n".join(lines)


def assert_state_history(run: Any, expected: Sequence[str]) -> None:
    """Assert that ``run`` (a FlowRun/TaskRun record) went through exactly ``expected``."""
    __tracebackhide__ = True
    if isinstance(expected, str):
        raise TypeError(
            f"expected={expected!r} must be a list of state names, e.g. ['Pending', 'Running', "
            "'Completed']"
        )
    if list(run.state_names) != list(expected):
        raise AssertionError(format_history_diff(run, expected))
