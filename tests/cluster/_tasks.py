"""Tasks for the cluster tests, at module level so that cluster workers import them by name."""

from __future__ import annotations

import operator
import os
import signal
import threading

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
