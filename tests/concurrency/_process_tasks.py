"""Module-level tasks for the ProcessPoolTaskRunner tests: worker processes import tasks by
module and name, so they cannot be defined inside a test function."""

from __future__ import annotations

import os
import time

import wfkit.runtime
from wfkit import get_run_logger, task


@task
def square(x):
    return x * x


@task
def pid(x=None):
    return os.getpid()


@task
def fails(message="process task failed"):
    raise ValueError(message)


@task
def identity():
    return {
        "flow_run_id": wfkit.runtime.flow_run.id,
        "task_run_id": wfkit.runtime.task_run.id,
        "task_run_name": wfkit.runtime.task_run.name,
        "tags": sorted(wfkit.runtime.task_run.tags),
    }


@task
def flow_run_seen():
    run = wfkit.runtime.flow_run
    return {"id": run.id, "name": run.name, "parameters": dict(run.parameters)}


@task(tags=["proc"])
def tagged():
    return sorted(wfkit.runtime.task_run.tags)


@task
def logs(x):
    get_run_logger().info("hello from process task %s", x)
    return x


@task
def virtual_sleep(seconds):
    # Under a harness, time.sleep inside a run must be virtual in the worker process too;
    # refuse to really sleep (which would make a broken engine slow instead of failing).
    if not hasattr(time.sleep, "__wrapped__"):
        raise RuntimeError("time.sleep is not virtual in the worker process")
    time.sleep(seconds)
    return seconds


@task(retries=2, retry_delay_seconds=10)
def fails_twice():
    if wfkit.runtime.task_run.run_count < 3:
        raise ValueError(f"attempt {wfkit.runtime.task_run.run_count}")
    return wfkit.runtime.task_run.run_count


@task(timeout_seconds=0.5)
def too_slow():
    time.sleep(10)
    return "too late"


@task
async def async_square(x):
    return x * x


@task
def dies():
    os._exit(3)  # the worker process is lost mid-run
