"""A script for ``test_signals.py``: a flow maps a task over 500 items; item 3 says when it
is running (one line on stdout) and then blocks, so the test can send a signal at that point.

Usage: ``python signal_script.py STORE_URL [--user-handler] [--inline] [--raise-in-worker]
[--async] [--process]`` (``--async``: an async flow mapping an async task, or awaiting it
inline; ``--process``: the sync flow's task runs in a process pool).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time

from wfkit import flow, task
from wfkit.context import use_runtime
from wfkit.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

BLOCKING_ITEM = 3


@task
def step(i: int) -> int:
    if i == BLOCKING_ITEM:
        print(f"running {threading.current_thread().name}", flush=True)
        if "--raise-in-worker" in sys.argv:
            raise KeyboardInterrupt  # what a Ctrl-C in this thread would do
        time.sleep(60)  # the test signals the process long before this ends
    time.sleep(0.05)
    return i


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def many() -> int:
    if "--inline" in sys.argv:  # the main thread runs the blocking task itself
        return sum(step(i) for i in range(500))
    futures = step.map(range(500))
    return len(futures)


@task
async def astep(i: int) -> int:
    if i == BLOCKING_ITEM:
        print(f"running {threading.current_thread().name}", flush=True)
        await asyncio.sleep(60)  # the test signals the process long before this ends
    await asyncio.sleep(0.05)
    return i


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
async def amany() -> int:
    if "--inline" in sys.argv:
        return sum([await astep(i) for i in range(500)])
    futures = astep.map(range(500))
    return len(futures)


def _user_handler(signum: int, frame: object) -> None:
    print("user handler", flush=True)
    sys.exit(7)


if __name__ == "__main__":
    if "--user-handler" in sys.argv:
        signal.signal(signal.SIGTERM, _user_handler)
    with use_runtime(store=sys.argv[1]):
        if "--async" in sys.argv:
            asyncio.run(amany())
        elif "--process" in sys.argv:
            many.with_options(task_runner=ProcessPoolTaskRunner(max_workers=2))()
        else:
            many()
