"""Tasks for the Ray tests (module level: Ray workers import them by name)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import ray

from wfkit import get_run_logger, task


@task
def assigned_cpus() -> float:
    """The CPUs Ray gave the worker running this task."""
    return float(ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0))


@task
def reports_its_pid(path: str) -> str:
    """Writes its worker's pid to ``path``, then waits (in real time) to be killed; run
    again once it has been, it returns at once."""
    if os.path.exists(path):
        return "ran again"
    with open(f"{path}.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(f"{path}.tmp", path)
    threading.Event().wait(60)
    return "never killed"


@task
def streams() -> Iterator[int]:
    """A generator task (they cannot be submitted)."""
    yield 1


@task
def returns_a_lock() -> threading.Lock:
    """A result that cannot go back to the flow's process."""
    return threading.Lock()


@task
def fetches(ref: list[Any]) -> int:
    """The value of the Ray ObjectRef in ``ref``."""
    return int(ray.get(ref[0], timeout=30))


@task
def says(x: int) -> int:
    """Prints a line and logs one on its run logger."""
    print(f"printed by says({x})", flush=True)
    get_run_logger().info("logged by says(%d)", x)
    return x + 1
