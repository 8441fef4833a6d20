"""Flows the web page's tests record: a retried task, cache hits, upstream dependencies, a
child flow, and names and log lines made of HTML (a failed run and a wide one are the ``wf``
tests' own)."""

from __future__ import annotations

import time

from cli._flows import boom, wide  # noqa: F401 - (a failed run; a run of many task runs)
from wfkit import flow, get_run_logger, task
from wfkit.cache_policies import INPUTS

_failed_once: set[int] = set()


@task(task_run_name="extract-{n}")
def extract(n: int) -> list[int]:
    return list(range(n))


@task(task_run_name="flaky", retries=2, retry_delay_seconds=5)
def flaky(rows: list[int]) -> int:
    x = rows[-1]
    time.sleep(1)  # (on the harness's fake clock)
    if x not in _failed_once:  # fails its first attempt: two attempts, one retry wait
        _failed_once.add(x)
        raise ValueError("flaky")
    time.sleep(1)
    return x + 1


@task(task_run_name="square-{x}", cache_policy=INPUTS)
def square(x: int) -> int:
    get_run_logger().info("squaring %d", x)
    return x * x


@task(task_run_name="total")
def total(values: list[int]) -> int:
    return sum(values)


@flow(flow_run_name="child-{n}")
def child(n: int) -> int:
    return n


@flow(flow_run_name="pipeline-{n}")
def pipeline(n: int = 3) -> int:
    bumped = flaky.submit(extract.submit(n))
    squares = [square.submit(x, wait_for=[bumped]) for x in (1, 2)]
    again = square.submit(2, wait_for=squares)  # after the first square(2): a cache hit
    child(n)
    return total.submit([*squares, again]).result()


@flow(name="<script>alert(1)</script>", flow_run_name="<b>evil</b>")
def evil(note: str = "<i>param</i>") -> str:
    get_run_logger().warning("<img src=x onerror=alert(2)>")
    return "<em>result</em>"
