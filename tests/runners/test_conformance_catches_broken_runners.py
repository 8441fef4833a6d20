"""The conformance suite fails for broken runners (run with pytester, the way a runner's
author runs it), and each failure says what went wrong."""

from __future__ import annotations

import textwrap

import pytest

HEADER = """
import asyncio
import concurrent.futures
import queue
import threading

import pytest

from wfkit.testing.runner_conformance import RunnerConformance


def run(call):
    return asyncio.run(call.run_async()) if call.is_async else call.run()
"""

RUNS_NOTHING = '''
class RunsNothing:
    """Takes every call and never runs it."""

    def duplicate(self):
        return RunsNothing()

    def submit(self, call):
        return concurrent.futures.Future()

    def shutdown(self, wait=True):
        pass


class TestRunsNothing(RunnerConformance):
    deadlock_timeout = 2

    @pytest.fixture
    def runner(self):
        return RunsNothing()
'''

ONE_NAIVE_THREAD = '''
class OneNaiveThread:
    """One worker thread and a queue: a run that waits for a run it submitted waits for
    the only worker, which is busy waiting."""

    def __init__(self):
        self.queue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self.work, daemon=True)
        self.thread.start()

    def work(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            call, future = item
            future.set_result(run(call))

    def duplicate(self):
        return OneNaiveThread()

    def submit(self, call):
        future = concurrent.futures.Future()
        self.queue.put((call, future))
        return future

    def shutdown(self, wait=True):
        self.queue.put(None)
        if wait:
            self.thread.join()


class TestOneNaiveThread(RunnerConformance):
    deadlock_timeout = 3

    @pytest.fixture
    def runner(self):
        return OneNaiveThread()

    @pytest.fixture
    def single_worker_runner(self):
        return OneNaiveThread()
'''

FORGETS_ITS_WORK = '''
class ForgetsItsWork:
    """Runs each call in a daemon thread and does not wait for them when shut down."""

    def duplicate(self):
        return ForgetsItsWork()

    def submit(self, call):
        future = concurrent.futures.Future()
        threading.Thread(target=lambda: future.set_result(run(call)), daemon=True).start()
        return future

    def shutdown(self, wait=True):
        pass


class TestForgetsItsWork(RunnerConformance):
    @pytest.fixture
    def runner(self):
        return ForgetsItsWork()
'''


def run_suite(pytester: pytest.Pytester, source: str, select: str) -> pytest.RunResult:
    pytester.makepyfile(test_runner=textwrap.dedent(HEADER + source))
    return pytester.runpytest_subprocess("-k", select, "-p", "no:cacheprovider", timeout=120)


def test_a_runner_that_runs_nothing_fails_with_a_deadlock_message(pytester):
    result = run_suite(pytester, RUNS_NOTHING, "results_of_submit_and_map or many_runs")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*did not end within 2 s: the runner deadlocked, or never ran*"])


def test_a_naive_single_thread_runner_deadlocks_on_nested_waits(pytester):
    result = run_suite(
        pytester, ONE_NAIVE_THREAD, "nested_submission_on_one_worker or results_of_submit"
    )
    # Plain results pass; waiting inside a run for a run it submitted deadlocks.
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_nested_submission_on_one_worker_does_not_deadlock*",
            "*did not end within 3 s*",
        ]
    )


def test_a_runner_that_does_not_wait_at_shutdown_fails(pytester):
    # (A flow run itself now waits for every run it submitted, whatever its runner does;
    # the runner's own shutdown(wait=True) is what this runner gets wrong.)
    result = run_suite(pytester, FORGETS_ITS_WORK, "shutdown_waits or results_of_submit")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_shutdown_waits_then_submitting_is_a_clear_error*"])
