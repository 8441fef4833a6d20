"""DaskTaskRunner passes the runner conformance suite on a real LocalCluster."""

from __future__ import annotations

from typing import Any

import pytest

from wfkit.task_runners.dask import DaskTaskRunner
from wfkit.testing.runner_conformance import RunnerConformance


class TestDaskTaskRunner(RunnerConformance):
    @pytest.fixture
    def runner(self, dask_cluster: Any) -> DaskTaskRunner:
        return DaskTaskRunner(cluster=dask_cluster)
