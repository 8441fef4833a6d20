"""Jobs: submitted work that a pool worker or a waiter runs, exactly once."""

from __future__ import annotations

import threading

import pytest

from wfkit._engine.jobs import Job


def _threads(target, count):
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def _join(threads):
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a thread is still waiting: a lost wake-up?"


def test_a_job_runs_once_however_many_threads_try():
    calls = []
    jobs = [Job(lambda i=i: calls.append(i) or i) for i in range(200)]
    start = threading.Barrier(8)

    def race():
        start.wait()
        for job in jobs:
            job.run_if_pending()

    _join(_threads(race, 8))
    assert sorted(calls) == list(range(200))
    assert [job.result for job in jobs] == list(range(200))


def test_waiting_on_a_job_nobody_started_runs_it_in_the_waiting_thread():
    job = Job(lambda: threading.current_thread().name)
    assert not job.started
    assert job.wait() is True
    assert job.done and job.result == threading.current_thread().name


def test_every_thread_waiting_on_a_running_job_wakes_with_its_outcome():
    entered, release = threading.Event(), threading.Event()

    def work():
        entered.set()
        release.wait(30)
        return "done"

    job = Job(work)
    runner = _threads(job.run_if_pending, 1)
    assert entered.wait(30)
    seen = []
    waiters = _threads(lambda: seen.append((job.wait(), job.result)), 5)
    assert job.wait(timeout=0.01) is False  # still running elsewhere
    release.set()
    _join(runner + waiters)
    assert seen == [(True, "done")] * 5
    assert job.wait(timeout=0) is True


def test_an_error_is_kept_for_the_waiters():
    job = Job(lambda: 1 / 0)
    assert job.wait() is True
    assert isinstance(job.error, ZeroDivisionError) and job.result is None


def test_done_callbacks_run_once_when_done_or_at_once_if_already_done():
    job = Job(lambda: 42)
    called = []
    job.add_done_callback(lambda j: called.append(("before", j.result)))
    job.run_if_pending()
    job.run_if_pending()
    job.add_done_callback(lambda j: called.append(("after", j.result)))
    assert called == [("before", 42), ("after", 42)]


def test_an_external_job_is_never_claimed_and_ends_when_completed():
    live = object()
    job = Job.external(live=live)
    assert job.started and job.live is live
    job.run_if_pending()  # nobody may run it here
    assert not job.done
    waiter = _threads(job.wait, 1)
    job.complete("result")
    _join(waiter)
    assert job.done and job.result == "result"
    assert job.live is None  # a finished job keeps only its outcome


@pytest.mark.parametrize("timeout", [0, 0.01])
def test_wait_with_a_timeout_does_not_run_a_pending_job_here(timeout):
    job = Job(lambda: "ran")
    assert job.wait(timeout=timeout) is False
    assert not job.started
