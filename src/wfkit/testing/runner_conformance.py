"""The task runner conformance suite: what every :class:`~wfkit.task_runners.TaskRunner`
must do, as a test class to subclass.

::

    import pytest
    from wfkit.testing.runner_conformance import RunnerConformance

    class TestMyRunner(RunnerConformance):
        @pytest.fixture
        def runner(self):
            return MyRunner()

        @pytest.fixture  # optional: enables the nested-submission and cancellation tests
        def single_worker_runner(self):
            return MyRunner(max_workers=1)

It covers results, exceptions, dependencies between futures, nested submission, timeouts,
context propagation, shutdown and cancellation, each through real flows run under
:func:`wfkit.testing.harness` (a memory store; some tests on SQLite too). Every flow runs in
a helper thread bounded by :attr:`RunnerConformance.deadlock_timeout`, so a runner that
deadlocks or never runs its work fails instead of hanging the session.

The tasks are defined at module level here, so runners that execute them in other
processes can import them by name. This module imports pytest; ``wfkit.testing`` does not
import it.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import wfkit.runtime
from wfkit import allow_failure, flow, get_run_logger, tags, task, unmapped
from wfkit.exceptions import FailedRun, TaskRunTimeoutError, UpstreamTaskError
from wfkit.futures import as_completed, wait
from wfkit.task_runners import TaskRunCall, TaskRunner, resolve_task_runner
from wfkit.testing.harness import Harness, harness

__all__ = ["RunnerConformance"]

START = "2026-01-01T00:00:00Z"
GATE_SECONDS = 30  # how long a gated task waits for its gate before it gives up


# -- tasks (module level: worker processes import them by name) -----------------------------
@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def square(x: int) -> int:
    return x * x


@task
async def async_square(x: int) -> int:
    return x * x


@task
def fails(message: str = "conformance failure") -> None:
    raise ValueError(message)


@task
def describe(value: Any) -> str:
    return f"{type(value).__name__}: {value}"


@task
def sleeper(seconds: float) -> float:
    time.sleep(seconds)  # virtual under the harness
    return seconds


@task(retries=2, retry_delay_seconds=10)
def fails_twice() -> int:
    if wfkit.runtime.task_run.run_count < 3:
        raise ValueError(f"attempt {wfkit.runtime.task_run.run_count}")
    return int(wfkit.runtime.task_run.run_count)


@task(timeout_seconds=1)
def too_slow() -> str:
    time.sleep(5)
    return "too late"


@task(tags=["own"])
def identity() -> dict[str, Any]:
    return {
        "flow_run_id": wfkit.runtime.flow_run.id,
        "task_run_id": wfkit.runtime.task_run.id,
        "task_run_name": wfkit.runtime.task_run.name,
        "tags": sorted(wfkit.runtime.task_run.tags),
    }


@task
def logs(word: str) -> str:
    get_run_logger().info("conformance says %s", word)
    return word


@task
def chain(depth: int) -> int:
    """Submits itself ``depth`` times, each waiting for the next."""
    if depth == 0:
        return 0
    return chain.submit(depth - 1).result() + 1


@task
def fan(x: int) -> int:
    """Maps three runs and waits for them (``as_completed``: no ``result()`` call)."""
    return sum(f.result() for f in as_completed(square.map([x, x, x])))


def _wait_until_exists(path: Path) -> bool:
    """Wait in real time (whatever the clock, in any process) until ``path`` exists."""
    for _ in range(GATE_SECONDS * 100):
        if path.exists():
            return True
        threading.Event().wait(0.01)
    return False


@task
def wait_for_gate(path: str) -> str:
    """Creates ``path + ".started"``, then blocks until the file ``path`` exists."""
    Path(path + ".started").touch()
    if not _wait_until_exists(Path(path)):
        raise TimeoutError(f"the gate {path} was never opened")
    return "opened"


@task
def takes_real_time(seconds: float) -> str:
    threading.Event().wait(seconds)  # real: not a sleep the harness makes virtual
    return "finished"


# -- helpers ----------------------------------------------------------------------------------
class _HoldingRunner:
    """A runner that keeps the calls it is given and runs none (it cancels them when shut
    down): the calls are then handed to the runner under test by hand."""

    def __init__(self) -> None:
        self.calls: list[TaskRunCall] = []

    def duplicate(self) -> _HoldingRunner:
        return self

    def submit(self, call: TaskRunCall) -> concurrent.futures.Future[Any]:
        self.calls.append(call)
        return concurrent.futures.Future()

    def shutdown(self, wait: bool = True) -> None:
        for call in self.calls:
            call.cancel()  # (no-op for the calls that ran)


def _seconds_since_start(h: Harness, moment: Any) -> float:
    return float((moment - h.clock.start).total_seconds())


class RunnerConformance:
    """Subclass this in a test module and provide the :meth:`runner` fixture.

    Fixtures a subclass gives:
        runner: a fresh runner instance.
        single_worker_runner: a runner with one worker (runs queue behind each other);
            the default skips the tests that need one.

    Attributes:
        deadlock_timeout: real seconds a test's flow may take before the test fails as a
            deadlock.
    """

    deadlock_timeout: float = 60.0

    @pytest.fixture
    def runner(self) -> TaskRunner:
        """The runner under test (a fresh instance per test). Override this fixture."""
        raise NotImplementedError("subclasses of RunnerConformance define a runner fixture")

    @pytest.fixture
    def single_worker_runner(self) -> TaskRunner:
        """A runner whose runs execute one at a time, in submission order. Override this
        fixture to run the nested-submission and cancellation tests."""
        pytest.skip("no single_worker_runner fixture: this runner cannot be limited to one")

    @pytest.fixture
    def h(self) -> Iterator[Harness]:
        """A harness with a memory store."""
        with harness(start=START) as hh:
            yield hh

    @pytest.fixture(params=["memory", "sqlite"])
    def h_each_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
        """A harness with a memory store, then with a SQLite store."""
        with harness(start=START, store=request.param, directory=tmp_path) as hh:
            yield hh

    def run_flow(self, runner: Any, body: Callable[..., Any], *args: Any) -> Any:
        """Run ``body`` as a flow on ``runner`` in a helper thread (with this context);
        fail the test if it does not end within :attr:`deadlock_timeout` seconds."""
        target = flow(name=body.__name__.replace("_", "-"), task_runner=runner)(body)
        context = contextvars.copy_context()
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["value"] = context.run(target, *args)
            except BaseException as exc:  # handed to the test
                box["error"] = exc

        thread = threading.Thread(target=call, name="conformance-flow", daemon=True)
        thread.start()
        thread.join(self.deadlock_timeout)
        if thread.is_alive():
            pytest.fail(
                f"the flow {body.__name__!r} on {runner!r} did not end within "
                f"{self.deadlock_timeout:g} s: the runner deadlocked, or never ran a run."
            )
        if "error" in box:
            raise box["error"]
        return box.get("value")

    # -- the protocol ---------------------------------------------------------------------
    def test_is_a_task_runner(self, runner: Any) -> None:
        assert isinstance(runner, TaskRunner)
        assert resolve_task_runner(runner, "a conformance flow") is runner

    def test_duplicate_is_a_fresh_runner_and_each_flow_run_uses_one(
        self, runner: Any, h: Harness
    ) -> None:
        copy = runner.duplicate()
        assert copy is not runner and isinstance(copy, TaskRunner)
        copy.shutdown()

        def twice(n: int) -> list[int]:
            return add.map(range(n)).result()

        assert self.run_flow(runner, twice, 3) == [0, 1, 2]
        assert self.run_flow(runner, twice, 2) == [0, 1]  # the first one's copy is shut down

    # -- results --------------------------------------------------------------------------
    def test_results_of_submit_and_map(self, runner: Any, h_each_store: Harness) -> None:
        h = h_each_store
        seen: dict[str, Any] = {}

        def results() -> tuple[int, list[int]]:
            one = add.submit(1, 2)
            many = add.map([1, 2, 3], unmapped(10))
            seen["ids"] = {one.task_run_id, *(f.task_run_id for f in many)}
            return one.result(), many.result()

        assert self.run_flow(runner, results) == (3, [11, 12, 13])
        runs = h.task_runs(add)
        assert {r.id for r in runs} == seen["ids"]
        assert all(r.state_names == ["Pending", "Running", "Completed"] for r in runs)
        assert {r.flow_run_id for r in runs} == {h.flow_run().id}
        assert sorted((r.parameters["x"], r.parameters["y"]) for r in runs) == [
            (1, 2), (1, 10), (2, 10), (3, 10)
        ]  # fmt: skip

    def test_async_tasks(self, runner: Any, h: Harness) -> None:
        def results() -> tuple[int, list[int]]:
            return async_square.submit(3).result(), async_square.map([1, 2]).result()

        assert self.run_flow(runner, results) == (9, [1, 4])
        runs = h.task_runs(async_square)
        assert [r.state_names for r in runs] == [["Pending", "Running", "Completed"]] * 3

    def test_many_runs_keep_their_order(self, runner: Any, h: Harness) -> None:
        def many() -> list[int]:
            return square.map(range(200)).result()

        assert self.run_flow(runner, many) == [i * i for i in range(200)]

    # -- exceptions -----------------------------------------------------------------------
    def test_a_failed_run(self, runner: Any, h_each_store: Harness) -> None:
        seen: dict[str, Any] = {}

        def failing() -> str:
            future = fails.submit("broken in the runner")
            with pytest.raises(ValueError, match="broken in the runner"):
                future.result()
            seen["returned"] = future.result(raise_on_failure=False)
            seen["failed"] = future.state.is_failed()
            return "handled"

        assert self.run_flow(runner, failing) == "handled"
        assert isinstance(seen["returned"], ValueError) and seen["failed"]
        run = h_each_store.task_run(fails)
        assert run.state_names == ["Pending", "Running", "Failed"]
        assert "broken in the runner" in (run.state.message or "")

    def test_retries(self, runner: Any, h: Harness) -> None:
        def retried() -> int:
            return fails_twice.submit().result()

        assert self.run_flow(runner, retried) == 3
        run = h.task_run(fails_twice)
        assert run.state_names == ["Pending", "Running"] + ["AwaitingRetry", "Retrying"] * 2 + [
            "Completed"
        ]
        assert run.run_count == 3
        assert h.clock.elapsed == 20  # two virtual retry delays of 10 s

    # -- dependencies ---------------------------------------------------------------------
    def test_a_future_as_an_argument(self, runner: Any, h_each_store: Harness) -> None:
        seen: dict[str, Any] = {}

        def dependent() -> int:
            first = square.submit(2)
            second = square.submit(first)  # type: ignore[call-overload]  # (a future for x)
            seen.update(first=first.task_run_id, second=second.task_run_id)
            return second.result()

        assert self.run_flow(runner, dependent) == 16
        (second,) = [r for r in h_each_store.task_runs(square) if r.id == seen["second"]]
        assert second.upstream_ids == (seen["first"],)

    def test_wait_for_starts_a_run_after_its_upstream_in_virtual_time(
        self, runner: Any, h: Harness
    ) -> None:
        def ordered() -> float:
            first = sleeper.submit(60)
            return sleeper.submit(10, wait_for=[first]).result()

        assert self.run_flow(runner, ordered) == 10
        assert h.clock.elapsed == 70
        later = [r for r in h.task_runs(sleeper) if r.parameters["seconds"] == 10]
        assert _seconds_since_start(h, later[0].start_time) == 60

    def test_allow_failure_hands_the_error_on(self, runner: Any, h: Harness) -> None:
        def lenient() -> str:
            return describe.submit(allow_failure(fails.submit("tolerated"))).result()

        assert self.run_flow(runner, lenient) == "ValueError: tolerated"

    def test_an_upstream_failure_leaves_the_run_not_ready(self, runner: Any, h: Harness) -> None:
        seen: dict[str, Any] = {}

        def strict() -> None:
            future = square.submit(fails.submit())  # type: ignore[call-overload]  # (a future for x)
            future.wait()
            seen["state"] = future.state.name
            with pytest.raises(UpstreamTaskError):
                future.result()

        self.run_flow(runner, strict)
        assert seen["state"] == "NotReady"
        assert h.task_run(square).state_names == ["Pending", "NotReady"]

    # -- nested submission ----------------------------------------------------------------
    def test_nested_submission(self, runner: Any, h: Harness) -> None:
        def nested() -> tuple[int, list[int]]:
            return chain.submit(3).result(), fan.map([1, 2]).result()

        assert self.run_flow(runner, nested) == (3, [3, 12])

    def test_nested_submission_on_one_worker_does_not_deadlock(
        self, single_worker_runner: Any, h: Harness
    ) -> None:
        def nested() -> tuple[list[int], list[int]]:
            return chain.map([2, 3]).result(), fan.map([1, 2]).result()

        assert self.run_flow(single_worker_runner, nested) == ([2, 3], [3, 12])
        assert len(h.task_runs(chain)) == 3 + 4

    # -- timeouts -------------------------------------------------------------------------
    def test_result_timeout(self, runner: Any, h: Harness) -> None:
        seen: dict[str, Any] = {}

        # (Virtual seconds; a run is also waited for at most that long in real time.)
        def patient() -> float:
            future = sleeper.submit(600)
            with pytest.raises(TimeoutError):
                future.result(timeout=100)
            done, not_done = wait([future, sleeper.submit(5)], timeout=100)
            seen["not_done"] = not_done == {future} and len(done) == 1
            return future.result()

        assert self.run_flow(runner, patient) == 600
        assert seen["not_done"]

    def test_task_timeout(self, runner: Any, h: Harness) -> None:
        def timed_out() -> None:
            with pytest.raises(TaskRunTimeoutError):
                too_slow.submit().result()

        self.run_flow(runner, timed_out)
        assert h.task_run(too_slow).state_names == ["Pending", "Running", "TimedOut"]
        assert h.clock.elapsed == 1

    # -- context --------------------------------------------------------------------------
    def test_context_reaches_the_run(self, runner: Any, h_each_store: Harness) -> None:
        seen: dict[str, Any] = {}

        def tagged() -> dict[str, Any]:
            with tags("inner"):
                future = identity.submit()
            seen["id"] = future.task_run_id
            return future.result()

        with tags("outer"):
            info = self.run_flow(runner, tagged)
        run = h_each_store.task_run(identity)
        assert info["task_run_id"] == run.id == seen["id"]
        assert info["task_run_name"] == run.name
        assert info["flow_run_id"] == run.flow_run_id == h_each_store.flow_run().id
        assert info["tags"] == sorted(run.tags) == ["inner", "outer", "own"]

    def test_logs_reach_the_store(self, runner: Any, h_each_store: Harness) -> None:
        def logging_flow() -> str:
            return logs.submit("hello").result()

        self.run_flow(runner, logging_flow)
        run = h_each_store.task_run(logs)
        lines = [r for r in h_each_store.logs(run) if r.message == "conformance says hello"]
        assert len(lines) == 1 and lines[0].flow_run_id == run.flow_run_id

    # -- shutdown -------------------------------------------------------------------------
    def test_a_flow_run_waits_for_the_runs_it_did_not_wait_for(
        self, runner: Any, h: Harness
    ) -> None:
        def forgetful() -> None:
            takes_real_time.submit(1.0)  # (long enough that a runner which does not wait
            # cannot have finished it by the time the flow run ends)

        self.run_flow(runner, forgetful)
        assert h.task_run(takes_real_time).state_names == ["Pending", "Running", "Completed"]

    def test_shutdown_waits_then_submitting_is_a_clear_error(self, runner: Any, h: Harness) -> None:
        holder = _HoldingRunner()
        seen: dict[str, Any] = {}

        def by_hand() -> None:
            takes_real_time.submit(0.5)
            add.submit(1, 2)
            first, second = holder.calls
            copy = runner.duplicate()
            future = copy.submit(first)
            copy.shutdown(wait=True)
            seen["done"], seen["state"] = future.done(), first.state.name
            with pytest.raises(RuntimeError) as info:
                copy.submit(second)
            seen["error"], seen["second"] = str(info.value), second.state.name

        self.run_flow(holder, by_hand)
        assert seen["done"] and seen["state"] == "Completed"
        assert "shut" in seen["error"].lower()  # "shut down", "after shutdown"...
        assert seen["second"] == "Pending"  # the refused call did not run (then was cancelled)

    def test_shutdown_without_waiting_cancels_queued_runs(
        self, single_worker_runner: Any, h: Harness, tmp_path: Path
    ) -> None:
        holder = _HoldingRunner()
        gate = tmp_path / "gate"
        seen: dict[str, Any] = {}

        def by_hand() -> None:
            wait_for_gate.submit(str(gate))
            add.submit(1, 2)
            blocking, queued = holder.calls
            copy = single_worker_runner.duplicate()
            futures = [copy.submit(blocking), copy.submit(queued)]
            assert _wait_until_exists(tmp_path / "gate.started"), "the first run never started"
            copy.shutdown(wait=False)
            seen["queued"] = queued.state.name
            gate.touch()
            seen["blocking"] = futures[0].result(timeout=self.deadlock_timeout).name

        self.run_flow(holder, by_hand)
        assert seen == {"queued": "Cancelled", "blocking": "Completed"}
        assert h.task_run(add).state_names == ["Pending", "Cancelled"]

    # -- cancellation ---------------------------------------------------------------------
    def test_cancelling_a_run_that_has_not_started(
        self, single_worker_runner: Any, h: Harness, tmp_path: Path
    ) -> None:
        gate = tmp_path / "gate"
        seen: dict[str, Any] = {}

        def cancelling() -> None:
            blocking = wait_for_gate.submit(str(gate))
            queued = add.submit(1, 2)
            downstream = square.submit(queued)  # type: ignore[call-overload]  # (a future for x)
            seen["cancelled"] = queued.cancel(), queued.cancelled(), queued.state.name
            gate.touch()
            seen["blocking"] = blocking.result()
            seen["downstream"] = downstream.state.name
            seen["too_late"] = blocking.cancel()
            with pytest.raises(FailedRun):
                queued.result()

        self.run_flow(single_worker_runner, cancelling)
        assert seen == {
            "cancelled": (True, True, "Cancelled"),
            "blocking": "opened",
            "downstream": "NotReady",
            "too_late": False,
        }
        assert h.task_run(add).state_names == ["Pending", "Cancelled"]
        assert h.task_run(square).state_names == ["Pending", "NotReady"]
