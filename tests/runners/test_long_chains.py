"""A long chain of submissions, each passed the previous one's future, on the pool runners.

When the flow waits on the last link, most links are still queued. The waiting thread runs
them itself (nobody may be free to), upstream first, one after another. It used to run
each inside the run that waited for it, and past ~100 queued links Python's recursion limit
struck: wherever it did, a link's run stayed Pending and the links after it ended NotReady,
or a run's end was never counted and the flow waited for it forever (the hang the cluster
benchmark met).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from pathlib import Path

import pytest

from wfkit import flow
from wfkit.concurrency import create_tag_limit
from wfkit.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from wfkit.testing.harness import Harness, harness
from wfkit.testing.runner_conformance import wait_for_gate

from ._chains import BOUND_SECONDS, LINKS, SHAPES, finish_within, run_chain, stack_depth


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with harness(store="sqlite", directory=tmp_path) as hh:
        create_tag_limit("chain-link", 2)
        yield hh


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_long_chain_of_queued_links_completes_on_the_thread_pool(
    shape: str, h: Harness, tmp_path: Path
) -> None:
    runner = ThreadPoolTaskRunner(max_workers=4)
    assert run_chain(runner, SHAPES[shape], LINKS, tmp_path / "gate") == LINKS
    states = [r.state.name for r in h.task_runs()]
    assert states == ["Completed"] * (LINKS + 1)


def test_a_long_chain_of_queued_links_completes_on_the_process_pool(
    h: Harness, tmp_path: Path
) -> None:
    runner = ProcessPoolTaskRunner(max_workers=2)
    assert run_chain(runner, SHAPES["plain"], LINKS, tmp_path / "gate") == LINKS
    assert [r.state.name for r in h.task_runs()] == ["Completed"] * (LINKS + 1)


def test_the_waiting_thread_holds_one_queued_run_at_a_time(h: Harness, tmp_path: Path) -> None:
    # Each link waits for the two before it (shared upstream runs), all queued behind a
    # gate: the flow's thread runs them, and its stack does not grow with the chain.
    gate = tmp_path / "gate"

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def braid() -> list[int]:
        held = wait_for_gate.submit(str(gate))
        futures = [stack_depth.submit(wait_for=[held]), stack_depth.submit(wait_for=[held])]
        for _ in range(60):
            futures.append(stack_depth.submit(futures[-1], futures[-2]))
        gate.touch()
        return [future.result() for future in reversed(futures)]

    depths = finish_within(BOUND_SECONDS, contextvars.copy_context().run, braid)
    assert max(depths) - min(depths) < 60, depths
