"""DaskTaskRunner on real clusters: where runs execute and are recorded, lost workers,
serialization errors, get_dask_client, temporary clusters, and every bad argument."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from wfkit import flow, task  # noqa: E402
from wfkit.exceptions import ConfigurationError, MissingContextError  # noqa: E402
from wfkit.task_runners.dask import DaskTaskRunner, get_dask_client  # noqa: E402
from wfkit.testing.harness import Harness, harness  # noqa: E402

from . import _tasks  # noqa: E402
from ._checks import assert_running_shows_while_it_runs  # noqa: E402


@pytest.fixture
def h(tmp_path: Path) -> Any:
    with harness(store="sqlite", directory=tmp_path) as hh:
        yield hh


def test_runs_execute_on_the_workers_and_are_recorded_in_the_flows_sqlite_store(
    dask_cluster: Any, h: Harness
) -> None:
    import os

    @flow(task_runner=DaskTaskRunner(cluster=dask_cluster))
    def chained() -> tuple[int, list[int], set[int]]:
        first = _tasks.inc.submit(1)
        second = _tasks.inc.submit(first)  # type: ignore[call-overload]  # (a future for x)
        pids = {f.result() for f in [_tasks.where.submit() for _ in range(4)]}
        return second.result(), _tasks.inc.map([10, 20]).result(), pids

    value, mapped, pids = chained()
    assert (value, mapped) == (3, [11, 21])
    assert os.getpid() not in pids
    runs = h.task_runs(_tasks.inc)
    assert [r.state_names for r in runs] == [["Pending", "Running", "Completed"]] * 4
    messages = [r.message for r in h.logs() if r.message.startswith("inc got")]
    assert sorted(messages) == ["inc got 1", "inc got 10", "inc got 2", "inc got 20"]


def test_cache_hits_work_across_workers(dask_cluster: Any, h: Harness) -> None:
    @flow(task_runner=DaskTaskRunner(cluster=dask_cluster))
    def doubles() -> tuple[int, int]:
        return _tasks.cached_double.submit(21).result()

    first, again = doubles(), doubles()
    assert again == first  # the recorded result, whichever worker ran the first
    states = [r.state.name for r in h.task_runs(_tasks.cached_double)]
    assert states == ["Completed", "Cached"]


def test_a_task_whose_worker_dies_ends_crashed_naming_the_worker(
    dask_cluster: Any, h: Harness
) -> None:
    @flow(task_runner=DaskTaskRunner(cluster=dask_cluster))
    def deadly() -> Any:
        return _tasks.kills_its_worker.submit().wait()

    deadly()
    run = h.task_run(_tasks.kills_its_worker)
    assert run.state_names == ["Pending", "Crashed"]
    message = run.state.message or ""
    assert "KilledWorker" in message and "tcp://127.0.0.1:" in message
    with distributed.Client(dask_cluster) as client:
        client.wait_for_workers(2, timeout=30)  # (its nanny restarts the worker)


@pytest.mark.parametrize(
    ("submit", "expected"),
    [
        (
            lambda: _tasks.inc.submit(threading.Lock()),  # type: ignore[arg-type]
            "argument 'x' (lock) cannot be serialized by cloudpickle",
        ),
        (
            _tasks.returns_a_lock.submit,
            "cannot be serialized by pickle to go back to the flow's process: TypeError: "
            "cannot pickle '_thread.lock' object",
        ),
    ],
    ids=["argument", "result"],
)
def test_an_argument_or_result_that_cannot_be_serialized_is_named_with_the_serializer(
    dask_cluster: Any, h: Harness, submit: Any, expected: str
) -> None:
    @flow(task_runner=DaskTaskRunner(cluster=dask_cluster))
    def unserializable() -> Any:
        return submit().wait()

    unserializable()
    [run] = h.task_runs()
    assert run.state_names == ["Pending", "Crashed"]
    assert expected in (run.state.message or "")


def test_a_closure_task_is_refused_when_submitted(dask_cluster: Any, h: Harness) -> None:
    lock = threading.Lock()

    @task
    def holds_a_lock() -> bool:
        return lock.locked()

    @flow(task_runner=DaskTaskRunner(cluster=dask_cluster))
    def closure() -> None:
        holds_a_lock.submit()

    with pytest.raises(TypeError, match="define it at module level"):
        closure()


def test_get_dask_client_inside_a_task(dask_cluster: Any, h: Harness) -> None:
    @flow(task_runner=DaskTaskRunner(cluster=dask_cluster))
    def nested() -> int:
        return _tasks.adds_on_the_cluster.submit(41).result()

    assert nested() == 42


def test_get_dask_client_outside_a_task_or_dask_flow_is_a_clear_error() -> None:
    with pytest.raises(MissingContextError, match="get_dask_client"):
        with get_dask_client():
            pass


def test_a_temporary_cluster_per_flow_run_is_closed_when_the_run_ends(h: Harness) -> None:
    from distributed.deploy.spec import SpecCluster

    runner = DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": 1, "processes": False, "dashboard_address": ":0"},
        adapt_kwargs={"minimum": 1, "maximum": 1},
    )

    @flow(task_runner=runner)
    def temporary() -> int:
        return _tasks.inc.submit(1).result()

    before = set(SpecCluster._instances)
    assert [temporary(), temporary()] == [2, 2]
    started = set(SpecCluster._instances) - before
    assert all(cluster.status.name == "closed" for cluster in started)
    assert runner.client is None  # the template itself never starts


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"address": "tcp://127.0.0.1:8786", "cluster_class": "distributed.LocalCluster"},
         "address='tcp://127.0.0.1:8786'"),
        ({"address": "tcp://127.0.0.1:8786", "adapt_kwargs": {}}, "cannot be given with it"),
        ({"cluster_class": "no.such.Class"}, "cluster_class='no.such.Class'"),
        ({"cluster_class": "LocalCluster"}, "import path"),
        ({"cluster_class": "threading.Lock", "adapt_kwargs": {"maximum": 2}}, "cannot adapt"),
        ({"cluster_kwargs": {"asynchronous": True}}, "cluster_kwargs cannot set 'asynchronous'"),
        ({"client_kwargs": {"asynchronous": True}}, "client_kwargs cannot set 'asynchronous'"),
        ({"cluster_kwargs": ["n_workers", 2]}, "must be a dict"),
    ],
)  # fmt: skip
def test_bad_arguments_fail_at_construction_naming_them(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        DaskTaskRunner(**kwargs)
    assert named in str(info.value)


def test_an_unreachable_address_fails_the_flow_naming_it(h: Harness) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"

    @flow(task_runner=DaskTaskRunner(address=address, client_kwargs={"timeout": 1}))
    def unreachable() -> int:
        return _tasks.inc.submit(1).result()

    with pytest.raises(ConnectionError, match=f"address='{address}'.*no Dask scheduler"):
        unreachable()
    assert h.flow_run().state.name == "Failed"


def test_an_external_scheduler_and_worker_started_as_commands(h: Harness, tmp_path: Path) -> None:
    """`dask scheduler` and `dask worker` as subprocesses, reached by ``address``."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    # The worker imports the tasks by the name this session gave their module.
    package_root = Path(_tasks.__file__).resolve().parents[_tasks.__name__.count(".")]
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(package_root)])}
    dask = [sys.executable, "-m", "dask"]  # (the `dask` command)
    common = {
        "env": env,
        "cwd": tmp_path,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
    }
    scheduler = subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        **common,  # type: ignore[call-overload]
    )
    worker = subprocess.Popen(
        [*dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--no-nanny"],
        **common,  # type: ignore[call-overload]
    )
    try:
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=30)

        @flow(task_runner=DaskTaskRunner(address=address))
        def external() -> tuple[int, list[int]]:
            return _tasks.inc.submit(1).result(), _tasks.inc.map([1, 2]).result()

        assert external() == (2, [2, 3])
        assert len(h.task_runs(_tasks.inc)) == 3
    finally:
        # (SIGKILL: a `dask worker` may take its time over SIGTERM, and the harness's frozen
        # clock would keep a wait(timeout=...) from ever timing out)
        for process in (worker, scheduler):
            process.kill()
        for process in (worker, scheduler):
            process.wait()


def test_running_reaches_the_store_while_the_task_runs(dask_cluster: Any, tmp_path: Path) -> None:
    """The run's start comes back through Dask's structured events, before its outcome."""
    assert_running_shows_while_it_runs(DaskTaskRunner(cluster=dask_cluster), tmp_path)


def test_a_cluster_that_goes_away_mid_flow_fails_the_flow_run_clearly(
    h: Harness, tmp_path: Path
) -> None:
    from wfkit.testing.runner_conformance import wait_for_gate

    gate = tmp_path / "gate"
    cluster = distributed.LocalCluster(
        processes=True, n_workers=1, threads_per_worker=1, dashboard_address=":0"
    )

    def close_once_running() -> None:
        for _ in range(3000):  # (until the store shows it running: up to ~30 s)
            runs = h.task_runs(wait_for_gate)
            if runs and runs[0].state.name == "Running":
                break
            threading.Event().wait(0.01)
        cluster.close()

    closer = threading.Thread(target=close_once_running)
    closer.start()

    @flow(task_runner=DaskTaskRunner(cluster=cluster))
    def abandoned() -> str:
        return wait_for_gate.submit(str(gate)).result()

    try:
        with pytest.raises(ConnectionError, match="the Dask cluster at tcp://.* went away"):
            abandoned()
    finally:
        closer.join(60)
        cluster.close()
    assert h.flow_run().state.name == "Failed"
    assert h.task_run(wait_for_gate).state_names == ["Pending", "Running", "Crashed"]


def test_timeouts_are_enforced_on_the_worker(dask_cluster: Any, tmp_path: Path) -> None:
    from wfkit.context import use_runtime

    @flow(task_runner=DaskTaskRunner(cluster=dask_cluster))
    def slow() -> Any:
        return _tasks.overstays.submit().wait()

    with use_runtime(store="memory://") as rt:  # (a real clock: the timeout is real)
        slow()
        (run,) = rt.store.task_runs()
    assert run.state_names == ["Pending", "Running", "TimedOut"]
