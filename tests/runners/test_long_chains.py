"""A long chain of submissions, each passed the previous one's future, on the pool runners.

When the flow waits on the last link, most links are still queued. The waiting thread runs
them itself (nobody may be free to), upstream first, one after another. It used to run
each inside the run that waited for it, and past ~100 queued links Python's recursion limit
struck: wherever it did, a link's run stayed Pending and the links after it ended NotReady,
or a run's end was never counted and the flow waited for it forever (the hang the cluster
benchmark met).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wfkit.concurrency import create_tag_limit
from wfkit.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from wfkit.testing.harness import Harness, harness

from ._chains import LINKS, SHAPES, run_chain


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
