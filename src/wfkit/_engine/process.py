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

from wfkit._engine.timelines import catch_up, is_virtual
from wfkit._plugins import notify
from wfkit.states import NotReady, State

__all__ = ["run_in_process"]


class _RecordingStore:
    """A store that keeps what the child's run records, in order, to send to the parent.

    Cache reads are answered from the one record the parent looked up for the run's key;
    cache writes are sent back and replayed into the parent's store.
    """

    url = "recording://"

    def __init__(self, cache: tuple[str | None, Any] = (None, None)) -> None:
        self.events: list[tuple[str, Any]] = []
        self._cache_key, self._cache_record = cache

    def read_cache(self, key: str) -> Any:
        return self._cache_record if key == self._cache_key else None

    def write_cache(self, *args: Any) -> None:
        self.events.append(("cache", args))

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
    from wfkit.clock import FakeClock, SystemClock
    from wfkit.context import FlowRunContext, flow_run_context, use_runtime
    from wfkit.task_runners import ThreadPoolTaskRunner
    from wfkit.testing._patching import virtual_sleeps  # (TEMP: the runner work replaces this)

    module, qualname = reference
    task: Any = importlib.import_module(module)
    for part in qualname.split("."):
        task = getattr(task, part)
    store = _RecordingStore(identity["cache"])
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
            ctx = FlowRunContext(None, _FlowRunInfo(identity["flow_run"]), False, rt)
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
    try:
        cache = _parent_cache_lookup(plan.cache, runtime)
        return _run_child(runner, prepared, cache)
    finally:
        if plan.cache is not None:
            plan.cache.release()


def _parent_cache_lookup(cache: Any, runtime: Any) -> tuple[str | None, Any]:
    """(key, record) for the child: the parent holds a SERIALIZABLE key's lock while the
    child runs, so concurrent identical process tasks compute once."""
    if cache is None:
        return None, None
    try:
        key = cache.key()
    except Exception:  # the child computes it again and fails the run with the error
        return None, None
    if key is None:
        return None, None
    lock = cache.lock_for(key)
    if lock is not None:
        lock.acquire()
        cache.mark_held()
    try:
        return key, runtime.store.read_cache(key)
    except Exception:
        return key, None


def _run_child(runner: Any, prepared: Any, cache: tuple[str | None, Any]) -> State:
    from wfkit.context import flow_run_context

    run, runtime = prepared.run, prepared.runtime
    clock = runtime.clock
    flow_ctx = flow_run_context.get()
    identity = {
        "id": run.id,
        "name": run.name,
        "flow_run_id": run.flow_run_id,
        "tags": run.tags,
        "upstream_ids": run.upstream_ids,
        "fake_start": clock.now().isoformat() if is_virtual(clock) else None,
        "flow_run": _flow_run_fields(flow_ctx.run if flow_ctx else None),
        "cache": cache,
    }
    started = clock.monotonic()
    arguments = dict(prepared.bound.arguments)
    future = runner.processes().submit(_child, task_reference(prepared.task), arguments, identity)
    state, events, elapsed = future.result()
    _replay(events, run, runtime)
    catch_up(clock, started + elapsed)
    return state


def _replay(events: list[tuple[str, Any]], run: Any, runtime: Any) -> None:
    """Publish what the child recorded, in order, as if it had happened here."""
    previous = run.state
    for kind, payload in events:
        if kind == "log":
            notify("wfkit_log", record=payload)
        elif kind == "cache":
            runtime.store.write_cache(*payload)
        else:
            hook = f"wfkit_{kind}_run_state_changed"
            notify(
                hook, **{f"{kind}_run": payload, "old_state": previous, "new_state": payload.state}
            )
            if kind == "task" and payload.id == run.id:
                previous = payload.state
                run.state, run.run_count = payload.state, payload.run_count
                run.cache_key = payload.cache_key
