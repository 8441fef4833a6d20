"""Tasks for the Ray tests (module level: Ray workers import them by name)."""

from __future__ import annotations

import ray

from wfkit import task


@task
def assigned_cpus() -> float:
    """The CPUs Ray gave the worker running this task."""
    return float(ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0))
