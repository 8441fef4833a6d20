"""Async tasks on task runners: from sync and async flows, concurrently on one event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import wfkit.runtime
from wfkit import flow, task
from wfkit.context import use_runtime


@task
async def async_square(x):
    await asyncio.sleep(0)
    return x * x


@task
async def async_fail():
    await asyncio.sleep(0)
    raise ValueError("async boom")


@task
def sync_add(x, y):
    return x + y


def test_async_tasks_submitted_from_a_sync_flow(h):
    @flow
    def main():
        one = async_square.submit(3)
        many = async_square.map([1, 2, 4])
        return one.result(), many.result()

    assert main() == (9, [1, 4, 16])
    runs = h.task_runs(async_square)
    assert len(runs) == 4
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in runs)
    assert {r.flow_run_id for r in runs} == {h.flow_run(main).id}


def test_async_tasks_submitted_from_an_async_flow(h):
    @flow
    async def main():
        one = async_square.submit(5)
        many = async_square.map(range(3))
        return await one, many.result()

    assert asyncio.run(main()) == (25, [0, 1, 4])
    assert len(h.task_runs(async_square)) == 4


def test_async_task_failure(h):
    @flow
    async def main():
        future = async_fail.submit()
        future.wait()
        return future.state.name, type(future.result(raise_on_failure=False))

    assert asyncio.run(main()) == ("Failed", ValueError)
    assert h.task_run(async_fail).state_names == ["Pending", "Running", "Failed"]


def test_sync_and_async_tasks_depend_on_each_other(h):
    @flow
    def main():
        a = async_square.submit(2)
        b = sync_add.submit(a, 1)
        c = async_square.submit(b)
        return c.result()

    assert main() == 25
    first, last = h.task_runs(async_square)
    (middle,) = h.task_runs(sync_add)
    assert middle.upstream_ids == (first.id,)
    assert last.upstream_ids == (middle.id,)


def test_async_tasks_share_one_event_loop_thread_per_flow_run(h):
    @task
    async def loop_info(i):
        return id(asyncio.get_running_loop()), threading.current_thread().name

    @flow
    def main():
        return loop_info.map(range(5)).result()

    infos = main()
    assert len(set(infos)) == 1  # one loop, one thread
    assert infos[0][1] != threading.main_thread().name


def test_many_async_tasks_run_concurrently_real_clock():
    # The issue asks for "well under 100 x 0.1 s": each task awaits 0.1 s, so sequentially this
    # takes 10 s. The bound is generous (5 s) so that a slow CI machine does not fail it; it
    # still fails if the tasks were run one after another.
    @task
    async def nap(i):
        await asyncio.sleep(0.1)
        return i

    @flow
    async def main():
        return nap.map(range(100)).result()

    with use_runtime(store="memory://") as rt:
        started = time.perf_counter()
        results = asyncio.run(main())
        wall = time.perf_counter() - started
        runs = rt.store.task_runs(task_name="nap")
    assert results == list(range(100))
    assert wall < 5.0, f"100 concurrent 0.1 s sleeps took {wall:.2f} s"
    assert len(runs) == 100
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in runs)


def test_many_async_tasks_sleep_virtually_under_the_harness(h):
    @task
    async def nap(i):
        await asyncio.sleep(0.1)
        return i

    @flow
    async def main():
        futures = [nap.submit(i) for i in range(100)]
        return [await f for f in futures]

    assert asyncio.run(main()) == list(range(100))
    assert h.clock.elapsed == 0.1
    assert h.clock.sleeps == [0.1] * 100


def test_async_task_runtime_context(h):
    @task
    async def ids():
        return wfkit.runtime.flow_run.id, wfkit.runtime.task_run.id

    seen = {}

    @flow
    async def main():
        future = ids.submit()
        seen["future"] = future
        return await future

    flow_run_id, task_run_id = asyncio.run(main())
    assert flow_run_id == h.flow_run(main).id
    assert task_run_id == seen["future"].task_run_id
