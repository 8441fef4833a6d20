"""What a task runner is: three small protocols, and the check ``@flow(task_runner=...)`` runs.

The engine hands a runner one :class:`TaskRunCall` per submitted task run; the runner
returns a :class:`TaskRunFuture` for it and the engine wraps that in the user's
:class:`~wfkit.futures.WfFuture`. A runner never sees the engine's own types, and the engine
never looks inside a runner: these protocols are the whole contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from wfkit.states import State

__all__ = [
    "RemoteTaskRun",
    "TaskRunCall",
    "TaskRunFuture",
    "TaskRunner",
    "resolve_task_runner",
]


class TaskRunFuture(Protocol):
    """What :meth:`TaskRunner.submit` returns: a :class:`concurrent.futures.Future` fits.

    Its result is the run's final :class:`~wfkit.states.State` (a failed run is a result,
    not an exception); ``result`` raises only when the runner itself failed. A future may
    also have ``run_if_queued()``, which runs the work in the calling thread unless a worker
    has started it: waiters (``as_completed``) call it so that a bounded pool whose workers
    all wait cannot deadlock.
    """

    def done(self) -> bool:
        """Whether the run is over (finished or cancelled)."""
        ...

    def result(self, timeout: float | None = None) -> Any:
        """The final State, waiting up to ``timeout`` seconds (``TimeoutError`` after)."""
        ...

    def add_done_callback(self, fn: Callable[[Any], object]) -> None:
        """Call ``fn(future)`` once it is done (at once if it is)."""
        ...

    def cancel(self) -> bool:
        """Keep the run from starting; False when it has started already."""
        ...

    def cancelled(self) -> bool:
        """Whether :meth:`cancel` succeeded."""
        ...


class RemoteTaskRun(Protocol):
    """The picklable form of a task run, for runners that execute it in another process
    (see :meth:`TaskRunCall.run_remote`).

    Attributes:
        task_run_id: the run's id.
        arguments: the task's arguments by name, upstream results filled in (what a
            runner's serializer must carry; name the one it cannot).
    """

    task_run_id: str
    arguments: dict[str, Any]

    def execute(
        self,
        task_runner: TaskRunner | None = None,
        publish: Callable[[Any], object] | None = None,
        *,
        picklable: bool = True,
    ) -> Any:
        """Run the task here (in the worker) under the run's identity; returns a picklable
        outcome (states, log lines, cache writes) to hand back to ``run_remote``. (A
        caller that pickles the outcome itself may pass ``picklable=False``, which skips
        the check that its final state pickles, and call the outcome's
        ``made_picklable()`` when pickling it fails.)
        ``task_runner`` runs what the task itself submits. ``publish``, for runners with a
        channel back to the flow's process, is called here with a picklable event as the
        run starts (its ``Running`` state); hand that event to
        :meth:`TaskRunCall.record_live` there, and live progress reaches the store before
        the outcome. If ``publish`` raises, the event comes with the outcome instead."""
        ...

    def resolve_upstream(self, states: dict[str, State]) -> None:
        """For a run sent with references to its upstream runs (see
        :meth:`TaskRunCall.run_remote`'s ``native``): put their final states (by run id)
        in, in the worker, before :meth:`execute`."""
        ...


class TaskRunCall(Protocol):
    """One submitted task run, prepared by the engine: recorded Pending, its id known.

    A runner calls exactly one of :meth:`run`, :meth:`run_async`, :meth:`run_remote` (each
    runs it once and returns its final state), or :meth:`cancel`. A run submitted later
    may depend on this one: ``upstream`` lists the futures this one waits for.

    Attributes:
        task_run_id: the run's id.
        task_run_name: the run's name.
        task: the :class:`~wfkit.Task`.
        flow_run_id: the flow run it belongs to.
        is_async: whether the task is ``async def`` (then :meth:`run_async` runs it).
    """

    task_run_id: str
    task_run_name: str
    task: Any
    flow_run_id: str | None
    is_async: bool

    @property
    def upstream(self) -> tuple[Any, ...]:
        """The :class:`~wfkit.futures.WfFuture` objects it depends on (data and
        ``wait_for``); empty once it has run."""
        ...

    @property
    def state(self) -> State:
        """The run's current state (its final state once it has run or been cancelled)."""
        ...

    def run(self) -> State:
        """Run it here and now, in the calling thread: wait for the upstream runs, then run
        the task in a copy of the submitter's context; returns the final state."""
        ...

    async def run_async(self) -> State:
        """:meth:`run` on the running event loop (for async tasks)."""
        ...

    def run_remote(
        self,
        send: Callable[[RemoteTaskRun], Any],
        native: Callable[[tuple[str, ...]], Callable[[RemoteTaskRun], Any] | None] | None = None,
    ) -> State:
        """Run it in another process: wait for the upstream runs here, call ``send`` with
        the :class:`RemoteTaskRun` (``send`` executes it in a worker and returns what its
        ``execute()`` returned), and record what came back as if it had run here. If
        ``send`` raises, the run ends Crashed, or Failed if it raises
        :class:`~wfkit.exceptions.SerializationError` (an argument or result that cannot
        be serialized: say which, and by what). Returns the final state.

        ``native``, for runners that can hand a cluster the native futures of runs they
        sent: called with the upstream run ids (of a run without a cache policy or tag
        limits), it returns a send to use instead, without waiting for the upstream here
        (the :class:`RemoteTaskRun` then needs :meth:`RemoteTaskRun.resolve_upstream` in
        the worker), or None to wait as usual. If that send raises and an upstream run did
        not complete, the run ends NotReady."""
        ...

    def record_live(self, event: Any) -> None:
        """Record now an event that :meth:`RemoteTaskRun.execute` published in the worker
        (from any thread). An event that arrives after the outcome was recorded is
        ignored."""
        ...

    def check_remote(self) -> None:
        """Raise ``TypeError`` now if the task cannot run in another process (a worker
        imports it by name: it must be defined at module level)."""
        ...

    def cancel(self) -> bool:
        """Keep it from starting: the run is recorded Cancelled. False if it has started."""
        ...


@runtime_checkable
class TaskRunner(Protocol):
    """Where submitted task runs execute.

    A flow's ``task_runner`` is a template: each flow run calls :meth:`duplicate` and uses
    the copy, submitting its task runs and shutting it down (waiting) when the run ends.
    Implementations: :class:`~wfkit.task_runners.ThreadPoolTaskRunner`,
    :class:`~wfkit.task_runners.ProcessPoolTaskRunner`. Check your own with
    :class:`wfkit.testing.runner_conformance.RunnerConformance`.
    """

    def duplicate(self) -> TaskRunner:
        """A fresh, unstarted runner with the same settings."""
        ...

    def submit(self, call: TaskRunCall) -> TaskRunFuture:
        """Start (or queue) ``call``; return its future at once.

        Raises:
            RuntimeError: the runner is shut down.
        """
        ...

    def shutdown(self, wait: bool = True) -> None:
        """Take no more work. With ``wait``, return once every submitted run is over;
        without, return at once and cancel the runs that have not started."""
        ...


_MEMBERS = ("duplicate", "submit", "shutdown")


def resolve_task_runner(value: Any, owner: str) -> TaskRunner:
    """Check a flow's ``task_runner`` option: a runner, or a runner class (instantiated
    with no arguments).

    Raises:
        TypeError: ``value`` lacks a member of the :class:`TaskRunner` protocol.
    """
    missing = [name for name in _MEMBERS if not callable(getattr(value, name, None))]
    if missing:
        raise TypeError(
            f"task_runner={value!r} is not a task runner for {owner}: it has no "
            f"{', '.join(f'{name}()' for name in missing)}. A task runner has duplicate(), "
            "submit(call) and shutdown(wait=True) (see wfkit.task_runners.TaskRunner); pass "
            "one, or its class, e.g. ThreadPoolTaskRunner(max_workers=4)."
        )
    return value() if isinstance(value, type) else value  # type: ignore[no-any-return]
