"""Tag-based task concurrency limits, as on Prefect's page
docs/v3/how-to-guides/workflows/tag-based-concurrency-limits.mdx: a limit on a tag caps the
task runs carrying that tag that run at once; the others wait in a Pending state named
AwaitingConcurrencySlot."""

from __future__ import annotations

import asyncio
import threading
import time

from wfkit import flow, tags, task
from wfkit.concurrency import create_tag_limit, delete_limit, read_limit
from wfkit.context import current_clock
from wfkit.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from . import _process_tasks as pt  # module-level tasks: workers import them by name


class _Spans:
    """When each task body ran, in virtual time."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    def add(self, start: float) -> None:
        with self.lock:
            self.spans.append((start, current_clock().monotonic()))

    def peak(self) -> int:
        edges = sorted([(s, 1) for s, _ in self.spans] + [(e, -1) for _, e in self.spans])
        peak = now = 0
        for _, step in edges:
            now += step
            peak = max(peak, now)
        return peak


def test_a_tag_limit_caps_running_task_runs_and_the_rest_wait_in_awaiting_slot(h):
    create_tag_limit("database", 1)
    spans = _Spans()

    @task(tags=["database"])
    def write(i):
        start = current_clock().monotonic()
        time.sleep(5)
        spans.add(start)
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def writes():
        return [f.result() for f in [write.submit(i) for i in range(3)]]

    assert writes() == [0, 1, 2]
    assert spans.peak() == 1
    assert h.clock.elapsed >= 15
    histories = sorted(run.state_names for run in h.task_runs(write))
    assert histories[-1] == ["Pending", "Running", "Completed"]  # the one that went first
    assert ["Pending", "AwaitingConcurrencySlot", "Running", "Completed"] in histories
    waited = [r for r in h.task_runs(write) if "AwaitingConcurrencySlot" in r.state_names]
    assert waited and all(r.states[1].type.value == "PENDING" for r in waited)
    assert read_limit("tag:database").active_slots == 0


def test_tags_from_the_context_count_and_untagged_tasks_are_not_held(h):
    create_tag_limit("database", 1)

    @task
    def work():
        time.sleep(1)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def mixed():
        with tags("database"):
            limited = [work.submit() for _ in range(2)]
        free = [work.submit() for _ in range(2)]
        for f in limited + free:
            f.wait()
        return limited, free

    mixed()
    runs = h.task_runs(work)
    tagged = [r for r in runs if "database" in r.tags]
    untagged = [r for r in runs if "database" not in r.tags]
    assert len(tagged) == 2 and len(untagged) == 2
    assert all("AwaitingConcurrencySlot" not in r.state_names for r in untagged)
    assert sum("AwaitingConcurrencySlot" in r.state_names for r in tagged) <= 1


def test_a_tag_limit_of_zero_fails_the_task_run_with_the_reason(h):
    create_tag_limit("frozen", 0)

    @task(tags=["frozen"])
    def never():
        raise AssertionError("the body must not run")  # pragma: no cover

    @flow
    def main():
        state = never(return_state=True)
        return state.is_failed(), state.message

    failed, message = main()
    assert failed and "'tag:frozen'" in message
    assert h.task_run(never).state_names == ["Pending", "Failed"]


def test_a_deleted_tag_limit_no_longer_holds_tasks(h):
    create_tag_limit("database", 0)
    delete_limit("tag:database")

    @task(tags=["database"])
    def work():
        return 1

    @flow
    def main():
        return work()

    assert main() == 1


def test_async_task_runs_wait_for_tag_slots_without_blocking_the_loop(h):
    create_tag_limit("api", 2)
    spans = _Spans()

    @task(tags=["api"])
    async def call():
        start = current_clock().monotonic()
        await asyncio.sleep(3)
        spans.add(start)

    @flow
    async def calls():
        await asyncio.gather(*(call() for _ in range(5)))

    asyncio.run(calls())
    assert spans.peak() <= 2
    # (No elapsed-time check: gathered async task calls share one timeline in wfkit, so
    # their sleeps add up even without a limit.)
    waited = [r for r in h.task_runs(call) if "AwaitingConcurrencySlot" in r.state_names]
    assert len(waited) == 3


def test_a_tag_limit_holds_task_runs_on_a_process_pool(h):
    create_tag_limit("gpu", 1)

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def trainings():
        return [f.result() for f in [pt.train.submit(i) for i in range(2)]]

    trainings()
    histories = [r.state_names for r in h.task_runs(pt.train)]
    assert ["Pending", "AwaitingConcurrencySlot", "Running", "Completed"] in histories
    assert read_limit("tag:gpu").active_slots == 0
