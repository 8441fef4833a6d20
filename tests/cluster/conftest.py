"""Real clusters for the Dask and Ray runner tests, started once per session and kept small
for a 2-core machine: a ``distributed.LocalCluster`` of 2 worker processes with 1 thread
each, and a local Ray with 2 CPUs. Every test here carries the ``cluster`` marker
(``pytest -m cluster`` selects them, ``-m "not cluster"`` leaves them out)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A LocalCluster: 2 worker processes, 1 thread each. A task that kills its worker is
    not run again elsewhere (allowed-failures 0), so a lost worker shows at once."""
    distributed = pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, dashboard_address=":0"
        )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """A local Ray with 2 CPUs; its workers import the test tasks by the names this session
    gave their modules."""
    ray = pytest.importorskip("ray")
    import os

    from . import _tasks

    package_root = Path(_tasks.__file__).resolve().parents[_tasks.__name__.count(".")]
    src = Path(__file__).resolve().parents[2] / "src"
    path = os.pathsep.join([str(src), str(package_root)])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()
