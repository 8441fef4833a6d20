"""Tasks for the cluster tests, at module level so that cluster workers import them by name."""

from __future__ import annotations

import operator
import os
import signal
import threading
import time

import wfkit.runtime
from wfkit import get_run_logger, task
from wfkit.cache_policies import INPUTS
from wfkit.task_runners.dask import get_dask_client


@task
def inc(x: int) -> int:
    get_run_logger().info("inc got %s", x)
    return x + 1


@task
def where() -> int:
    """The process the task ran in."""
    return os.getpid()


@task(cache_policy=INPUTS)
def cached_double(x: int) -> tuple[int, int]:
    return 2 * x, os.getpid()


@task
def kills_its_worker() -> None:
    """Kills the worker process running it (the cluster's nanny starts a new one)."""
    os.kill(os.getpid(), signal.SIGKILL)


@task
def adds_on_the_cluster(x: int) -> int:
    """Submits work to the same scheduler from inside a task."""
    with get_dask_client() as client:
        return int(client.submit(operator.add, x, 1).result())


@task
def run_count_and_pid() -> tuple[int, int]:
    return int(wfkit.runtime.task_run.run_count), os.getpid()


@task(timeout_seconds=1)
def overstays() -> str:
    """Waits far past its timeout, in real time."""
    threading.Event().wait(20)
    return "finished anyway"


# Dependencies resolved on the cluster ---------------------------------------------------------
def note(log: str, line: str) -> None:
    """Append ``line`` to the file ``log`` (one line per event, from any process)."""
    with open(log, "a") as f:
        f.write(line + "\n")


class Handed:
    """A value that cannot be unpickled in the flow's process (``flow_pid``): a run
    downstream of one that returns it can only get it on the cluster."""

    def __init__(self, flow_pid: int) -> None:
        self.flow_pid = flow_pid

    def __setstate__(self, state: dict[str, int]) -> None:
        if os.getpid() == state["flow_pid"]:
            raise RuntimeError("a Handed value may not reach the flow's process")
        self.__dict__.update(state)


@task
def hands_over(flow_pid: int, log: str) -> Handed:
    # (a moment for its downstream runs to be sent: once this run has ended, they would
    # wait for its value in the flow's process instead)
    time.sleep(1.5)
    note(log, "a ran")
    return Handed(flow_pid)


@task
def passes_on(value: Handed, log: str, name: str) -> Handed:
    note(log, f"{name} ran")
    return value


@task
def describe(value: object) -> str:
    return type(value).__name__


@task
def fails() -> int:
    raise ValueError("upstream broke")


@task
def total(values: list[int], offset: int = 0) -> int:
    return sum(values) + offset


@task
def returns_a_lock() -> object:
    """Returns what no serializer can send back to the flow's process."""
    return threading.Lock()
