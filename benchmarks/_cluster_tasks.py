"""Tasks for benchmarks/cluster.py, in a module that the cluster's workers import by name."""

from __future__ import annotations

from wfkit import task
from wfkit.cache_policies import INPUTS


def inc(x: int) -> int:
    return x + 1


@task(name="inc")
def inc_task(x: int) -> int:
    return x + 1


@task(name="cached_inc", cache_policy=INPUTS)
def cached_inc_task(x: int, salt: str) -> int:
    """A link of a chain that takes the cluster runners' old path (a cache policy: the flow's
    process waits for the upstream value, looks the key up, then sends); ``salt`` makes
    each repeat's keys new (misses, as the first run of a pipeline)."""
    return x + 1
