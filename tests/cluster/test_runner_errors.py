"""A cluster runner's own error ends the run Crashed on a real Dask cluster (see
tests/runners/test_runner_errors.py for the thread and process pools): here the error comes
in the runner's job thread, as the flow's process takes in what the cluster sent back."""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from runners._chains import finish_within  # noqa: E402
from wfkit import flow  # noqa: E402
from wfkit.task_runners.dask import DaskTaskRunner  # noqa: E402
from wfkit.testing.harness import Harness, harness  # noqa: E402

from . import _tasks  # noqa: E402


class LosesOutcomes(DaskTaskRunner):
    """Sends each run to the cluster, then hands back something that is not its outcome."""

    def _send(self, chunks: Any, remote: Any) -> Any:
        super()._send(chunks, remote)
        return object()


@pytest.fixture
def h(tmp_path: Path) -> Any:
    with harness(store="sqlite", directory=tmp_path) as hh:
        yield hh


def test_a_run_whose_outcome_the_runner_loses_ends_crashed(dask_cluster: Any, h: Harness) -> None:
    @flow(task_runner=LosesOutcomes(cluster=dask_cluster))
    def waits() -> int:
        return _tasks.inc.submit(1).result()  # type: ignore[no-any-return]

    state = finish_within(60, contextvars.copy_context().run, lambda: waits(return_state=True))
    assert state.name == "Failed"
    assert isinstance(state.exception, AttributeError)  # the runner's error, not swallowed
    run = h.task_run(_tasks.inc)
    names = run.state_names  # (its Running may have come live from the worker, under load)
    assert names[0] == "Pending" and names[-1] == "Crashed"
    assert set(names) <= {"Pending", "Running", "Crashed"}
    assert run.state.message.startswith(
        "Task run crashed by an internal error of its task runner, not of the task: "
        "AttributeError: 'object' object has no attribute"
    )
