"""Tasks for benchmarks/cluster.py, in a module that the cluster's workers import by name."""

from __future__ import annotations

from wfkit import task


def inc(x: int) -> int:
    return x + 1


@task(name="inc")
def inc_task(x: int) -> int:
    return x + 1
