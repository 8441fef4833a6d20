"""Submitting task runs to a flow run's task runner: ``task.submit`` and ``task.map``.

The run is prepared (bound, created, recorded Pending) in the caller's thread, so its id is
known at once; it executes on the runner with a copy of the caller's context (flow run,
tags, clock, store, harness), on a timeline of its own under a fake clock.
"""

from __future__ import annotations

import contextvars
from typing import Any

from wfkit._annotations import unmapped
from wfkit._engine.calls import PreparedTaskRun, execute_task_run, prepare_task_run
from wfkit._engine.inputs import is_mappable
from wfkit._engine.jobs import Job
from wfkit._engine.parameters import bind_parameters
from wfkit.context import flow_run_context
from wfkit.exceptions import MappingLengthMismatch, MappingMissingIterable, MissingContextError
from wfkit.futures import WfFuture, WfFutureList

__all__ = ["map_task", "submit_prepared", "submit_task"]


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
    bound, _, _ = bind_parameters(
        task.signature, task.call_args(args), kwargs, owner=f"task {task.name!r}"
    )
    return dict(bound.arguments)


def submit_prepared(runner: Any, prepared: PreparedTaskRun) -> WfFuture:
    """Schedule a prepared run on ``runner``; returns its future."""
    context = contextvars.copy_context()
    clock = prepared.runtime.clock
    submitted_at = clock.monotonic()  # concurrent work starts when submitted, not when picked up
    if prepared.task.isasync:
        job = Job.external()
        import asyncio

        async def run_async() -> Any:
            with clock.branch(submitted_at):
                try:
                    return await execute_task_run(prepared, return_state=True)
                finally:
                    job.finished_at = clock.monotonic()

        def finish(done: Any) -> None:
            error = done.exception()
            job.complete(None if error else done.result(), error)

        concurrent = context.run(asyncio.run_coroutine_threadsafe, run_async(), runner.event_loop())
        concurrent.add_done_callback(finish)
        return WfFuture(prepared.run, job)

    def run_here() -> Any:
        with clock.branch(submitted_at):
            try:
                return runner.run_prepared(prepared)
            finally:
                job.finished_at = clock.monotonic()

    job = Job(lambda: context.run(run_here))
    runner.submit_job(job, prepared)
    return WfFuture(prepared.run, job)


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
    count = next(iter(lengths.values()))
    return WfFutureList(
        runner.submit(
            task, {**static, **{name: values[i] for name, values in mapped.items()}}, wait_for
        )
        for i in range(count)
    )


def prepare_for_runner(task: Any, parameters: dict[str, Any], wait_for: Any) -> PreparedTaskRun:
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
    return prepare_task_run(task, (), {}, wait_for=wait_for, arguments=dict(parameters))
