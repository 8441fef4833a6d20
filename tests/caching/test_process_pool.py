"""Cached tasks under ``ProcessPoolTaskRunner``: the body runs in a worker process, but the
cache lives in the flow's run store, so a second identical run is a hit (§3.6: records live
in the run store; §3.7: the run context, store included, propagates to workers)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from wfkit import flow
from wfkit.task_runners import ProcessPoolTaskRunner
from wfkit.testing import Harness, harness

from . import _process_tasks as pt
from .conftest import START

RUNNER = ProcessPoolTaskRunner(max_workers=2)


@pytest.fixture(params=["memory", "sqlite"])
def ph(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    with harness(start=START, store=request.param, directory=tmp_path) as hh:
        yield hh


@flow(task_runner=RUNNER)
def twice_in_workers() -> list[tuple[int, int]]:
    first = pt.cached_pid.submit(4).result()
    second = pt.cached_pid.submit(4).result()  # submitted after the first one finished
    return [first, second]


def test_a_process_pool_task_hits_the_cache_of_the_flow_store(
    ph: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        first, second = twice_in_workers()
    assert first == second  # same value and same worker pid: the body ran once
    assert first[0] == 16
    runs = ph.task_runs(pt.cached_pid)
    assert [r.state.name for r in runs] == ["Completed", "Cached"]
    assert len(ph.store.cache_records()) == 1
    assert not [r for r in caplog.records if "cache record" in r.getMessage()]


def test_a_process_pool_task_hits_a_record_written_in_the_parent(ph: Harness) -> None:
    value = pt.cached_pid(5)  # inline, in this process: writes the record

    @flow(task_runner=RUNNER)
    def in_worker() -> tuple[int, int]:
        return pt.cached_pid.submit(5).result()

    assert in_worker() == value
    assert [r.state.name for r in ph.task_runs(pt.cached_pid)] == ["Completed", "Cached"]
