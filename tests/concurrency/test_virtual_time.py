"""Under the harness, concurrent sleepers advance virtual time to the latest wake-up, not to
the sum of their sleeps; waiting for a run that finished later moves the waiter's time on."""

from __future__ import annotations

import asyncio
import threading
import time

from wfkit import flow, task, unmapped
from wfkit.task_runners import ThreadPoolTaskRunner


@task
def sleeper(seconds, label=None):
    time.sleep(seconds)
    return label


def test_concurrent_sleepers_advance_time_to_the_latest_wake_up(h):
    @flow
    def main():
        futures = [sleeper.submit(60, i) for i in range(10)]
        return [f.result() for f in futures]

    assert main() == list(range(10))
    assert h.clock.elapsed == 60  # not 600
    assert h.clock.sleeps == [60.0] * 10


def test_mapped_sleepers_advance_time_to_the_latest_wake_up(h):
    @flow
    def main():
        return sleeper.map([10, 60, 30], unmapped("x")).result()

    assert main() == ["x", "x", "x"]
    assert h.clock.elapsed == 60
    assert sorted(h.clock.sleeps) == [10.0, 30.0, 60.0]


def test_more_sleepers_than_workers_still_overlap(h):
    # Virtual time models the tasks as concurrent from the moment they are submitted; a pool
    # smaller than the batch does not serialise their virtual sleeps.
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def main():
        return sleeper.map([60] * 6).result()

    main()
    assert h.clock.elapsed == 60


def test_submission_loop_interleaved_with_finished_sleepers(h):
    # Each submission happens at the flow's own virtual time (0), even when earlier submitted
    # sleepers have already run (in real time) by then.
    @flow
    def main():
        futures = []
        for i in range(5):
            futures.append(sleeper.submit(60, i))
            threading.Event().wait(0.05)  # real time passes; the flow learns nothing
        return [f.result() for f in futures]

    assert main() == list(range(5))
    assert h.clock.elapsed == 60


def test_concurrent_retry_delays_overlap(h):
    attempts: dict[int, int] = {}
    lock = threading.Lock()

    @task(retries=1, retry_delay_seconds=30)
    def flaky(x):
        time.sleep(60)
        with lock:
            attempts[x] = attempts.get(x, 0) + 1
            first = attempts[x] == 1
        if first:
            raise ValueError(f"first attempt of {x}")
        return x

    @flow
    def main():
        return flaky.map(range(4)).result()

    assert main() == [0, 1, 2, 3]
    assert h.clock.elapsed == 60 + 30 + 60  # not 4 * 150
    assert sorted(h.clock.sleeps) == [30.0] * 4 + [60.0] * 8
    for run in h.task_runs(flaky):
        assert run.state_names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
        # The retry was scheduled 30 s after the failure on the task's own timeline.
        awaiting = run.states[2]
        assert (awaiting.scheduled_time - h.clock.start).total_seconds() == 90
        assert (run.end_time - h.clock.start).total_seconds() == 150


def test_downstream_starts_when_its_upstream_finished(h):
    @task
    def down(x):
        time.sleep(10)
        return x

    @flow
    def main():
        up = sleeper.submit(60, "data")
        independent = sleeper.submit(30, "other")
        return down.submit(up).result(), independent.result()

    assert main() == ("data", "other")
    assert h.clock.elapsed == 70
    (down_run,) = h.task_runs(down)
    assert (down_run.start_time - h.clock.start).total_seconds() == 60
    assert (down_run.end_time - h.clock.start).total_seconds() == 70


def test_wait_for_upstream_moves_time_like_data_does(h):
    @flow
    def main():
        up = sleeper.submit(60)
        return sleeper.submit(10, "after", wait_for=[up]).result()

    assert main() == "after"
    assert h.clock.elapsed == 70


def test_chain_of_dependencies_adds_up(h):
    @task
    def step(previous, seconds):
        time.sleep(seconds)
        return previous + [seconds]

    @flow
    def main():
        a = step.submit([], 5)
        b = step.submit(a, 10)
        c = step.submit(b, 20)
        side = sleeper.submit(30)  # overlaps the chain
        return c.result(), side.result()

    assert main() == ([5, 10, 20], None)
    assert h.clock.elapsed == 35


def test_sequential_sleeps_in_one_task_add_up(h):
    @task
    def several():
        for _ in range(3):
            time.sleep(10)

    @flow
    def main():
        return [f.result() for f in (several.submit(), several.submit())]

    main()
    assert h.clock.elapsed == 30  # two tasks of 3 x 10 s each, concurrently
    assert h.clock.sleeps == [10.0] * 6


def test_flow_continues_at_the_time_its_results_arrived(h):
    # A flow that waits for a result is at the time that result was ready; its own sleep
    # afterwards adds to that.
    @flow
    def main():
        sleeper.submit(60).result()
        time.sleep(5)

    main()
    assert h.clock.elapsed == 65


def test_flow_sleep_overlapping_its_tasks(h):
    # The flow's own sleep runs concurrently with a task it submitted before: the latest
    # wake-up wins.
    @flow
    def main():
        future = sleeper.submit(60)
        threading.Event().wait(0.1)  # real time passes; the flow learns nothing
        time.sleep(10)
        return future.result()

    main()
    assert h.clock.elapsed == 60


def test_sequential_flows_each_see_their_own_concurrency(h):
    @flow
    def main():
        return sleeper.map([20, 20, 20]).result()

    main()
    main()
    assert h.clock.elapsed == 40  # the second flow starts where the first ended


def test_async_sleepers_in_a_sync_flow(h):
    @task
    async def nap(seconds):
        await asyncio.sleep(seconds)
        return seconds

    @flow
    def main():
        return nap.map([5, 15, 10]).result()

    assert main() == [5, 15, 10]
    assert h.clock.elapsed == 15
