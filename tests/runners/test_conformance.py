"""The built-in task runners pass the runner conformance suite."""

from __future__ import annotations

import pytest

from wfkit.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from wfkit.testing.runner_conformance import RunnerConformance


class TestThreadPoolTaskRunner(RunnerConformance):
    @pytest.fixture
    def runner(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner()

    @pytest.fixture
    def single_worker_runner(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner(max_workers=1)


class TestBoundedThreadPoolTaskRunner(RunnerConformance):
    @pytest.fixture
    def runner(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner(max_workers=2)


class TestProcessPoolTaskRunner(RunnerConformance):
    @pytest.fixture
    def runner(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(max_workers=2)

    @pytest.fixture
    def single_worker_runner(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(max_workers=1)
