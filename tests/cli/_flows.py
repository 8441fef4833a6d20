"""Flows the ``wf`` tests record (imported as ``cli._flows``: ``wf runs retry`` finds them by
their recorded import path). Run names are fixed, so outputs are stable."""

from __future__ import annotations

import time

from wfkit import flow, get_run_logger, task

_failed_once: set[int] = set()


@task(task_run_name="add-{x}", retries=1, retry_delay_seconds=5)
def add(x: int) -> int:
    if x == 2 and x not in _failed_once:  # fails its first attempt: one retry, one wait
        _failed_once.add(x)
        raise ValueError("flaky")
    get_run_logger().info("adding one to %d", x)
    return x + 1


@flow(flow_run_name="child-{n}")
def child(n: int) -> int:
    return n


@task(task_run_name="call-child-{n}")
def call_child(n: int) -> int:
    return child(n)


@flow(flow_run_name="etl-{n}", log_prints=True)
def etl(n: int = 3) -> int:
    print(f"summing {n} numbers")
    get_run_logger().warning("a warning")
    call_child(7)
    time.sleep(1)  # (on the harness's fake clock)
    return sum(add(i) for i in range(n))


@flow(flow_run_name="boom")
def boom() -> None:
    raise RuntimeError("kaput")


@task(task_run_name="noop-{i}")
def noop(i: int) -> int:
    return i


@flow(flow_run_name="wide-{n}")
def wide(n: int) -> int:
    return sum(noop(i) for i in range(n))
