"""What a cluster worker hands back for a run (``run_on_worker``): the outcome pickled once
on the worker, as bytes the cluster carries (``Pickled``), unless the cluster's own
serializer must see the objects; run through a real flow on an in-process "cluster" that
pickles chunks both ways, as Ray and Dask do."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

from wfkit import flow, task
from wfkit._engine.worker import _FlowRunInfo
from wfkit.task_runners._cluster import ClusterRunner, Pickled, run_chunk_on_worker
from wfkit.testing.harness import Harness, harness


class Blob:
    """A result whose bytes pickle out of band (protocol 5), as a numpy array's do."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)

    def __reduce_ex__(self, protocol: Any) -> Any:
        if protocol >= 5:
            return Blob, (pickle.PickleBuffer(self.data),)
        return Blob, (bytes(self.data),)


@task
def double(x: int) -> int:
    return 2 * x


@task
def blob(n: int) -> Blob:
    return Blob(b"b" * n)


class InProcessCluster(ClusterRunner):
    """Runs each chunk here as a worker would, pickling the chunk and its result (plain
    pickle, buffers in band: what crosses a cluster's wire); keeps what the worker handed
    back for each run, before pickling."""

    handed_back: list[Any] = []

    def duplicate(self) -> InProcessCluster:
        return InProcessCluster()

    def _connect(self) -> int:
        return 1

    def _run_chunk_now(self, remotes: list[Any], group: Any) -> Any:
        result = run_chunk_on_worker(pickle.loads(pickle.dumps(remotes)))
        self.handed_back.extend(outcome for outcome, _ in result)
        return pickle.loads(pickle.dumps(result))

    def _submit_chunk(self, remotes: list[Any], group: Any, deliver: Any) -> None:
        deliver(self._run_chunk_now(remotes, group))

    def _disconnect(self) -> None:
        pass


@pytest.fixture
def h(tmp_path: Path) -> Any:
    InProcessCluster.handed_back.clear()
    with harness(store="sqlite", directory=tmp_path) as hh:
        yield hh


def test_a_plain_outcome_comes_back_pickled_once_and_replays_whole(h: Harness) -> None:
    @flow(task_runner=InProcessCluster())
    def doubling() -> list[int]:
        return [double.submit(x).result() for x in (1, 2)]

    assert doubling() == [2, 4]
    assert [type(outcome) for outcome in InProcessCluster.handed_back] == [Pickled, Pickled]
    outcome = pickle.loads(InProcessCluster.handed_back[0].data)
    assert outcome.state.result() == 2
    assert [name for name, _ in outcome.events] == ["task", "task", "log"]
    for run in h.task_runs(double):
        assert run.state_names == ["Pending", "Running", "Completed"]


def test_an_outcome_with_out_of_band_buffers_goes_as_objects_for_the_clusters_serializer(
    h: Harness,
) -> None:
    """Pickled into bytes on the worker, a buffer would be copied into them; handed over as
    objects, Ray and Dask carry it without copies."""

    @flow(task_runner=InProcessCluster())
    def blobs() -> int:
        return len(blob.submit(1000).result().data)

    assert blobs() == 1000
    [outcome] = InProcessCluster.handed_back
    assert not isinstance(outcome, Pickled)
    assert isinstance(outcome.state.result(), Blob)
    assert h.task_run(blob).state_names == ["Pending", "Running", "Completed"]


_unpickling = threading.Event()
_release = threading.Event()


def _gated() -> str:
    """Unpickles as "gate", once the test releases it (so that a thread stays inside the
    unpickling of a worker's flow-run fields)."""
    _unpickling.set()
    assert _release.wait(10)
    return "gate"


class _Gate:
    def __reduce__(self) -> Any:
        return _gated, ()


def test_two_threads_of_a_task_read_the_flow_run_fields_at_once() -> None:
    """A worker unpickles the flow run's fields when a task first reads them; a second
    thread reading meanwhile found them half-taken and got AttributeError."""
    _unpickling.clear()
    _release.clear()
    info = _FlowRunInfo("f1", pickle.dumps({"id": "f1", "name": "night", "gate": _Gate()}))
    seen: list[Any] = []

    def read() -> None:
        try:
            seen.append(info.name)
        except AttributeError as exc:
            seen.append(exc)

    first = threading.Thread(target=read)
    first.start()
    assert _unpickling.wait(10)  # the first thread is inside the unpickling
    second = threading.Thread(target=read)
    second.start()
    second.join(0.2)  # (it either waits on the same gate or has failed by now)
    _release.set()
    first.join(10)
    second.join(10)
    assert seen == ["night", "night"]
    assert (info.id, info.gate) == ("f1", "gate")
