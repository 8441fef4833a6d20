"""A long chain of submissions on a cluster runner's old path (runs that wait for their
upstream in the flow's process: a cache policy, tag limits, futures inside a dataclass).

The runner's threads take the first links; the flow's thread, waiting on the last one,
runs the rest of the queue itself, upstream first, one after another. Run one inside
another, they hit Python's recursion limit past ~100 links beyond the runner's threads, and
the flow run hung or its chain ended NotReady (see tests/runners/test_long_chains.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runners._chains import SHAPES, run_chain
from wfkit.concurrency import create_tag_limit
from wfkit.task_runners._cluster import _IN_FLIGHT
from wfkit.testing.harness import Harness, harness

# More links than the runner has threads, by more than the ~100 the old nesting survived.
LINKS = _IN_FLIGHT + 150


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
def h(tmp_path: Path) -> Iterator[Harness]:
    with harness(store="sqlite", directory=tmp_path) as hh:
        create_tag_limit("chain-link", 2)
        yield hh


@pytest.mark.parametrize("shape", ["cache policy"])
def test_a_chain_longer_than_the_runners_threads_completes_on_the_old_path(
    runner: Any, shape: str, h: Harness, tmp_path: Path
) -> None:
    assert run_chain(runner, SHAPES[shape], LINKS, tmp_path / "gate") == LINKS
    assert [r.state.name for r in h.task_runs()] == ["Completed"] * (LINKS + 1)
