"""Small helpers shared by the engine tests."""

from __future__ import annotations

from typing import Any

from wfkit.context import Runtime


def runs_of(runtime: Runtime, kind: str) -> list[Any]:
    """The recorded flow runs (``kind="flow"``) or task runs (``kind="task"``), oldest first."""
    return runtime.store.flow_runs() if kind == "flow" else runtime.store.task_runs()


def only_run(runtime: Runtime, kind: str) -> Any:
    """The single recorded run of ``kind``; fails listing what exists otherwise."""
    runs = runs_of(runtime, kind)
    assert len(runs) == 1, f"expected exactly one {kind} run, found {[r.name for r in runs]}"
    return runs[0]


def flaky(failures: int, value: Any = "ok", error: type[Exception] = ValueError) -> Any:
    """A body that raises ``error`` on its first ``failures`` calls, then returns ``value``;
    ``body.calls`` counts the calls."""

    def flaky_body() -> Any:
        flaky_body.calls += 1  # type: ignore[attr-defined]
        if flaky_body.calls <= failures:  # type: ignore[attr-defined]
            raise error(f"failure {flaky_body.calls}")  # type: ignore[attr-defined]
        return value

    flaky_body.calls = 0  # type: ignore[attr-defined]
    return flaky_body
