"""Running a prepared task run in a worker process (``ProcessPoolTaskRunner``).

The parent prepares the run (recorded Pending, id known) and waits for its upstream; the
child runs the lifecycle (retries, timeouts, hooks) under the same identity, recording into
a list; the parent replays those state changes and log lines through the plugin hooks, so
its store (and every plugin) sees them as if the run had been local.
"""

from __future__ import annotations

import importlib
import pickle
from typing import Any

from wfkit._plugins import notify
from wfkit.states import NotReady, State

__all__ = ["run_in_process"]


class _RecordingStore:
    """A store that keeps what the child's run records, in order, to send to the parent."""

    url = "recording://"

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def record_task_run(self, run: Any) -> None:
        self.events.append(("task", run._replace(parameters=dict(run.parameters))))

    def record_flow_run(self, run: Any) -> None:  # a flow called inside a process task
        self.events.append(("flow", run._replace(parameters=dict(run.parameters))))

    def record_log(self, entry: Any) -> None:
        self.events.append(("log", entry))

    def flush(self) -> None:
        """Nothing buffered."""

    def close(self) -> None:
        """Nothing to release."""


def task_reference(task: Any) -> tuple[str, str]:
    """(module, qualname) under which a worker process can import ``task``."""
    module, qualname = task.__module__, task.__qualname__
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not task and getattr(found, "fn", None) is not task.fn:
        raise TypeError(
            f"task {task.name!r} ({module}.{qualname}) cannot run in a process pool: worker "
            "processes import tasks by name, so define it at module level (not inside a function)."
        )
    return module, qualname


class _FlowRunInfo:
    """What a worker process knows of the flow run its task belongs to (for
    ``wfkit.runtime.flow_run`` inside the task)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)


def _child(
    reference: tuple[str, str], arguments: dict[str, Any], identity: dict[str, Any]
) -> tuple[State, list[Any], float]:
    """Worker-process entry: run the task under ``identity``; return (final state,
    recorded events, virtual seconds elapsed)."""
    from contextlib import ExitStack

    from wfkit._engine.calls import execute_task_run, prepare_task_run
    from wfkit._engine.virtual_time import virtual_sleeps
    from wfkit.clock import FakeClock, SystemClock
    from wfkit.context import FlowRunContext, flow_run_context, use_runtime
    from wfkit.task_runners import ThreadPoolTaskRunner

    module, qualname = reference
    task: Any = importlib.import_module(module)
    for part in qualname.split("."):
        task = getattr(task, part)
    store = _RecordingStore()
    fake = identity["fake_start"]
    clock = FakeClock(fake) if fake else SystemClock()
    with ExitStack() as stack:
        # Under a parent's test harness, the task's own sleeps are virtual here too.
        rt = stack.enter_context(
            use_runtime(clock=clock, store=store, harness=fake or None)  # type: ignore[arg-type]
        )
        if fake:
            stack.enter_context(virtual_sleeps())
        if identity["flow_run"] is not None:
            ctx = FlowRunContext(None, _FlowRunInfo(identity["flow_run"]), False, rt, None)
            ctx.task_runner = ThreadPoolTaskRunner()
            token = flow_run_context.set(ctx)
            stack.callback(flow_run_context.reset, token)
            stack.callback(ctx.task_runner.shutdown)
        prepared = prepare_task_run(task, (), {}, identity=identity, arguments=arguments)
        state = execute_task_run(prepared, return_state=True)
    elapsed = clock.elapsed if isinstance(clock, FakeClock) else 0.0
    return _picklable(state), store.events, elapsed


def _flow_run_fields(run: Any) -> dict[str, Any] | None:
    if run is None:
        return None
    names = (
        "id", "name", "flow_name", "flow_version", "tags", "run_count",
        "parent_flow_run_id", "root_flow_run_id", "scheduled_start_time",
    )  # fmt: skip
    fields = {name: getattr(run, name) for name in names}
    fields["parameters"] = dict(run.parameters)
    return fields


def _picklable(state: State) -> State:
    try:
        pickle.dumps(state)
        return state
    except Exception:
        exc = state.exception
        replacement = RuntimeError(f"{type(exc).__name__}: {exc}") if exc is not None else None
        return state.copy(data=None, exception=replacement)


def run_in_process(runner: Any, prepared: Any) -> State:
    """The parent's side of a process-pool task run (runs in a parent thread)."""
    run, plan, runtime = prepared.run, prepared.plan, prepared.runtime
    if plan.upstream is not None:
        problem = plan.upstream.wait_sync()
        if problem is not None:
            return run.set_state(NotReady(exception=problem, message=str(problem)))  # type: ignore[no-any-return]
    clock = runtime.clock
    from wfkit.context import flow_run_context

    flow_ctx = flow_run_context.get()
    identity = {
        "id": run.id,
        "name": run.name,
        "flow_run_id": run.flow_run_id,
        "tags": run.tags,
        "upstream_ids": run.upstream_ids,
        "fake_start": clock.now().isoformat() if clock.virtual else None,
        "flow_run": _flow_run_fields(flow_ctx.run if flow_ctx else None),
    }
    started = clock.monotonic()
    parameters = dict(prepared.bound.arguments)
    future = runner.processes().submit(_child, task_reference(prepared.task), parameters, identity)
    state, events, elapsed = future.result()
    previous = run.state
    for kind, payload in events:
        if kind == "log":
            notify("wfkit_log", record=payload)
            continue
        hook = "wfkit_task_run_state_changed" if kind == "task" else "wfkit_flow_run_state_changed"
        notify(hook, **{f"{kind}_run": payload, "old_state": previous, "new_state": payload.state})
        if kind == "task" and payload.id == run.id:
            previous = payload.state
            run.state, run.run_count = payload.state, payload.run_count
    clock.catch_up(started + elapsed)
    return state
