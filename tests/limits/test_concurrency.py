"""concurrency() and rate_limit(), as Prefect's "global concurrency limits" how-to page
(docs/v3/how-to-guides/workflows/global-concurrency-limits.mdx) uses them, with the limits
kept in the run store and every wait in virtual time under the harness."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time

import pytest

from wfkit import flow, task
from wfkit.concurrency import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    create_limit,
    delete_limit,
    list_limits,
    read_limit,
)
from wfkit.concurrency import asyncio as aconc
from wfkit.concurrency.sync import concurrency, rate_limit
from wfkit.context import current_clock
from wfkit.exceptions import ConfigurationError
from wfkit.task_runners import ThreadPoolTaskRunner


class _Peak:
    """How many holders were inside a block at once, at most, in virtual time (the block's
    entry and exit times on the run's clock; sleeps under the harness return at once)."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def inside(self):
        start = current_clock().monotonic()
        yield
        with self.lock:
            self.spans.append((start, current_clock().monotonic()))

    @property
    def peak(self) -> int:
        edges = sorted([(s, 1) for s, _ in self.spans] + [(e, -1) for _, e in self.spans])
        return max(itertools.accumulate(step for _, step in edges))


def test_a_limit_caps_the_tasks_inside_the_block_and_waits_in_virtual_time(h):
    # The page's "database" example: a task takes one slot of the limit for its query.
    create_limit("database", 2)
    inside = _Peak()

    @task
    def query(i):
        with concurrency("database", occupy=1):
            with inside.inside():
                time.sleep(10)
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=6))
    def queries():
        return [f.result() for f in [query.submit(i) for i in range(6)]]

    assert queries() == list(range(6))
    assert inside.peak == 2, sorted(inside.spans)
    # At least three rounds of two ten-second queries; which thread asks first is up to the
    # threads, and a late asker may wait a round longer (slots are never overbooked).
    assert h.clock.elapsed >= 30, sorted(inside.spans)
    assert read_limit("database").active_slots == 0


def test_concurrency_works_in_a_flow_and_outside_any_run(h):
    create_limit("db", 1)

    @flow
    def holder():
        with concurrency("db"):
            return read_limit("db").active_slots

    assert holder() == 1
    with concurrency("db"):
        assert read_limit("db").active_slots == 1
    assert read_limit("db").active_slots == 0


def test_a_timeout_while_waiting_names_the_limit(h):
    create_limit("db", 1)
    with concurrency("db"):
        with pytest.raises(AcquireConcurrencySlotTimeoutError, match="'db'") as info:
            with concurrency("db", timeout_seconds=5):
                pass  # pragma: no cover - never entered
    assert isinstance(info.value, TimeoutError)
    assert h.clock.elapsed == 5
    assert read_limit("db").active_slots == 0


def test_waiting_for_a_slot_this_thread_holds_without_a_timeout_is_refused(h):
    create_limit("db", 1)
    with concurrency("db"), pytest.raises(ConcurrencySlotAcquisitionError, match="itself"):
        with concurrency("db"):
            pass  # pragma: no cover - never entered


def test_a_timeout_also_ends_a_wait_for_another_threads_slot(h):
    create_limit("db", 1)
    errors = []

    taken = threading.Event()

    @task
    def long_holder():
        with concurrency("db"):
            taken.set()
            time.sleep(60)

    @task
    def impatient():
        assert taken.wait(60)  # ask only once the holder has the slot (real time)
        try:
            with concurrency("db", timeout_seconds=5):
                pass  # pragma: no cover - never entered
        except TimeoutError as exc:
            errors.append(exc)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def both():
        futures = [long_holder.submit(), impatient.submit()]
        for f in futures:
            f.wait()

    both()
    assert len(errors) == 1 and "'db'" in str(errors[0])


def test_rate_limit_spreads_calls_at_the_decay_rate(h):
    # The page's rate limit: slots drain at slot_decay_per_second, so calls beyond the
    # limit wait for the room to come back.
    create_limit("api", 2, slot_decay_per_second=0.5)

    @flow
    def calls():
        for _ in range(5):
            rate_limit("api")

    calls()
    assert h.clock.elapsed == 6  # two at once, then one every 2 s


def test_an_undefined_limit_runs_without_it_and_warns(h, caplog):
    caplog.set_level(logging.WARNING, logger="wfkit.concurrency")
    with concurrency("nowhere"):
        pass
    rate_limit("nowhere")
    assert sum("'nowhere' does not exist" in r.getMessage() for r in caplog.records) == 2


def test_an_undefined_limit_with_strict_is_an_error(h):
    with pytest.raises(ConcurrencySlotAcquisitionError, match="'nowhere'.*strict=True"):
        with concurrency("nowhere", strict=True):
            pass  # pragma: no cover - never entered
    with pytest.raises(ConcurrencySlotAcquisitionError, match="'nowhere'"):
        rate_limit("nowhere", strict=True)


@pytest.mark.parametrize("occupy", [0, -1, 1.5, True])
def test_occupy_must_be_a_positive_whole_number(h, occupy):
    create_limit("db", 3)
    with pytest.raises(ConfigurationError, match=f"occupy={occupy!r}"):
        with concurrency("db", occupy=occupy):
            pass  # pragma: no cover - never entered


def test_occupy_above_the_limit_is_refused(h):
    create_limit("db", 3)
    with pytest.raises(ConcurrencySlotAcquisitionError, match="occupy=4.*3 slots.*'db'"):
        with concurrency("db", occupy=4, strict=True):
            pass  # pragma: no cover - never entered


def test_rate_limit_on_a_limit_without_decay_is_refused(h):
    create_limit("db", 3)
    with pytest.raises(ConfigurationError, match="'db'.*slot_decay_per_second=0"):
        rate_limit("db")


@pytest.mark.parametrize("names", [[], "", 3, ["ok", "bad/name"]])
def test_bad_names_are_refused(h, names):
    with pytest.raises(ConfigurationError, match="name"):
        with concurrency(names):
            pass  # pragma: no cover - never entered


def test_several_limits_are_taken_together(h):
    create_limit("a", 1)
    create_limit("b", 2)
    with concurrency(["a", "b"]):
        assert [lim.active_slots for lim in list_limits()] == [1, 1]
    assert [lim.active_slots for lim in list_limits()] == [0, 0]


def test_limits_are_managed_from_python(h):
    made = create_limit("db", 5, slot_decay_per_second=1.5)
    assert (made.name, made.limit, made.slot_decay_per_second) == ("db", 5, 1.5)
    assert [lim.name for lim in list_limits()] == ["db"]
    assert delete_limit("db") is True
    assert read_limit("db") is None and delete_limit("db") is False


def test_the_asyncio_face_waits_without_blocking_the_loop(h):
    create_limit("db", 1)
    create_limit("api", 1, slot_decay_per_second=1)
    inside = _Peak()

    async def job():
        async with aconc.concurrency("db"):
            with inside.inside():
                await asyncio.sleep(3)

    @flow
    async def jobs():
        await asyncio.gather(*(job() for _ in range(3)))
        for _ in range(3):
            await aconc.rate_limit("api")

    asyncio.run(jobs())
    assert inside.peak == 1
    assert h.clock.elapsed == 9 + 2
