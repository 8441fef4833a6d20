"""The TaskRunner protocol seen from the outside: what ``@flow(task_runner=...)`` accepts,
what the engine does with a runner's futures, and a runner that refuses a run."""

from __future__ import annotations

import concurrent.futures
import pickle
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from wfkit import flow, get_run_logger, task
from wfkit.task_runners import TaskRunCall, TaskRunner, ThreadPoolTaskRunner
from wfkit.testing import Harness, harness


@pytest.fixture
def h() -> Iterator[Harness]:
    with harness(start="2026-01-01T00:00:00Z") as hh:
        yield hh


@task
def add(x, y=0):
    return x + y


class ExecutorRunner:
    """A third-party runner: a concurrent.futures executor; its futures know nothing of
    runs."""

    def __init__(self, max_workers: int = 4) -> None:
        self.max_workers = max_workers
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers)

    def duplicate(self) -> ExecutorRunner:
        return ExecutorRunner(self.max_workers)

    def submit(self, call: TaskRunCall) -> concurrent.futures.Future[Any]:
        return self.executor.submit(call.run)

    def shutdown(self, wait: bool = True) -> None:
        self.executor.shutdown(wait=wait)


# -- what @flow(task_runner=...) accepts --------------------------------------------------
class NoShutdown:
    def duplicate(self):
        return self

    def submit(self, call):
        return None


@pytest.mark.parametrize(
    "value, missing",
    [
        (object(), "duplicate(), submit(), shutdown()"),
        (NoShutdown(), "shutdown()"),
        (NoShutdown, "shutdown()"),
        (concurrent.futures.ThreadPoolExecutor, "duplicate()"),
        ("threads", "duplicate(), submit(), shutdown()"),
    ],
    ids=["object", "instance-missing-one", "class-missing-one", "an-executor", "a-string"],
)
def test_a_task_runner_missing_protocol_members_is_rejected_at_decoration(value, missing):
    with pytest.raises(TypeError) as info:

        @flow(task_runner=value)
        def main():
            pass

    message = str(info.value)
    assert f"task_runner={value!r}" in message
    assert f"it has no {missing}." in message
    assert "for @flow 'main'" in message
    assert "wfkit.task_runners.TaskRunner" in message


def test_a_class_missing_members_is_not_instantiated():
    made = []

    class Half:
        def __init__(self):
            made.append(self)

        def submit(self, call):
            return None

    with pytest.raises(TypeError, match="duplicate\\(\\), shutdown\\(\\)"):
        flow(task_runner=Half)(lambda: None)
    assert made == []


def test_a_third_party_runner_instance_or_class_is_accepted(h):
    @flow(task_runner=ExecutorRunner(max_workers=2))
    def with_instance():
        return add.map([1, 2, 3], 1).result()

    @flow(task_runner=ExecutorRunner)
    def with_class():
        return add.submit(2, 2).result()

    assert isinstance(ExecutorRunner(), TaskRunner)
    assert with_instance() == [2, 3, 4]
    assert with_class() == 4
    assert all(r.state_names == ["Pending", "Running", "Completed"] for r in h.task_runs())


# -- the engine's side ----------------------------------------------------------------------
def test_cancelling_a_future_of_a_runner_that_knows_nothing_of_runs_records_it(h):
    # A concurrent.futures future is cancelled without the call knowing: the engine
    # records the run Cancelled all the same (a run always reaches a final state).
    released = threading.Event()
    seen = {}

    @task
    def blocked():
        return released.wait(30)

    @flow(task_runner=ExecutorRunner(max_workers=1))
    def main():
        first = blocked.submit()
        queued = add.submit(1, 2)
        seen["cancel"] = queued.cancel()
        seen["cancelled"] = queued.cancelled()
        seen["state"] = queued.state.name
        released.set()
        return first.result()

    assert main() is True
    assert seen == {"cancel": True, "cancelled": True, "state": "Cancelled"}
    assert h.task_run(add).state_names == ["Pending", "Cancelled"]


class Refuses:
    """A runner whose submit raises."""

    def duplicate(self):
        return self

    def submit(self, call):
        raise RuntimeError("no capacity left")

    def shutdown(self, wait=True):
        pass


def test_a_run_the_runner_refuses_is_recorded_failed_and_the_error_raised(h):
    @flow(task_runner=Refuses())
    def main():
        add.map([1, 2, 3])

    with pytest.raises(RuntimeError, match="no capacity left"):
        main()
    (run,) = h.task_runs(add)  # the map stopped at its first run
    assert run.state_names == ["Pending", "Failed"]
    assert run.state.message == ("The task runner did not take it: RuntimeError: no capacity left")


class Interrupted(Refuses):
    """A runner whose submit is interrupted by Ctrl-C (as a real one may be, mid-handover)."""

    def submit(self, call):
        raise KeyboardInterrupt


def test_a_run_whose_handover_is_interrupted_is_cancelled_and_the_interrupt_raised(h):
    @flow(task_runner=Interrupted())
    def main():
        add.map([1, 2, 3])

    with pytest.raises(KeyboardInterrupt):
        main()
    (run,) = h.task_runs(add)
    assert run.state_names == ["Pending", "Cancelled"]  # it never started: not Failed
    assert run.state.message == "Cancelled before it started: KeyboardInterrupt."
    assert h.flow_run(main).state.name == "Crashed"


def test_a_pool_runner_shut_down_takes_no_more_runs_even_unstarted():
    runner = ThreadPoolTaskRunner()
    runner.shutdown()
    runner.shutdown()  # again: nothing to do
    with pytest.raises(RuntimeError, match="is shut down"):
        runner._pool()


def test_runs_submitted_while_the_flow_run_shuts_its_runner_down_still_run(h):
    # The flow's body has ended; a run still going submits another: the runner takes it
    # (shutdown waits for what the runs it waits for submit), then shuts down.
    body_done = threading.Event()

    @task
    def late_submitter():
        body_done.wait(30)
        threading.Event().wait(0.2)  # the flow run is shutting its runner down by now
        return add.submit(1, 1).result()

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def main():
        late_submitter.submit()
        body_done.set()

    main()
    assert h.task_run(late_submitter).state_names == ["Pending", "Running", "Completed"]
    assert h.task_run(add).state_names == ["Pending", "Running", "Completed"]


# -- the remote path, without processes -------------------------------------------------------
@task
def slow_square(x):
    time.sleep(30)  # virtual under the harness
    get_run_logger().info("squaring %s", x)
    return x * x


class SendsToItself:
    """A remote runner whose "worker" is the submitting thread: run_remote's public path,
    as a cluster runner would use it, without a cluster."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def duplicate(self) -> SendsToItself:
        return self

    def submit(self, call: TaskRunCall) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_result(call.run_remote(self.send))
        return future

    def send(self, remote: Any) -> Any:
        self.sent.append(remote)
        return pickle.loads(pickle.dumps(remote)).execute()  # as if shipped elsewhere

    def shutdown(self, wait: bool = True) -> None:
        pass


def test_run_remote_replays_what_the_remote_run_recorded(h):
    runner = SendsToItself()

    @flow(task_runner=runner)
    def main():
        first = slow_square.submit(3)
        return slow_square.submit(first).result()

    assert main() == 81
    first, second = h.task_runs(slow_square)
    assert [r.state_names for r in (first, second)] == [["Pending", "Running", "Completed"]] * 2
    assert second.upstream_ids == (first.id,)
    assert [r.task_run_id for r in runner.sent] == [first.id, second.id]
    assert [log.message for log in h.logs(second)] == [
        "squaring 9",
        "Finished in state Completed()",
    ]
    assert h.clock.elapsed == 60  # the second started when the first ended (virtual time)


def test_run_remote_of_a_task_a_worker_cannot_import_ends_failed(h):
    @task
    def local():
        return 1

    @flow(task_runner=SendsToItself())
    def main():
        future = local.submit()
        future.wait()
        return future.state.name

    assert main() == "Failed"
    run = h.task_run(local)
    assert run.state_names == ["Pending", "Failed"]
    assert run.state.message.startswith("It cannot run in another process: TypeError")
    assert "module level" in run.state.message
