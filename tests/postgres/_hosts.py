"""Helpers of the tests whose processes play other hosts (``WFKIT_TEST_HOST``)."""

from __future__ import annotations

import os
import textwrap
import threading
from collections.abc import Callable

#: A script: a flow of argv[1] trivial tasks, printing the sum of their results.
MANY_TASKS = textwrap.dedent(
    """
    import sys
    from wfkit import flow, task

    @task
    def square(x):
        return x * x

    @flow
    def many(n):
        return sum(square(i) for i in range(n))

    print(many(int(sys.argv[1])))
    """
)


def host_env(url: str, host: str, **more: str) -> dict[str, str]:
    """This process's environment for a child that records into ``url`` as ``host``."""
    return {**os.environ, "WFKIT_STORE": url, "WFKIT_TEST_HOST": host, **more}


def poll(condition: Callable[[], object], seconds: float = 30.0) -> bool:
    """Whether ``condition()`` became true within ``seconds`` (real time: other processes)."""
    done = threading.Event()
    for _ in range(int(seconds / 0.1)):
        if condition():
            return True
        done.wait(0.1)
    return bool(condition())
