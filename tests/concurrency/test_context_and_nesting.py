"""The run context reaches workers; nested submissions never deadlock."""

from __future__ import annotations

import threading

import wfkit
import wfkit.futures
import wfkit.runtime
from wfkit import flow, get_run_logger, tags, task
from wfkit.context import current_runtime
from wfkit.futures import as_completed
from wfkit.task_runners import ThreadPoolTaskRunner


@task
def inner(x):
    return x * 10


# -- nested submissions ---------------------------------------------------------------------
def test_nested_submissions_with_a_bounded_pool_do_not_deadlock(h, in_thread):
    @task
    def outer(x):
        return inner.submit(x).result() + 1

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def main():
        return outer.map(range(6)).result()

    assert in_thread(main, timeout=60) == [1, 11, 21, 31, 41, 51]
    assert len(h.task_runs(outer)) == 6
    assert len(h.task_runs(inner)) == 6
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in h.task_runs())


def test_deep_nesting_on_a_single_worker(h, in_thread):
    @task
    def chain(depth):
        if depth == 0:
            return 0
        return chain.submit(depth - 1).result() + 1

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def main():
        return chain.map([3, 5]).result()

    assert in_thread(main, timeout=60) == [3, 5]
    assert len(h.task_runs(chain)) == 4 + 6


def test_nested_map_and_future_list_result_on_a_bounded_pool(h, in_thread):
    @task
    def fan(x):
        return sum(inner.map([x, x, x]).result())

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def main():
        return fan.map(range(4)).result()

    assert in_thread(main, timeout=60) == [0, 30, 60, 90]


def test_nested_as_completed_on_a_bounded_pool(h, in_thread):
    # Waiting with as_completed (not result()) inside a worker: the inner runs must still get
    # to run although every worker is busy waiting. (A deadlock shows as a TimeoutError.)
    @task
    def fan(x):
        futures = inner.map([x, x + 1])
        return sorted(f.result() for f in as_completed(futures, timeout=5))

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def main():
        return fan.map(range(4)).result()

    assert in_thread(main, timeout=60) == [[0, 10], [10, 20], [20, 30], [30, 40]]


def test_nested_module_wait_on_a_bounded_pool(h, in_thread):
    @task
    def fan(x):
        futures = inner.map([x, x])
        done, not_done = wfkit.futures.wait(futures)
        return len(done), len(not_done)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def main():
        return fan.map(range(3)).result()

    assert in_thread(main, timeout=60) == [(2, 0)] * 3


def test_the_end_of_a_flow_runs_queued_work_its_busy_pool_has_not_started(h, in_thread):
    # The only worker waits for work queued behind it; the flow waits for both when it
    # ends, and runs the queued one itself instead of sleeping.
    released = threading.Event()
    kept = []

    @task
    def blocked():
        return released.wait(20)

    @task
    def release():
        released.set()

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def main():
        kept.append(blocked.submit())
        assert kept[0].state.name in ("Pending", "Running")
        release.submit()

    in_thread(main, timeout=60)
    assert kept[0].result() is True  # released, not timed out
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in h.task_runs())


def test_a_pool_runs_many_items_on_at_most_max_workers_threads(h):
    @task
    def where(i):
        return threading.current_thread().name

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def main():
        return where.map(range(300)).result()

    names = set(main()) - {threading.current_thread().name}  # the flow may run some itself
    assert names and len(names) <= 2


def test_nested_submissions_record_the_same_flow_run(h):
    @task
    def outer(x):
        return inner.submit(x).result()

    @flow
    def main():
        return outer.submit(2).result()

    assert main() == 20
    flow_run = h.flow_run(main)
    assert {r.flow_run_id for r in h.task_runs()} == {flow_run.id}


# -- context in workers ---------------------------------------------------------------------
def test_runtime_in_submitted_tasks(h):
    @task
    def where():
        return {
            "flow_run_id": wfkit.runtime.flow_run.id,
            "flow_name": wfkit.runtime.flow_run.flow_name,
            "task_run_id": wfkit.runtime.task_run.id,
            "task_name": wfkit.runtime.task_run.task_name,
            "parameters": wfkit.runtime.task_run.parameters,
            "thread": threading.current_thread().name,
        }

    @task
    async def where_async():
        return wfkit.runtime.flow_run.id, wfkit.runtime.task_run.id

    seen = {}

    @flow(name="ctx-flow")
    def main():
        futures = [where.submit() for _ in range(3)]
        async_future = where_async.submit()
        seen.update(futures=futures, async_future=async_future)
        return [f.result() for f in futures], async_future.result()

    infos, (async_flow_id, async_task_id) = main()
    flow_run = h.flow_run(main)
    for future, info in zip(seen["futures"], infos, strict=True):
        assert info["flow_run_id"] == flow_run.id
        assert info["flow_name"] == "ctx-flow"
        assert info["task_run_id"] == future.task_run_id
        assert info["task_name"] == "where"
        assert info["parameters"] == {}
        assert info["thread"] != threading.main_thread().name
    assert async_flow_id == flow_run.id
    assert async_task_id == seen["async_future"].task_run_id


def test_runtime_clock_store_and_harness_reach_workers(h):
    @task
    def runtime_parts():
        rt = current_runtime()
        return rt.clock, rt.store, rt.harness

    @task
    async def runtime_parts_async():
        rt = current_runtime()
        return rt.clock, rt.store, rt.harness

    @flow
    def main():
        return runtime_parts.submit().result(), runtime_parts_async.submit().result()

    for clock, store, harness in main():
        assert clock is h.clock
        assert store is h.store
        assert harness is h


def test_tags_reach_submitted_task_runs(h):
    @task(tags=["own"])
    def tagged(x=None):
        return sorted(wfkit.runtime.task_run.tags)

    @flow
    def main():
        with tags("inner"):
            first = tagged.submit()
            mapped = tagged.map(range(2))
        plain = tagged.submit()
        return first.result(), mapped.result(), plain.result()

    with tags("outer"):
        first, mapped, plain = main()
    assert first == ["inner", "outer", "own"]
    assert mapped == [["inner", "outer", "own"]] * 2
    assert plain == ["outer", "own"]
    records = h.task_runs(tagged)
    assert len(records) == 4
    assert sorted(sorted(r.tags) for r in records) == sorted(
        [["inner", "outer", "own"]] * 3 + [["outer", "own"]]
    )
    assert h.flow_run(main).tags == ("outer",)


def test_the_harness_store_receives_submitted_runs(h):
    @task
    def fails():
        raise RuntimeError("no")

    @flow
    def main():
        inner.map(range(3)).wait()
        fails.submit().wait()

    main()
    flow_run = h.flow_run(main)
    assert len(h.task_runs(inner, flow_run=flow_run)) == 3
    (failed,) = h.task_runs(fails)
    assert failed.state_names == ["Pending", "Running", "Failed"]
    assert failed.flow_run_id == flow_run.id
    assert failed.start_time is not None and failed.end_time is not None


def test_run_logger_in_submitted_tasks_reaches_the_store(h):
    @task
    def chatty(x):
        get_run_logger().info("working on %s", x)
        return x

    @task
    async def chatty_async(x):
        get_run_logger().warning("async on %s", x)
        return x

    seen = {}

    @flow
    def main():
        futures = chatty.map(["a", "b"])
        async_future = chatty_async.submit("c")
        seen.update(futures=futures, async_future=async_future)
        futures.wait()
        async_future.wait()

    main()
    flow_run = h.flow_run(main)
    expected = {
        seen["futures"][0].task_run_id: "working on a",
        seen["futures"][1].task_run_id: "working on b",
        seen["async_future"].task_run_id: "async on c",
    }
    for task_run_id, message in expected.items():
        logs = [r for r in h.logs(task_run_id) if r.message == message]
        assert len(logs) == 1, h.logs()
        assert logs[0].task_run_id == task_run_id
        assert logs[0].flow_run_id == flow_run.id
