"""Dependencies resolve on the cluster: a run whose upstream runs went to the same cluster
runner is sent at once with their native futures (Dask futures, Ray ObjectRefs); the worker
gets their outcomes and applies wfkit's rules (NotReady, allow_failure, wait_for). Other
runs (a cache policy, tag limits, futures inside a dataclass) take the old path: they wait
for their upstream values in the flow's process, then go."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runners._chains import SHAPES, run_chain
from wfkit import allow_failure, flow, unmapped
from wfkit.task_runners._cluster import _IN_FLIGHT
from wfkit.testing.harness import Harness, harness

from . import _tasks


@pytest.fixture(params=["dask", "ray"])
def runner(request: pytest.FixtureRequest) -> Any:
    if request.param == "dask":
        pytest.importorskip("distributed")
        from wfkit.task_runners.dask import DaskTaskRunner

        return DaskTaskRunner(cluster=request.getfixturevalue("dask_cluster"))
    pytest.importorskip("ray")
    from wfkit.task_runners.ray import RayTaskRunner

    request.getfixturevalue("ray_session")
    return RayTaskRunner()


@pytest.fixture
def h(tmp_path: Path) -> Any:
    with harness(store="sqlite", directory=tmp_path) as hh:
        yield hh


def test_a_chain_runs_on_the_cluster_without_its_values_reaching_the_flow(
    runner: Any, h: Harness, tmp_path: Path
) -> None:
    log = tmp_path / "events.log"

    @flow(task_runner=runner)
    def chain() -> str:
        a = _tasks.hands_over.submit(os.getpid(), str(log))
        b = _tasks.passes_on.submit(a, str(log), "b")  # type: ignore[call-overload]
        return _tasks.describe.submit(b).result()  # type: ignore[no-any-return]

    # a's and b's values cannot come back to this process (their runs end Crashed, saying
    # so); had the flow's process waited for a's value to send b, b would be NotReady
    assert chain() == "Handed"
    assert log.read_text().splitlines() == ["a ran", "b ran"]
    runs = {r.task_name: r for r in h.task_runs()}
    assert runs["describe"].state_names == ["Pending", "Running", "Completed"]
    for name in ("hands_over", "passes_on"):
        assert runs[name].state.name == "Crashed"
        assert "may not reach the flow's process" in (runs[name].state.message or "")


def test_an_upstream_that_failed_makes_its_downstream_not_ready(runner: Any, h: Harness) -> None:
    @flow(task_runner=runner)
    def broken() -> list[str]:
        failed = _tasks.fails.submit()
        downstream = [
            _tasks.inc.submit(failed),  # type: ignore[call-overload]
            _tasks.inc.submit(1, wait_for=[failed]),
            _tasks.total.submit([1, failed]),  # type: ignore[list-item]
        ]
        for future in downstream:
            future.wait()
        return [f.state.name for f in downstream]

    assert broken() == ["NotReady"] * 3
    states = {r.task_name: r for r in h.task_runs()}
    assert states["fails"].state.name == "Failed"
    for name in ("inc", "total"):
        run = states[name]
        assert run.state.name == "NotReady", run.state_names
        assert "did not complete" in (run.state.message or "")
        assert "Running" not in run.state_names  # (it never ran)


def test_allow_failure_wait_for_unmapped_and_map_behave_as_on_the_thread_pool(
    runner: Any, h: Harness
) -> None:
    @flow(task_runner=runner)
    def tolerant() -> tuple[str, int, list[int], int]:
        failed = _tasks.fails.submit()
        described = _tasks.describe.submit(allow_failure(failed))
        one = _tasks.inc.submit(0)
        gated = _tasks.inc.submit(10, wait_for=[one, allow_failure(failed)])
        mapped = _tasks.total.map([[1], [2]], offset=unmapped(one))  # type: ignore[arg-type]
        nested = _tasks.total.submit([one, gated, {"not": "a future"}.get("x", 0)])
        return described.result(), gated.result(), mapped.result(), nested.result()

    assert tolerant() == ("ValueError", 11, [2, 3], 12)
    assert {r.state.name for r in h.task_runs() if r.task_name != "fails"} == {"Completed"}


def test_an_upstream_the_cluster_lost_makes_its_downstream_not_ready(
    dask_cluster: Any, h: Harness
) -> None:
    from wfkit.task_runners.dask import DaskTaskRunner

    distributed = pytest.importorskip("distributed")

    @flow(task_runner=DaskTaskRunner(cluster=dask_cluster))
    def lost() -> tuple[str, str]:
        killed = _tasks.kills_its_worker.submit()
        gated = _tasks.inc.submit(1, wait_for=[killed])
        tolerant = _tasks.describe.submit(allow_failure(killed))
        gated.wait()
        return gated.state.name, tolerant.result()  # type: ignore[return-value]

    assert lost() == ("NotReady", "KilledWorker")
    assert h.task_run(_tasks.kills_its_worker).state.name == "Crashed"
    with distributed.Client(dask_cluster) as client:
        client.wait_for_workers(2, timeout=30)  # (its nanny restarts the worker)


def test_a_chain_longer_than_the_runners_threads_completes_on_the_old_path(
    runner: Any, h: Harness, tmp_path: Path
) -> None:
    # The runner's threads take the first links (each waits for its upstream value here);
    # the flow's thread, waiting on the last link, runs the rest of the queue itself. Run
    # one inside another, ~100 links past the threads hit Python's recursion limit and the
    # flow run hung (see tests/runners/test_long_chains.py).
    links = _IN_FLIGHT + 150
    assert run_chain(runner, SHAPES["cache policy"], links, tmp_path / "gate") == links
    assert [r.state.name for r in h.task_runs()] == ["Completed"] * (links + 1)
