"""ChunkSender, the cluster runners' batching, against an in-process "cluster" (a thread
pool running each chunk's runs one after another, as a cluster worker does)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wfkit.task_runners._chunks import MAX_CHUNK, ChunkSender, run_chunk


class Run:
    """A stand-in remote run: ``execute`` returns its value (or raises)."""

    def __init__(self, task_run_id: str, value: Any = None, error: bool = False) -> None:
        self.task_run_id = task_run_id
        self.arguments = {"value": value}
        self.value, self.error = value, error

    def execute(self, task_runner: Any = None, publish: Any = None) -> Any:
        if self.error:
            raise ValueError(f"run {self.task_run_id} failed")
        return self.value


class Cluster:
    """Runs chunks on a thread pool; remembers their sizes and groups."""

    def __init__(self, threads: int = 2) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)
        self.chunks: list[tuple[int, Any]] = []
        self.refuse: Callable[[list[Any]], bool] = lambda runs: False

    def submit_chunk(self, runs: list[Any], group: Any, deliver: Callable[[Any], None]) -> None:
        if self.refuse(runs):
            raise TypeError("cannot serialize this chunk")
        self.chunks.append((len(runs), group))
        future = self.pool.submit(run_chunk, runs, lambda run: run.execute())
        future.add_done_callback(lambda done: deliver(done.result()))


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    yield c
    c.pool.shutdown()


def send_all(sender: ChunkSender, runs: list[Run], group: Callable[[int], Any] = lambda i: None):
    results: dict[str, Any] = {}

    def one(i: int, run: Run) -> None:
        try:
            results[run.task_run_id] = sender.send(run, group(i))
        except Exception as exc:  # handed to the test
            results[run.task_run_id] = exc

    threads = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_many_quick_runs_go_in_growing_chunks_each_with_its_own_outcome(cluster: Cluster) -> None:
    sender = ChunkSender(cluster.submit_chunk, max_in_flight=2, diagnose=lambda run: None)
    runs = [Run(f"r{i}", value=i, error=(i == 7)) for i in range(400)]
    results = send_all(sender, runs)
    sender.close()
    assert {k: v for k, v in results.items() if k != "r7"} == {
        f"r{i}": i for i in range(400) if i != 7
    }
    assert isinstance(results["r7"], ValueError)  # one run's failure is its own
    sizes = [size for size, _ in cluster.chunks]
    assert sum(sizes) == 400 and max(sizes) > 1 and max(sizes) <= MAX_CHUNK


def test_runs_of_different_groups_never_share_a_chunk(cluster: Cluster) -> None:
    sender = ChunkSender(cluster.submit_chunk, max_in_flight=1, diagnose=lambda run: None)
    runs = [Run(f"r{i}", value=i) for i in range(100)]
    results = send_all(sender, runs, group=lambda i: ("num_cpus", i % 2))
    sender.close()
    assert results == {f"r{i}": i for i in range(100)}
    assert sum(size for size, _ in cluster.chunks) == 100
    assert {group for _, group in cluster.chunks} == {("num_cpus", 0), ("num_cpus", 1)}


def test_a_chunk_that_cannot_be_sent_fails_only_the_runs_to_blame(cluster: Cluster) -> None:
    blame = ValueError("argument 'value' cannot be serialized")
    cluster.refuse = lambda runs: any(run.value == "bad" for run in runs)
    sender = ChunkSender(
        cluster.submit_chunk,
        max_in_flight=1,
        diagnose=lambda run: blame if run.value == "bad" else None,
    )
    runs = [Run(f"r{i}", value="bad" if i == 3 else i) for i in range(50)]
    results = send_all(sender, runs)
    sender.close()
    assert results.pop("r3") is blame
    assert results == {f"r{i}": i for i in range(50) if i != 3}


def test_after_close_send_is_refused(cluster: Cluster) -> None:
    sender = ChunkSender(cluster.submit_chunk, max_in_flight=1, diagnose=lambda run: None)
    assert sender.send(Run("r0", value=0)) == 0
    sender.close()
    with pytest.raises(RuntimeError, match="shut down"):
        sender.send(Run("r1"))
