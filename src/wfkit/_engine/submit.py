"""Submitting task runs to a flow run's task runner: ``task.submit`` and ``task.map``.

Each run is prepared (bound, created, recorded Pending) in the caller's thread, so its id is
known at once; it executes on the runner with a copy of the caller's context (flow run,
tags, clock, store, harness), on a timeline of its own under a fake clock. A map queues its
runs in batches, so that the workers start early but are not woken once per item.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from wfkit._annotations import unmapped
from wfkit._engine.calls import PreparedTaskRun, execute_task_run, prepare_task_run
from wfkit._engine.inputs import is_mappable, looked_through
from wfkit._engine.jobs import Job
from wfkit._engine.parameters import bind_parameters
from wfkit._engine.timelines import branch, is_virtual
from wfkit.context import flow_run_context
from wfkit.exceptions import MappingLengthMismatch, MappingMissingIterable, MissingContextError
from wfkit.futures import WfFuture, WfFutureList

__all__ = ["map_task", "submit_runs", "submit_task"]

_BATCH = 64  # runs prepared before the workers are handed them


def _runner_for(task: Any, verb: str) -> Any:
    ctx = flow_run_context.get()
    if ctx is None:
        raise MissingContextError(
            f"{task.name}.{verb}(...) was called outside a flow: submitting needs a flow run's "
            f"task runner. Call it inside a @flow, or call the task directly ({task.name}(...)) "
            "to run it inline."
        )
    return ctx.task_runner


def submit_task(
    task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Any = None
) -> WfFuture:
    """``task.submit(*args, **kwargs)``: a future of a run on the flow's task runner."""
    runner = _runner_for(task, "submit")
    return runner.submit(task, _arguments(task, args, kwargs), wait_for)


def _arguments(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    bound, _, _ = bind_parameters(task, args, kwargs)
    return dict(bound.arguments)


class _SubmittedRun(Job):
    """A prepared task run queued on a runner: a worker, or a thread that waits for it,
    runs it in a copy of the submitter's context, on a timeline that starts when it was
    submitted (fake clocks)."""

    __slots__ = ("_prepared", "_execute", "_context", "_submitted_at")

    def __init__(
        self,
        prepared: PreparedTaskRun,
        execute: Callable[[PreparedTaskRun], Any],
        context: contextvars.Context,
    ) -> None:
        Job.__init__(self, None, prepared.run)
        self._prepared: PreparedTaskRun | None = prepared
        self._execute = execute  # the runner's run_prepared
        # The runs of one map share the context; each run enters a copy of its own.
        self._context: contextvars.Context | None = context
        clock = prepared.runtime.clock
        self._submitted_at = clock.monotonic() if is_virtual(clock) else None

    def _work(self) -> Any:
        prepared, context = self._prepared, self._context
        self._prepared = self._context = None  # a finished run's future keeps only its state
        assert prepared is not None and context is not None  # a job runs once
        if self._submitted_at is None:
            return context.copy().run(self._execute, prepared)
        return context.copy().run(self._on_own_timeline, prepared)

    def _on_own_timeline(self, prepared: PreparedTaskRun) -> Any:
        clock = prepared.runtime.clock
        with branch(clock, self._submitted_at):  # it started when submitted, not when picked up
            try:
                return self._execute(prepared)
            finally:
                self.finished_at = clock.monotonic()


def _submit_async(runner: Any, prepared: PreparedTaskRun, context: Any) -> WfFuture:
    """An async task runs on the runner's event loop; its job ends with the coroutine."""
    import asyncio

    clock = prepared.runtime.clock
    submitted_at = clock.monotonic()
    job = Job.external(live=prepared.run)

    async def run_async() -> Any:
        with branch(clock, submitted_at):
            try:
                return await execute_task_run(prepared, return_state=True)
            finally:
                job.finished_at = clock.monotonic()

    def finish(done: Any) -> None:
        error = done.exception()
        job.complete(None if error else done.result(), error)

    concurrent = context.copy().run(
        asyncio.run_coroutine_threadsafe, run_async(), runner.event_loop()
    )
    concurrent.add_done_callback(finish)
    return WfFuture(prepared.run, job)


def submit_runs(
    runner: Any, task: Any, parameter_sets: Iterable[dict[str, Any]], wait_for: Any
) -> WfFutureList:
    """Prepare one run of ``task`` per parameter set and queue them on ``runner``; their
    futures, in order. Runs prepared before an error are queued all the same."""
    _check_submittable(task)
    context = contextvars.copy_context()
    execute = runner.run_prepared
    futures = WfFutureList()
    batch: list[Job] = []
    try:
        for parameters in parameter_sets:
            prepared = prepare_task_run(task, (), {}, wait_for=wait_for, arguments=parameters)
            if task.isasync:
                futures.append(_submit_async(runner, prepared, context))
                continue
            job = _SubmittedRun(prepared, execute, context)
            futures.append(WfFuture(prepared.run, job))
            batch.append(job)
            if len(batch) == _BATCH:
                runner.submit_jobs(batch)
                batch = []
    finally:
        if batch:
            runner.submit_jobs(batch)
    return futures


def map_task(
    task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Any = None
) -> WfFutureList:
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
        return runner.submit_each(  # type: ignore[no-any-return]
            task, _rows(arguments, mapped, static), wait_for
        )


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


def _check_submittable(task: Any) -> None:
    from wfkit.tasks import Task

    if not isinstance(task, Task):
        raise TypeError(
            f"task runners run wfkit tasks; got {task!r}. Decorate the function with @task "
            "(or call it directly)."
        )
    if task.isgenerator or task.isasyncgen:
        raise TypeError(
            f"task {task.name!r} is a generator; generator tasks stream to their caller and "
            "cannot be submitted. Call it directly instead."
        )
