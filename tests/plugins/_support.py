"""Plugins the plugin tests register, and a run to notify them of."""

from __future__ import annotations

from typing import Any

import wfkit
from wfkit.context import Runtime

__all__ = ["Listener", "RaisingPlugin", "marked_listener", "run_one_task", "store_states"]


class Listener:
    """A plain plugin appending ``(label, new state name)`` to a shared ``calls`` list at
    every task state change (subclasses change the hookimpl's options)."""

    def __init__(self, label: str, calls: list[tuple[str, str]]) -> None:
        self.label = label
        self.calls = calls

    def heard(self, new_state: Any) -> None:
        self.calls.append((self.label, new_state.name))

    @wfkit.hookimpl
    def wfkit_task_run_state_changed(self, new_state: Any) -> None:
        self.heard(new_state)


def marked_listener(**options: bool) -> type[Listener]:
    """A :class:`Listener` class whose hookimpl has ``options`` (``tryfirst=True``...)."""

    class Marked(Listener):
        @wfkit.hookimpl(**options)
        def wfkit_task_run_state_changed(self, new_state: Any) -> None:
            self.heard(new_state)

    return Marked


class RaisingPlugin(Listener):
    """A plain plugin that hears each task state change, then raises."""

    @wfkit.hookimpl
    def wfkit_task_run_state_changed(self, new_state: Any) -> None:
        self.heard(new_state)
        raise RuntimeError(f"{self.label} exploded")


def run_one_task() -> Any:
    """Run a flow calling one task; returns the task's result (1)."""
    step = wfkit.task(lambda: 1, name="step")
    return wfkit.flow(lambda: step(), name="outer")()


def store_states(runtime: Runtime) -> tuple[list[str], list[str]]:
    """The recorded state names of the only flow run and the only task run."""
    [flow_run], [task_run] = runtime.store.flow_runs(), runtime.store.task_runs()
    return flow_run.state_names, task_run.state_names
