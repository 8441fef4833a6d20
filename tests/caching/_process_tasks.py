"""Module-level cached tasks for the ProcessPoolTaskRunner tests: worker processes import
tasks by module and name, so they cannot be defined inside a test function."""

from __future__ import annotations

import os

from wfkit import task
from wfkit.cache_policies import INPUTS


@task(cache_policy=INPUTS)
def cached_pid(x: int) -> tuple[int, int]:
    """``(x * x, pid of the process that ran the body)``: a hit returns the first pid."""
    return x * x, os.getpid()
