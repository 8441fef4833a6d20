"""Jobs, the pool runners' futures: a worker or a waiter runs each exactly once."""

from __future__ import annotations

import contextvars
import functools
import threading

import pytest

from wfkit import task
from wfkit._engine.calls import prepare_task_run
from wfkit._engine.submit import SubmittedRun
from wfkit.task_runners._jobs import Job


@task
def echo(value):
    return value


@task
def where():
    return threading.current_thread().name


@pytest.fixture
def make_job(runtime):
    """``make_job(task, **arguments)``: a Job for a real prepared run of ``task``."""
    context = contextvars.copy_context()

    def make(target=echo, work=lambda call: call.run(), **arguments):
        prepared = prepare_task_run(target, (), {}, arguments=arguments)
        call = SubmittedRun(prepared, context)
        return Job(call, functools.partial(work, call))

    return make


def _threads(target, count):
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def _join(threads):
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a thread is still waiting: a lost wake-up?"


def test_a_job_runs_once_however_many_threads_try(make_job, runtime):
    jobs = [make_job(value=i) for i in range(200)]
    start = threading.Barrier(8)

    def race():
        start.wait()
        for job in jobs:
            job.run_if_queued()

    _join(_threads(race, 8))
    assert [job.result().result() for job in jobs] == list(range(200))
    runs = runtime.store.task_runs(task_name="echo")
    assert len(runs) == 200
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in runs)


def test_waiting_on_a_job_nobody_started_runs_it_in_the_waiting_thread(make_job):
    job = make_job(where)
    assert not job.running() and not job.done()
    assert job.result().result() == threading.current_thread().name
    assert job.done()


def test_every_thread_waiting_on_a_running_job_wakes_with_its_outcome(make_job):
    entered, release = threading.Event(), threading.Event()

    def work(call):
        entered.set()
        release.wait(30)
        return call.run()

    job = make_job(work=work, value="done")
    runner = _threads(job.run_if_queued, 1)
    assert entered.wait(30)
    assert job.running()
    seen = []
    waiters = _threads(lambda: seen.append(job.result().result()), 5)
    with pytest.raises(TimeoutError):
        job.result(timeout=0.01)  # still running elsewhere
    release.set()
    _join(runner + waiters)
    assert seen == ["done"] * 5
    assert job.result(timeout=0).result() == "done"


def test_an_error_of_the_work_is_raised_to_every_waiter(make_job):
    def broken(call):
        raise ZeroDivisionError("the runner broke")

    job = make_job(work=broken)
    job.run_if_queued()
    assert job.done()
    for _ in range(2):
        with pytest.raises(ZeroDivisionError, match="the runner broke"):
            job.result()


def test_done_callbacks_run_once_when_done_or_at_once_if_already_done(make_job):
    job = make_job(value=42)
    called = []
    job.add_done_callback(lambda j: called.append(("before", j.result().result())))
    job.run_if_queued()
    job.run_if_queued()
    job.add_done_callback(lambda j: called.append(("after", j.result().result())))
    assert called == [("before", 42), ("after", 42)]


def test_a_cancelled_job_never_runs_and_its_run_ends_cancelled(make_job, runtime):
    job = make_job(value=1)
    assert job.cancel() is True
    assert job.cancel() is True  # still cancelled
    assert job.cancelled() and job.done()
    job.run_if_queued()  # nothing to run
    assert job.result().name == "Cancelled"
    (run,) = runtime.store.task_runs(task_name="echo")
    assert run.state_names == ["Pending", "Cancelled"]


def test_a_started_job_cannot_be_cancelled(make_job):
    job = make_job(value=1)
    job.run_if_queued()
    assert job.cancel() is False
    assert not job.cancelled()
    assert job.result().result() == 1


@pytest.mark.parametrize("timeout", [0, 0.01])
def test_waiting_with_a_timeout_does_not_run_a_queued_job_here(make_job, timeout):
    job = make_job(value="ran")
    with pytest.raises(TimeoutError):
        job.result(timeout=timeout)
    assert not job.running() and not job.done()


def test_a_finished_job_keeps_only_its_outcome(make_job):
    job = make_job(value="kept")
    job.run_if_queued()
    assert job._call is None and job._work is None
    assert job.result().result() == "kept"


def test_a_raising_done_callback_is_logged_and_the_others_still_run(make_job, caplog):
    job = make_job(value=7)
    called = []

    def broken(j):
        raise RuntimeError("callback bug")

    job.add_done_callback(broken)
    job.add_done_callback(lambda j: called.append(j.result().result()))
    job.run_if_queued()  # the worker is not stopped by the callback
    job.add_done_callback(broken)  # at once: logged too
    assert called == [7]
    errors = [r for r in caplog.records if r.name == "wfkit.task_runners"]
    assert len(errors) == 2
    assert "a done callback of" in errors[0].getMessage()
    assert errors[0].exc_info[1].args == ("callback bug",)
