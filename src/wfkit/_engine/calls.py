"""Calling a flow or a task: bind the arguments, create the live run, pick the driver for
the function's calling convention, and set the run context around it.

Sync and async calls share everything here; they differ only in the driver that carries out
the lifecycle's effects.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from contextvars import ContextVar
from typing import Any, NamedTuple

from wfkit._engine.asyncutils import wait_in_daemon_thread
from wfkit._engine.drivers import (
    FinalState,
    drive_async,
    drive_async_gen,
    drive_sync,
    drive_sync_gen,
)
from wfkit._engine.inputs import (
    consume_generator,
    find_upstream,
    recorded_value,
    settle_returned,
)
from wfkit._engine.lifecycle import RunPlan, lifecycle
from wfkit._engine.naming import random_slug, render_run_name, short_suffix
from wfkit._engine.parameters import bind_arguments, bind_parameters
from wfkit._engine.runs import FlowRunLive, TaskRunLive
from wfkit._engine.signals import (
    crash_unfinished,
    flow_ended,
    flow_started,
    install_sigterm_handler,
    is_cancellation,
    is_interrupt,
    task_ended,
    task_started,
)
from wfkit._engine.timelines import branch, catch_up
from wfkit.concurrency._tags import tag_slots
from wfkit.context import (
    FlowRunContext,
    Runtime,
    TaskRunContext,
    current_runtime,
    current_tags,
    flow_run_context,
    task_run_context,
)
from wfkit.exceptions import ParameterTypeError
from wfkit.logging import (
    acquire_print_logging,
    logger_for,
    release_print_logging,
    setup_logging,
)
from wfkit.states import Pending, State, StateType

__all__ = ["PreparedTaskRun", "call_flow", "call_task", "execute_task_run", "prepare_task_run"]

# Globals instead of the Enum class attributes (read through its metaclass, ~90 ns): every
# task call reads them.
_PENDING = StateType.PENDING
_COMPLETED = StateType.COMPLETED


def call_flow(
    flow: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, return_state: bool
) -> Any:
    """Run ``flow`` with these arguments (see :class:`wfkit.Flow`)."""
    if not _SETUP_DONE:
        _ensure_setup()
    runtime = current_runtime()
    parent = flow_run_context.get()
    parent_task = task_run_context.get()
    if parent is None and parent_task is None:
        runtime.store  # noqa: B018 - open (and check) the store before a run exists
        install_sigterm_handler(runtime.harness)  # (returns at once once installed)
    options = flow.options
    bound, passed, parameters = bind_parameters(flow, args, kwargs)
    pre_failure = None
    if options.validate_parameters:
        coerced, problems = flow._validator.validate(passed)
        if problems:
            pre_failure = ParameterTypeError(
                "Flow run received invalid parameters:\n" + "\n".join(problems)
            )
        elif coerced is not passed:
            bound.arguments.update(coerced)
            parameters.update(coerced)
    run = FlowRunLive(
        name="",
        flow_name=flow.name,
        flow_version=options.version,
        parameters=parameters,
        tags=current_tags(),
        clock=runtime.clock,
        parent=parent.run if parent else None,
        parent_task_run_id=parent_task.run.id if parent_task else None,
        flow_path=f"{flow.fn.__module__}:{flow.fn.__qualname__}",
    )
    log_prints = (
        bool(options.log_prints)
        if options.log_prints is not None
        else _inherited_log_prints(parent_task or parent)
    )
    ctx = FlowRunContext(flow, run, log_prints, runtime)
    # Invalid parameters cannot name the run; it is recorded (Failed) under a slug.
    _name_run(
        run,
        None if pre_failure else options.flow_run_name,
        random_slug,
        "flow_run_name",
        (flow_run_context, ctx),
    )
    ctx.task_runner = options.task_runner.duplicate()
    plan = RunPlan(run, flow, flow.run_spec, ctx, pre_failure)
    run.set_state(Pending())
    logger_for(ctx).info("Beginning flow run %r for flow %r", run.name, flow.name)
    body = _flow_body(flow, bound, ctx)
    top_level = parent is None and parent_task is None
    return _dispatch(flow, plan, body, runtime, (flow_run_context, ctx), top_level, return_state)


class PreparedTaskRun(NamedTuple):
    """A task run created (and Pending) but not started: what ``submit`` hands a worker."""

    task: Any
    run: TaskRunLive
    plan: RunPlan
    context: TaskRunContext
    runtime: Runtime
    top_level: bool
    bound: Any


def prepare_task_run(
    task: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    wait_for: Any = None,
    identity: dict[str, Any] | None = None,
    arguments: dict[str, Any] | None = None,
) -> PreparedTaskRun:
    """Bind the arguments, create the task run (recorded Pending) and its plan.

    ``identity`` (a worker process continuing a run its parent prepared) fixes the run's id,
    name, flow run, tags and upstream ids; Pending was recorded by the parent then.
    ``arguments`` (already bound by parameter name, from ``submit``/``map``) replaces
    ``args``/``kwargs``.
    """
    return PreparedTaskRun._make(_prepare(task, args, kwargs, wait_for, identity, arguments))


def _prepare(
    task: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Any,
    identity: dict[str, Any] | None,
    arguments: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """:func:`prepare_task_run`'s work, as a plain tuple (an inline call unpacks it at once)."""
    if not _SETUP_DONE:
        _ensure_setup()
    runtime = current_runtime()
    flow_ctx = flow_run_context.get()
    outer_task = task_run_context.get()
    top_level = flow_ctx is None and outer_task is None
    if top_level:
        runtime.store  # noqa: B018 - open (and check) the store before a run exists
    options = task.options
    if arguments is not None:
        bound, _, parameters = bind_arguments(task, arguments)
    else:
        bound, _, parameters = bind_parameters(task, args, kwargs)
    flow_run_id = flow_ctx.run.id if flow_ctx is not None else None
    upstream = find_upstream(bound, wait_for, flow_run_id, runtime.clock)
    tags = current_tags()
    if options.tags:
        tags = tags + tuple(t for t in options.tags if t not in tags)
    if identity is not None:
        flow_run_id, tags = identity["flow_run_id"], tuple(identity["tags"])
    if upstream is not None:  # record references, not the futures (nor their results)
        parameters = {k: recorded_value(v) for k, v in parameters.items()}
    name = options.name
    run = TaskRunLive(
        name,
        parameters,
        tags,
        runtime.clock,
        flow_run_id,
        upstream.ids if upstream is not None else (),
    )
    log_prints = (
        bool(options.log_prints)
        if options.log_prints is not None
        else _inherited_log_prints(outer_task or flow_ctx)
    )
    ctx = TaskRunContext(task, run, log_prints, runtime)
    if identity is not None:
        run.id, run.name, run.upstream_ids = (
            identity["id"],
            identity["name"],
            identity["upstream_ids"],
        )
    elif options.task_run_name is None:
        run.name = f"{name}-{short_suffix()}"
    else:
        _name_run(
            run,
            options.task_run_name,
            lambda: f"{name}-{short_suffix()}",
            "task_run_name",
            (task_run_context, ctx),
        )
    policy = task.effective_cache_policy
    cache = _task_cache(task, policy, ctx, flow_ctx, bound) if policy is not None else None
    # (_make: a NamedTuple from a tuple, without the keyword handling of its __new__)
    # Tag concurrency limits; not in a process-pool worker (identity given): the flow's
    # process takes the slots for it (process.run_remote).
    slots = tag_slots(runtime.store, tags) if tags and identity is None else None
    plan = RunPlan._make((run, task, task.run_spec, ctx, None, upstream, cache, slots))
    if identity is None:
        run.set_state(State(_PENDING, "Pending"))  # (Pending() without its keyword handling)
    else:
        run.state = Pending()  # recorded by the parent process
        top_level = False  # the parent commits
    return task, run, plan, ctx, runtime, top_level, bound


def _task_cache(task: Any, policy: Any, ctx: TaskRunContext, flow_ctx: Any, bound: Any) -> Any:
    global _TaskCache
    if _TaskCache is None:
        # (lazy: caching loads cache_policies, pickle and json, ~8 ms of a first run that
        # caches nothing; bound once, since an import statement run on every call costs a
        # failed ``__path__`` lookup each time)
        from wfkit._engine.caching import TaskCache as _TaskCache
    return _TaskCache.for_run(task, policy, ctx, flow_ctx, bound)


_TaskCache: Any = None


def execute_task_run(prepared: PreparedTaskRun, *, return_state: bool) -> Any:
    """Run a prepared task run here (its result, or a coroutine/generator for async and
    generator tasks)."""
    task, _, plan, ctx, runtime, top_level, bound = prepared
    # (The body is made here, not kept with the prepared run: a map holds many of those.)
    body = _body(task, bound)
    return _dispatch(task, plan, body, runtime, (task_run_context, ctx), top_level, return_state)


def call_task(
    task: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    return_state: bool = False,
    wait_for: Any = None,
) -> Any:
    """Run ``task`` inline with these arguments (see :class:`wfkit.Task`)."""
    task, _, plan, ctx, runtime, top_level, bound = _prepare(
        task, args, kwargs, wait_for, None, None
    )
    body = _body(task, bound)
    return _dispatch(task, plan, body, runtime, (task_run_context, ctx), top_level, return_state)


_SETUP_DONE = False


def _ensure_setup() -> None:
    global _SETUP_DONE
    if not _SETUP_DONE:
        setup_logging()
        _SETUP_DONE = True


def _name_run(
    run: Any,
    spec: Any,
    default: Callable[[], str],
    argument: str,
    context: tuple[ContextVar[Any], Any],
) -> None:
    """Name the run; a naming function runs inside the run's context, as in Prefect, so it
    can read ``wfkit.runtime.flow_run`` / ``task_run``."""
    if callable(spec):
        tokens = _enter(*context)
        try:
            run.name = render_run_name(spec, run.parameters, default=default, argument=argument)
        finally:
            _exit(tokens)
    else:
        run.name = render_run_name(spec, run.parameters, default=default, argument=argument)


def _inherited_log_prints(outer: Any) -> bool:
    """``log_prints`` of the enclosing run (a task's, else the flow's), if any."""
    return bool(outer.log_prints) if outer is not None else False


def _body(owner: Any, bound: Any) -> Callable[[], Any]:
    """The call of the function with its bound arguments (read when the body runs: waiting
    for upstream futures replaces them by their values in ``bound.arguments``)."""
    fn = owner.fn
    if owner.positional_names is not None:  # plain parameters: no bound.args/kwargs needed
        arguments = bound.arguments
        return lambda: fn(*arguments.values())
    return lambda: fn(*bound.args, **bound.kwargs)


def _flow_body(flow: Any, bound: Any, ctx: FlowRunContext) -> Callable[[], Any]:
    """The flow's body. Each attempt ends only once every task run it submitted has ended
    (so the flow run's final state comes after theirs), and what it returns has its futures
    waited for (a future that did not complete fails the flow)."""
    fn = flow.fn
    submitted = ctx.submitted

    def wait_all() -> None:
        # The runner finishes what was submitted (this thread helps with queued work, and a
        # runner cancels what it will not run); a retry submits to a fresh copy of it.
        runner = ctx.task_runner
        runner.shutdown(wait=True)
        ctx.task_runner = runner.duplicate()
        submitted.wait()  # runs the runner may have handed elsewhere
        if submitted.latest is not None:  # under a fake clock: the flow ends after them
            catch_up(ctx.runtime.clock, submitted.latest)

    def abandon(error: BaseException) -> None:
        _abandon(ctx, error)

    def all_ended(error: BaseException | None = None) -> None:
        # An interrupt (the body's, or one that reaches this thread while it waits or helps)
        # or a cancellation (an async flow's Ctrl-C) ends the flow run now: nothing queued
        # may run, so the interrupt is not held up.
        if error is not None and (is_interrupt(error) or is_cancellation(error)):
            _abandon(ctx, error)
            return
        try:
            wait_all()
        except BaseException as exc:
            if is_interrupt(exc):
                _abandon(ctx, exc)
            raise

    if flow.isasync:

        async def run_async() -> Any:
            try:
                value = consume_generator(await fn(*bound.args, **bound.kwargs))
            except BaseException as exc:
                await wait_in_daemon_thread(all_ended, exc, on_cancel=abandon)
                raise
            await wait_in_daemon_thread(all_ended, on_cancel=abandon)
            return settle_returned(value)

        return run_async
    if flow.isgenerator:

        def run_gen() -> Any:
            try:
                value = yield from fn(*bound.args, **bound.kwargs)
            except BaseException as exc:
                all_ended(exc)
                raise
            all_ended()
            return value

        return run_gen
    if flow.isasyncgen:

        async def run_async_gen() -> Any:
            values = fn(*bound.args, **bound.kwargs)
            try:
                async for value in values:
                    yield value
            except BaseException as exc:
                await values.aclose()
                await wait_in_daemon_thread(all_ended, exc, on_cancel=abandon)
                raise
            await values.aclose()
            await wait_in_daemon_thread(all_ended, on_cancel=abandon)

        return run_async_gen

    def run() -> Any:
        try:
            value = consume_generator(fn(*bound.args, **bound.kwargs))
        except BaseException as exc:
            all_ended(exc)
            raise
        all_ended()
        return settle_returned(value)

    return run


def _abandon(ctx: FlowRunContext, error: BaseException) -> None:
    """The flow run is interrupted: cancel the task runs it queued (recorded Cancelled, never
    run), and record Crashed those running in other threads (the interrupt cannot stop
    them; they go on, daemon threads, until the process ends)."""
    ctx.task_runner.shutdown(wait=False)
    message = f"Task run crashed: its flow run was interrupted ({type(error).__name__})."
    crash_unfinished(ctx.run.id, message)


def _dispatch(
    owner: Any,
    plan: RunPlan,
    body: Callable[[], Any],
    runtime: Runtime,
    context: tuple[ContextVar[Any], Any],
    top_level: bool,
    return_state: bool,
) -> Any:
    """Pick the driver for the calling convention and run the lifecycle in the run context."""
    steps = lifecycle(plan, runtime.rng)
    clock = runtime.clock
    if owner.isasyncgen:
        return _in_context_async_gen(
            drive_async_gen(steps, plan, body, clock), context, runtime, top_level
        )
    if owner.isasync:
        return _in_context_async(
            drive_async(steps, plan, body, clock),
            context,
            runtime,
            top_level,
            return_state,
            _timeline(owner, clock, top_level),
        )
    if owner.isgenerator:
        return _in_context_gen(
            drive_sync_gen(steps, plan, body, clock), context, runtime, top_level
        )
    var, value = context
    if var is task_run_context and not value.log_prints:  # (the common case, without
        # _enter/_exit's tuples)
        token = var.set(value)
        run = plan.run
        task_started(run)  # (live, for the SIGTERM handler)
        try:
            state = drive_sync(steps, plan, body, clock)
        finally:
            task_ended(run)
            var.reset(token)
            if top_level:
                runtime.store.flush()
        if state.type is _COMPLETED and not return_state and run.handed_back is None:
            return state.data  # (_finish's common case)
        return _finish(state, return_state, plan.run)
    tokens = _enter(var, value)
    try:
        with _timeline(owner, clock, top_level):
            state = drive_sync(steps, plan, body, clock)
    finally:
        _exit(tokens)
        _close(context, runtime, top_level)
    return _finish(state, return_state, plan.run)


def _timeline(owner: Any, clock: Any, top_level: bool) -> Any:
    """A top-level flow runs on a timeline of its own (under a fake clock), so the tasks it
    submits start at the flow's time, not at the furthest point other work reached."""
    return branch(clock) if top_level and owner.kind == "flow" else nullcontext()


def _enter(var: ContextVar[Any], value: Any) -> tuple[Any, ...]:
    """Enter the run's context (and, for a ``log_prints`` run, print logging)."""
    if value.log_prints:
        acquire_print_logging()
    # A flow called inside a task is not part of that task's body: clear the task context.
    if var is flow_run_context:
        tokens = var, var.set(value), task_run_context.set(None), value.log_prints
        flow_started(value)  # (live in this context, for the SIGTERM handler)
        return tokens
    task_started(value.run)
    return var, var.set(value), None, value.log_prints


def _exit(tokens: tuple[Any, ...]) -> None:
    var, token, task_token, log_prints = tokens
    if var is flow_run_context:
        flow_ended(var.get())
    else:
        task_ended(var.get().run)
    if task_token is not None:
        task_run_context.reset(task_token)
    var.reset(token)
    if log_prints:
        release_print_logging()


def _close(context: tuple[ContextVar[Any], Any], runtime: Runtime, top_level: bool) -> None:
    """After a run: wait for and release a flow run's task runner; commit a top-level run."""
    ctx = context[1]
    if isinstance(ctx, FlowRunContext):
        ctx.task_runner.shutdown(wait=True)
    if top_level:
        runtime.store.flush()


def _finish(state: State, return_state: bool, run: Any = None) -> Any:
    """What the call returns: the final state, or the result (raising the run's error); or
    what the run hands back whatever its state (see ``handed_back``)."""
    exc = state.exception
    if exc is not None and not isinstance(exc, Exception) and state.is_crashed():
        raise exc  # interrupts (KeyboardInterrupt, SystemExit) always propagate
    if return_state:
        return state
    if run is not None and run.handed_back is not None:
        return run.handed_back[0]
    return state.result()


async def _in_context_async(
    drive: Any,
    context: Any,
    runtime: Runtime,
    top_level: bool,
    return_state: bool,
    timeline: Any,
) -> Any:
    tokens = _enter(*context)
    try:
        with timeline:
            state = await drive
    finally:
        _exit(tokens)
        _close(context, runtime, top_level)
    return _finish(state, return_state, context[1].run)


def _in_context_gen(drive: Any, context: Any, runtime: Runtime, top_level: bool) -> Any:
    # The context is entered around each step, so the consumer's code between values runs
    # outside the run (as it would with a plain generator).
    try:
        while True:
            tokens = _enter(*context)
            try:
                value = next(drive)
            except StopIteration as stop:
                state: State = stop.value
                break
            finally:
                _exit(tokens)
            try:
                yield value
            except GeneratorExit:
                tokens = _enter(*context)
                try:
                    drive.close()
                finally:
                    _exit(tokens)
                raise
    finally:
        _close(context, runtime, top_level)
    _finish(state, return_state=False)
    return state.data


async def _in_context_async_gen(drive: Any, context: Any, runtime: Runtime, top_level: bool) -> Any:
    try:
        while True:
            tokens = _enter(*context)
            try:
                value = await drive.__anext__()
            finally:
                _exit(tokens)
            if isinstance(value, FinalState):
                _finish(value.state, return_state=False)
                return
            try:
                yield value
            except GeneratorExit:
                tokens = _enter(*context)
                try:
                    await drive.aclose()
                finally:
                    _exit(tokens)
                raise
    finally:
        _close(context, runtime, top_level)
