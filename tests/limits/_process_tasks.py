"""Module-level tasks for the tag-limit test on a process pool (workers import tasks by
module and name)."""

from __future__ import annotations

import time

from wfkit import task


@task(tags=["gpu"])
def train(n: int) -> int:
    time.sleep(5)
    return n
