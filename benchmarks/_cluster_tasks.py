"""Tasks for benchmarks/cluster.py, in a module that the cluster's workers import by name."""

from __future__ import annotations

import sys

from wfkit import task


def inc(x: int) -> int:
    return x + 1


@task(name="inc")
def inc_task(x: int) -> int:
    return x + 1


def inc_printing(x: int) -> int:
    """``inc``, writing one line to stderr as a wfkit task run logs one (Ray forwards a
    worker's lines to the driver: a cost per line that raw baselines otherwise skip)."""
    sys.stderr.write(f"00:00:00.000 | INFO    | Task run 'inc-000' - got {x}, returns {x + 1}\n")
    sys.stderr.flush()
    return x + 1
