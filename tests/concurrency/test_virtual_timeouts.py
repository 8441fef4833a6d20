"""Under the harness, ``result(timeout=)``, ``wait(timeout=)`` and ``as_completed(timeout=)``
measure the timeout in virtual time: a run that finishes (virtually) after the deadline is
not done within it, and the waiter's time moves to the deadline; one that finishes before
is done, and the waiter's time moves to when it finished."""

from __future__ import annotations

import threading
import time

import pytest

from wfkit import flow, task
from wfkit.context import current_clock
from wfkit.futures import WfFutureList, as_completed, wait


@task
def sleeper(seconds):
    time.sleep(seconds)
    return seconds


def now() -> float:
    """The waiter's virtual time (seconds since the harness started)."""
    return current_clock().monotonic()


def all_finished_in_real_time(futures) -> None:
    """Wait (really) until every run is over, without moving anyone's virtual time."""
    for _ in range(6000):  # up to 30 s
        if all(f.done() for f in futures):
            return
        threading.Event().wait(0.005)
    raise AssertionError("the runs never finished")


def test_result_of_a_run_that_ends_after_the_deadline_times_out_at_the_deadline(h):
    seen = {}

    @flow
    def main():
        future = sleeper.submit(60)
        with pytest.raises(TimeoutError) as info:
            future.result(timeout=10)
        seen["error"], seen["at_timeout"] = str(info.value), now()
        seen["value"], seen["after_result"] = future.result(), now()

    main()
    assert "did not finish within 10 second(s)" in seen["error"]
    assert seen["at_timeout"] == 10
    assert (seen["value"], seen["after_result"]) == (60, 60)


def test_result_of_a_run_that_ends_before_the_deadline_moves_the_waiter_to_its_end(h):
    @flow
    def main():
        value = sleeper.submit(5).result(timeout=10)
        return value, now()

    assert main() == (5, 5)


def test_a_run_that_ends_exactly_at_the_deadline_is_done(h):
    @flow
    def main():
        return sleeper.submit(10).result(timeout=10), now()

    assert main() == (10, 10)


def test_future_wait_with_a_timeout_moves_the_waiter_but_never_raises(h):
    @flow
    def main():
        late, early = sleeper.submit(60), sleeper.submit(3)
        late.wait(10)
        after_late = now()
        early.wait(10)
        return after_late, now(), late.done()

    after_late, after_early, late_done = main()
    assert after_late == 10  # the deadline: the run ends at 60
    assert after_early == 10  # finished at 3: the waiter is already past it
    assert late_done  # in real time it is over; virtually it was not, at 10


def test_module_wait_splits_done_and_not_done_by_virtual_time(h):
    seen = {}

    @flow
    def main():
        slow, fast, medium = sleeper.submit(60), sleeper.submit(5), sleeper.submit(8)
        done, not_done = wait([slow, fast, medium], timeout=10)
        seen.update(done=done, not_done=not_done, at=now(), futures=(slow, fast, medium))

    main()
    slow, fast, medium = seen["futures"]
    assert seen["done"] == {fast, medium}
    assert seen["not_done"] == {slow}
    assert seen["at"] == 10


def test_module_wait_with_all_done_moves_the_waiter_to_the_last_end(h):
    @flow
    def main():
        futures = [sleeper.submit(s) for s in (5, 8, 2)]
        done, not_done = wait(futures, timeout=10)
        return len(done), len(not_done), now()

    assert main() == (3, 0, 8)


def test_future_list_result_timeout_is_virtual(h):
    seen = {}

    @flow
    def main():
        futures = sleeper.map([5, 60])
        assert isinstance(futures, WfFutureList)
        with pytest.raises(TimeoutError) as info:
            futures.result(timeout=30)
        seen["error"], seen["at"] = str(info.value), now()
        return futures.result(timeout=100), now()

    assert main() == ([5, 60], 60)
    assert "1 of 2 task runs did not finish within 30" in seen["error"]
    assert seen["at"] == 30


def test_as_completed_yields_in_virtual_order_and_holds_back_late_runs(h):
    seen = {}

    @flow
    def main():
        futures = [sleeper.submit(s) for s in (60, 5, 30, 20)]
        all_finished_in_real_time(futures)
        yielded = []
        with pytest.raises(TimeoutError) as info:
            for future in as_completed(futures, timeout=40):
                yielded.append((future.result(), now()))
        seen.update(yielded=yielded, error=str(info.value), at=now())

    main()
    assert seen["yielded"] == [(5, 5), (20, 20), (30, 30)]
    assert "1 of 4 task runs did not finish within 40" in seen["error"]
    assert seen["at"] == 40


def test_as_completed_without_timeout_yields_every_run_in_virtual_order(h):
    @flow
    def main():
        futures = sleeper.map([3, 1, 2])
        all_finished_in_real_time(futures)
        return [f.result() for f in as_completed(futures)], now()

    assert main() == ([1, 2, 3], 3)


def test_a_run_blocked_in_real_time_is_waited_for_at_most_timeout_real_seconds(h):
    # Virtual time cannot skip a real wait: the run is not done within the timeout.
    released = threading.Event()
    seen = {}

    @task
    def blocked():
        return released.wait(30)

    @flow
    def main():
        future = blocked.submit()
        with pytest.raises(TimeoutError):
            future.result(timeout=0.2)
        seen["done_at_timeout"] = future.done()
        seen["at"] = now()
        done, not_done = wait([future], timeout=0.1)
        seen["not_done"] = not_done == {future}
        released.set()
        return future.result()

    assert main() is True
    assert seen["not_done"]
    assert seen["done_at_timeout"] is False  # given up on before the event was set
    assert seen["at"] == 0.2


def test_a_task_waiting_with_a_timeout_inside_a_worker_uses_its_own_timeline(h):
    @task
    def patient():
        time.sleep(100)  # this task's own time: 100
        inner = sleeper.submit(30)  # submitted at 100, ends at 130
        with pytest.raises(TimeoutError):
            inner.result(timeout=10)
        at_timeout = now()
        return at_timeout, inner.result(timeout=50), now()

    @flow
    def main():
        return patient.submit().result()

    assert main() == (110, 30, 130)
