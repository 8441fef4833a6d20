"""Submitting task runs to a flow run's task runner: ``task.submit`` and ``task.map``.

Each run is prepared (bound, created, recorded Pending) in the caller's thread, so its id is
known at once, and handed to the runner as a :class:`SubmittedRun` (the engine's
:class:`~wfkit.task_runners.TaskRunCall`). Whichever way the runner starts it, it runs with
a copy of the caller's context (flow run, tags, clock, store, harness) and, under a fake
clock, on a timeline of its own that starts when it was submitted. The runner's future is
wrapped in the :class:`~wfkit.futures.WfFuture` the caller gets.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from wfkit._annotations import unmapped
from wfkit._engine import process, timelines
from wfkit._engine.calls import PreparedTaskRun, execute_task_run, prepare_task_run
from wfkit._engine.inputs import is_mappable, looked_through
from wfkit._engine.parameters import bind_parameters
from wfkit._engine.signals import is_interrupt
from wfkit.context import SubmittedRuns, flow_run_context
from wfkit.exceptions import MappingLengthMismatch, MappingMissingIterable, MissingContextError
from wfkit.futures import WfFuture, WfFutureList
from wfkit.logging import base_logger, log_for_run
from wfkit.states import Cancelled, Crashed, Failed, State, StateType

__all__ = ["SubmittedRun", "map_task", "submit_runs", "submit_task"]

_CRASHED = StateType.CRASHED  # (a global: read once per run)
_FINISHED = "Finished in state Crashed(%r)"  # (the line the lifecycle logs for a final state)
_task_logger = base_logger("task")

# Taking a run to start or cancel it: held for a few bytecodes, shared by all runs (a map
# makes many; one lock each would cost more than the rare contention).
_claim_lock = threading.Lock()


# execute_task_run(prepared, return_state=True), without a Python-level frame
_execute: Callable[[PreparedTaskRun], State] = functools.partial(
    execute_task_run, return_state=True
)


class SubmittedRun:
    """A prepared task run handed to a task runner; see
    :class:`wfkit.task_runners.TaskRunCall` for what a runner may do with it.

    It starts once: the first of run/run_async/run_remote/cancel takes it. Once it is
    over it keeps only its final state (and ``finished_at``, the fake clock's time then).
    """

    __slots__ = (
        "task_run_id", "task_run_name", "task", "flow_run_id", "is_async", "finished_at",
        "_prepared", "_run", "_upstream", "_context", "_clock", "_submitted_at", "_final",
        "_cancelled", "_flow_runs_submitted",
    )  # fmt: skip

    def __init__(
        self,
        prepared: PreparedTaskRun,
        context: contextvars.Context,
        submitted: SubmittedRuns | None = None,
    ) -> None:
        run = prepared.run
        self.task_run_id: str = run.id
        self.task_run_name: str = run.name
        self.task = prepared.task
        self.flow_run_id: str | None = run.flow_run_id
        self.is_async: bool = prepared.task.isasync
        self.finished_at: float | None = None
        self._prepared: PreparedTaskRun | None = prepared
        self._run: Any = run  # until it is over: its current state
        self._upstream = prepared.plan.upstream
        # The runs of one map share the context; each run enters a copy of its own.
        self._context: contextvars.Context | None = context
        clock = self._clock = prepared.runtime.clock
        # (None under a real clock: no timeline to branch)
        self._submitted_at = clock.monotonic() if timelines.is_virtual(clock) else None
        self._final: State | None = None
        self._cancelled = False
        # The submitting flow run's count of runs not yet ended: it ends after this one.
        self._flow_runs_submitted = submitted
        if submitted is not None:
            submitted.started()

    @property
    def upstream(self) -> tuple[WfFuture[Any], ...]:
        """The futures it waits for (data and ``wait_for``); empty once it is over."""
        upstream = self._upstream
        if upstream is None:
            return ()
        return tuple(dict.fromkeys(future for future, _ in upstream.futures))

    @property
    def state(self) -> State:
        """Its current state; the final one once it is over."""
        run = self._run
        state: State | None = run.state if run is not None else self._final
        assert state is not None  # a live run has a state from the start
        return state

    # starting -------------------------------------------------------------------------------
    def run(self) -> State:
        """Run it in this thread; its final state.

        Raises:
            KeyboardInterrupt, SystemExit: the run was interrupted (it is recorded Crashed):
                the interrupt goes on to whoever runs it, on its way to the flow's caller.
        """
        prepared = self._claim()
        if prepared is None:
            return self.state  # cancelled before it started
        state = self._start(_execute, prepared)
        if state.type is _CRASHED and is_interrupt(state.exception):
            raise state.exception  # type: ignore[misc]
        return state

    def run_remote(
        self, send: Callable[[Any], Any], native: process.NativeSend | None = None
    ) -> State:
        """Run it in another process through ``send`` (or the send ``native`` offers for
        its upstream runs); its final state."""
        prepared = self._claim()
        if prepared is None:
            return self.state
        return self._start(process.run_remote, prepared, send, native)

    def record_live(self, event: Any) -> None:
        """Record now an event that its remote execution published (its start)."""
        process.record_live(self.task_run_id, event)

    def check_remote(self) -> None:
        """Raise TypeError if a worker process could not import the task."""
        process.task_reference(self.task)

    async def run_async(self) -> State:
        """Run it on the running event loop (an async task); its final state."""
        prepared = self._claim()
        if prepared is None:
            return self.state
        # (asyncio is loaded: this runs on an event loop. Imported here, not at the top,
        # so that a process that only submits sync tasks never imports it: ~30 ms.)
        import asyncio

        context = self._context.copy()  # type: ignore[union-attr]
        try:
            loop = asyncio.get_running_loop()
            state: State = await loop.create_task(self._drive_async(prepared), context=context)
        except Exception as exc:
            context.run(self._crash, prepared, exc)
            raise
        finally:
            self._over(prepared)
        return state

    async def _drive_async(self, prepared: PreparedTaskRun) -> State:
        clock = self._clock
        with timelines.branch(clock, self._submitted_at):
            try:
                return await execute_task_run(prepared, return_state=True)  # type: ignore[no-any-return]
            finally:
                if self._submitted_at is not None:
                    self.finished_at = clock.monotonic()

    def _claim(self) -> PreparedTaskRun | None:
        """Take the prepared run to start it; None if it was cancelled."""
        with _claim_lock:
            prepared, self._prepared = self._prepared, None
        if prepared is None and not self._cancelled:
            raise RuntimeError(
                f"task run {self.task_run_name!r} ({self.task_run_id}) was started twice: a "
                "task runner must call run(), run_async() or run_remote() once per call."
            )
        return prepared

    def _start(self, work: Callable[..., State], prepared: PreparedTaskRun, *args: Any) -> State:
        """``work(prepared, *args)`` in a copy of the submitter's context, on the run's own
        timeline (fake clocks)."""
        context = self._context.copy()  # type: ignore[union-attr]
        # Counted as started when it was submitted: whatever happens, it is counted as ended
        # here, or its flow run would wait for it forever.
        try:
            if self._submitted_at is None:
                return context.run(work, prepared, *args)
            return context.run(self._on_timeline, work, prepared, *args)
        except Exception as exc:  # it raised outside the run's lifecycle: a bug, not the task's
            context.run(self._crash, prepared, exc)
            raise
        finally:
            self._over(prepared)

    def _on_timeline(self, work: Callable[..., State], *args: Any) -> State:
        clock = self._clock
        with timelines.branch(clock, self._submitted_at):  # it started when submitted
            try:
                return work(*args)
            finally:
                self.finished_at = clock.monotonic()

    def _over(self, prepared: PreparedTaskRun) -> None:
        """It has ended: keep the final state only (a finished run's future holds no more),
        and tell the flow run that submitted it."""
        self._final = prepared.run.state
        self._run = self._upstream = self._context = None
        if self._flow_runs_submitted is not None:
            self._flow_runs_submitted.ended(self.finished_at)

    def _crash(self, prepared: PreparedTaskRun, error: BaseException) -> None:
        """``error`` escaped the run outside its lifecycle (in the runner's code, or the
        engine's around the lifecycle): record it Crashed, saying whose error it is, and log
        the traceback with the run; unless it reached a final state already (the lifecycle's
        own driver records Crashed what escapes it). The caller re-raises ``error``."""
        run = prepared.run
        if run.state is not None and run.state.is_final():
            return
        message = _internal_error(error)
        crashed = Crashed(message=message, exception=error)
        try:
            run.set_state(crashed)
        except Exception:  # the store failed too: the error to report is the first one, and
            # the run's own state (what its future and downstream runs see) is Crashed
            run.state = crashed
        if _task_logger.isEnabledFor(logging.ERROR):
            log_for_run(prepared.context, logging.ERROR, _FINISHED, (message,), error)

    # not starting ---------------------------------------------------------------------------
    def cancel(self) -> bool:
        """Keep it from starting: it is recorded Cancelled. False if it has started."""
        with _claim_lock:
            prepared, self._prepared = self._prepared, None
            if prepared is not None:
                self._cancelled = True
        if prepared is None:
            return self._cancelled
        self._end_unstarted(prepared, Cancelled(message="Cancelled before it started."))
        return True

    def reject(self, error: BaseException) -> None:
        """The runner refused it (its submit raised ``error``): it is recorded Failed; or
        Cancelled, when an interrupt (Ctrl-C) came while it was being handed over: it never
        started, as the rest of the queue the interrupt cancels."""
        prepared = self._take_unstarted(error)
        if prepared is not None:
            message = f"The task runner did not take it: {type(error).__name__}: {error}"
            self._end_unstarted(prepared, Failed(message=message, exception=error))

    def crash(self, error: BaseException) -> None:
        """The runner failed it before it started: its future ended with ``error`` (a bug of
        the runner, which never called run(), run_async() or run_remote()). It is recorded
        Crashed, the traceback logged with it; or Cancelled for an interrupt, as by
        :meth:`reject`. Nothing changes if it started (whoever started it ends it)."""
        if self._prepared is None:  # (started or ended; checked again under the lock)
            return
        prepared = self._take_unstarted(error)
        if prepared is not None:
            try:
                self._context.copy().run(self._crash, prepared, error)  # type: ignore[union-attr]
            finally:
                self._over(prepared)

    def _take_unstarted(self, error: BaseException) -> PreparedTaskRun | None:
        """Take it to end it unstarted because of ``error``; None if it has started or
        ended. An interrupt ends it Cancelled here (it never started, as the rest of the
        queue the interrupt cancels), and None is returned."""
        with _claim_lock:
            prepared, self._prepared = self._prepared, None
        if prepared is None or not is_interrupt(error):
            return prepared
        message = f"Cancelled before it started: {type(error).__name__}."
        self._end_unstarted(prepared, Cancelled(message=message, exception=error))
        return None

    def _end_unstarted(self, prepared: PreparedTaskRun, state: State) -> None:
        try:
            self._context.copy().run(prepared.run.set_state, state)  # type: ignore[union-attr]
        finally:  # (counted as ended even if the store failed: its flow run must not wait)
            self._over(prepared)

    def _runner_done(self, future: Any) -> None:
        """A done callback on a third-party runner's future: if the future ended before
        the run started (the runner's own error), the run ends Crashed rather than staying
        Pending with its flow run waiting for it."""
        if self._prepared is None or future.cancelled():  # (the usual case: it ran)
            return
        try:
            future.result()
        except BaseException as exc:  # the runner's error, for the run's record
            self.crash(exc)
            return
        self.crash(
            RuntimeError(
                "the task runner's future finished without the runner having called run(), "
                "run_async() or run_remote()"
            )
        )

    def __repr__(self) -> str:
        return f"SubmittedRun({self.task_run_name!r}, state={self.state.name})"


def _internal_error(error: BaseException) -> str:
    """The message of a run Crashed by ``error``, an error of its task runner (or of the
    engine around the run), not of its task."""
    return (
        f"Task run crashed by an internal error of its task runner, not of the task: "
        f"{type(error).__name__}: {error}. This is a bug: please report it to the task "
        "runner's authors (wfkit's, for a built-in runner), with the traceback logged for "
        "this run."
    )


def _runner_for(task: Any, verb: str) -> Any:
    ctx = flow_run_context.get()
    if ctx is None or ctx.task_runner is None:
        raise MissingContextError(
            f"{task.name}.{verb}(...) was called outside a flow: submitting needs a flow run's "
            f"task runner. Call it inside a @flow, or call the task directly ({task.name}(...)) "
            "to run it inline."
        )
    return ctx.task_runner


def submit_task(
    task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Any = None
) -> WfFuture[Any]:
    """``task.submit(*args, **kwargs)``: a future of a run on the flow's task runner."""
    runner = _runner_for(task, "submit")
    return submit_runs(runner, task, (_arguments(task, args, kwargs),), wait_for)[0]


def _arguments(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    bound, _, _ = bind_parameters(task, args, kwargs)
    return dict(bound.arguments)


def submit_runs(
    runner: Any, task: Any, parameter_sets: Iterable[dict[str, Any]], wait_for: Any
) -> WfFutureList[Any]:
    """Prepare one run of ``task`` per parameter set and submit each to ``runner``; their
    futures, in order. A run the runner refuses is recorded Failed, and the error raised."""
    if task.isgenerator or task.isasyncgen:
        raise TypeError(
            f"task {task.name!r} is a generator; generator tasks stream to their caller and "
            "cannot be submitted. Call it directly instead."
        )
    context = contextvars.copy_context()
    flow_ctx = flow_run_context.get()
    submitted = flow_ctx.submitted if flow_ctx is not None else None
    submit = runner.submit
    futures: WfFutureList[Any] = WfFutureList()
    for parameters in parameter_sets:
        prepared = prepare_task_run(task, (), {}, wait_for=wait_for, arguments=parameters)
        call = SubmittedRun(prepared, context, submitted)
        try:
            future = submit(call)
        except BaseException as exc:
            call.reject(exc)
            raise
        if not getattr(future, "ends_its_call", False):  # (wfkit's own jobs do it themselves)
            future.add_done_callback(call._runner_done)
        futures.append(WfFuture(call, future))
    return futures


def map_task(
    task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Any = None
) -> WfFutureList[Any]:
    """``task.map(...)``: one submitted run per position of the iterable arguments."""
    runner = _runner_for(task, "map")
    arguments = _arguments(task, args, kwargs)
    mapped: dict[str, list[Any]] = {}
    static: dict[str, Any] = {}
    for name, value in arguments.items():
        if isinstance(value, WfFuture):
            value = value.result()  # a future of an iterable maps over the iterable
        if is_mappable(value):
            mapped[name] = list(value)
        else:
            static[name] = value.value if isinstance(value, unmapped) else value
    if not mapped:
        raise MappingMissingIterable(
            f"{task.name}.map(...) got no iterable to map over (arguments: {arguments!r}). Pass "
            "at least one list/tuple/iterable; wrap values that should stay whole in unmapped()."
        )
    lengths = {name: len(values) for name, values in mapped.items()}
    if len(set(lengths.values())) > 1:
        raise MappingLengthMismatch(
            f"{task.name}.map(...) got iterables of different lengths {lengths}. Give them equal "
            "lengths, or wrap the ones that should stay whole in unmapped()."
        )
    with looked_through(static.values()):  # not once per run
        return submit_runs(runner, task, _rows(arguments, mapped, static), wait_for)


def _rows(
    arguments: dict[str, Any], mapped: dict[str, list[Any]], static: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """One arguments dict per position, in the parameters' order."""
    template = {name: static.get(name) for name in arguments}
    if len(mapped) == 1:
        [(name, values)] = mapped.items()
        for value in values:
            row = template.copy()
            row[name] = value
            yield row
        return
    for position in zip(*mapped.values(), strict=True):
        row = template.copy()
        row.update(zip(mapped, position, strict=True))
        yield row
