"""Running a submitted task run in another process: ``TaskRunCall.run_remote``, the flow's
side.

The flow's process prepared the run (recorded Pending, id known). It waits for the run's
upstream and looks up its cache record, then hands a picklable :class:`ProcessTaskRun` to
the runner. In the worker, :meth:`ProcessTaskRun.execute` runs the lifecycle (retries,
timeouts, hooks) under the same identity, recording into a list (the worker's side is
:mod:`wfkit._engine.worker`); back in the flow's process, those state changes, log lines
and cache writes are replayed through the plugin hooks, so its store (and every plugin)
sees them as if the run had been local.
"""

from __future__ import annotations

import contextvars
import importlib
import pickle
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from wfkit._annotations import allow_failure
from wfkit._engine import timelines
from wfkit._engine.calls import PreparedTaskRun
from wfkit._engine.signals import task_ended, task_started
from wfkit._engine.worker import (
    KEEP,
    HiddenFuture,
    ProcessTaskRun,
    UpstreamRef,
    swap,
)
from wfkit._plugins import publish_log, publish_state_change
from wfkit.concurrency._tags import take_slots_sync
from wfkit.context import HarnessLike, Runtime, flow_run_context, picklable_parameters
from wfkit.exceptions import SerializationError, UpstreamTaskError
from wfkit.futures import WfFuture
from wfkit.logging import show_recorded_line
from wfkit.states import Crashed, Failed, NotReady, State, StateType

__all__ = ["NativeSend", "record_live", "run_remote", "task_reference"]

# A runner's offer to send a run whose upstream runs it sent: given their ids, a send
# function that hands the cluster their native futures with the run (None: it cannot).
NativeSend = Callable[[tuple[str, ...]], Callable[["ProcessTaskRun"], Any] | None]


def task_reference(task: Any) -> tuple[str, str]:
    """(module, qualname) under which a worker process can import ``task``.

    Raises:
        TypeError: the task is not reachable by that name (defined inside a function).
    """
    module, qualname = task.__module__, task.__qualname__
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not task and getattr(found, "fn", None) is not task.fn:
        raise TypeError(
            f"task {task.name!r} ({module}.{qualname}) cannot run in another process: worker "
            "processes import tasks by name, so define it at module level (not inside a function)."
        )
    return module, qualname


def _flow_run_fields(run: Any) -> bytes | None:
    """The fields of flow run ``run`` that a worker shows its tasks, pickled (parameters
    that do not pickle as their repr); once per flow run attempt, not once per task run:
    pickling them took two thirds of a run's sending."""
    global _flow_fields
    if run is None:
        return None
    known = _flow_fields
    if known is not None and known[0] is run and known[1] == run.run_count:
        return known[2]
    names = (
        "id", "name", "flow_name", "flow_version", "tags", "run_count",
        "parent_flow_run_id", "root_flow_run_id", "scheduled_start_time",
    )  # fmt: skip
    fields = {name: getattr(run, name) for name in names}
    fields["parameters"] = picklable_parameters(dict(run.parameters))
    pickled = pickle.dumps(fields)
    _flow_fields = (run, run.run_count, pickled)
    return pickled


_flow_fields: tuple[Any, int, bytes] | None = None  # (run, its run_count, its fields pickled)


class _LiveEvents:
    """A remote run's events published before its outcome came back (its start): recorded
    by whichever comes first, the live event or the outcome's replay."""

    __slots__ = ("run", "runtime", "context", "lock", "recorded")

    def __init__(self, run: Any, runtime: Runtime) -> None:
        self.run, self.runtime = run, runtime
        self.context = contextvars.copy_context()  # (the run's: its store, its plugins)
        self.lock = threading.Lock()
        self.recorded = False


_live_runs: dict[str, _LiveEvents] = {}


def record_live(task_run_id: str, event: Any) -> None:
    """Record ``event`` (published by the worker running ``task_run_id``) now, unless the
    run's outcome has been recorded already. Called from any thread."""
    live = _live_runs.get(task_run_id)
    if live is None:
        return
    with live.lock:
        if live.recorded:
            return
        live.recorded = True
        live.context.copy().run(_replay, [event], live.run, live.runtime)


def run_remote(
    prepared: PreparedTaskRun,
    send: Callable[[ProcessTaskRun], Any],
    native: NativeSend | None = None,
) -> State:
    """The flow process's side of a remote task run (in the submitter's context, on the
    run's timeline): wait for the upstream, send, replay; returns the final state.

    With ``native``, a run whose upstream runs the runner sent itself goes at once, with
    references to them: the cluster hands it their outcomes (see :class:`UpstreamRef`).
    Runs with a cache policy or tag limits wait here as before: their cache key may need
    the upstream values, and their slots are taken here."""
    run, plan, runtime = prepared.run, prepared.plan, prepared.runtime
    upstream = plan.upstream
    by_reference = None
    plain_send = send
    if upstream is not None:
        if native is not None and plan.cache is None and plan.slots is None:
            by_reference = _by_reference(prepared, native)
        if by_reference is None:
            problem = upstream.wait_sync()
            if problem is not None:
                return run.set_state(NotReady(exception=problem, message=str(problem)))  # type: ignore[no-any-return]
        else:
            send = by_reference[1]
    if plan.slots is not None:  # tag limits: this process holds the slots for the worker
        try:
            if not take_slots_sync(plan.slots, False):
                run.set_state(State(StateType.PENDING, "AwaitingConcurrencySlot"))
                take_slots_sync(plan.slots, True)
        except Exception as exc:  # the limit can never grant one (a limit of 0, say)
            return run.set_state(Failed(message=str(exc), exception=exc))  # type: ignore[no-any-return]
    try:
        cache = _cache_lookup(plan.cache, runtime)
        try:
            remote = _remote_form(prepared, cache, by_reference and by_reference[0])
        except Exception as exc:  # a task that a worker cannot import
            message = f"It cannot run in another process: {type(exc).__name__}: {exc}"
            return run.set_state(Failed(message=message, exception=exc))  # type: ignore[no-any-return]
        clock = runtime.clock
        started = clock.monotonic()
        live = _live_runs[run.id] = _LiveEvents(run, runtime)
        task_started(run)  # live here too: SIGTERM and Ctrl-C record it Crashed
        try:
            try:
                outcome = send(remote)
            except UpstreamTaskError:  # the cluster lost an upstream run: it never ran this
                if by_reference is None:
                    raise
                problem = upstream.wait_sync()  # type: ignore[union-attr]
                if problem is not None:
                    with live.lock:
                        live.recorded = True
                        return run.set_state(NotReady(exception=problem, message=str(problem)))  # type: ignore[no-any-return]
                # (its failure is allowed: the run goes again, with the upstream's outcome)
                outcome = plain_send(_remote_form(prepared, cache))
        except SerializationError as exc:  # its arguments or result: its own fault
            with live.lock:
                live.recorded = True
                return run.set_state(Failed(message=str(exc), exception=exc))  # type: ignore[no-any-return]
        except Exception as exc:  # a lost worker, a cluster gone...
            message = f"Running it in another process failed: {type(exc).__name__}: {exc}"
            with live.lock:
                live.recorded = True
                return run.set_state(Crashed(message=message, exception=exc))  # type: ignore[no-any-return]
        finally:
            task_ended(run)
        with live.lock:
            events = outcome.events
            if live.recorded:  # its start came live: the rest follows it
                events = [event for event in events if event[0] != "task-live"]
            live.recorded = True
            _replay(events, run, runtime, outcome.show_lines)
        timelines.catch_up(clock, started + outcome.elapsed)
        return outcome.state
    finally:
        _live_runs.pop(run.id, None)
        if plan.cache is not None:
            plan.cache.release()
        if plan.slots is not None:
            plan.slots.release()


def _cache_lookup(cache: Any, runtime: Runtime) -> tuple[str | None, Any, bytes | None]:
    """(key, record, the store's cache secret) for the worker: a SERIALIZABLE key's lock is
    held here while the worker runs, so that concurrent identical remote runs compute once."""
    if cache is None:
        return None, None, None
    try:
        secret = runtime.store.cache_secret()
    except Exception:  # the worker's lookup and write fail, and warn
        secret = None
    try:
        key = cache.key()
    except Exception:  # the worker computes it again and fails the run with the error
        return None, None, secret
    if key is None:
        return None, None, secret
    lock = cache.lock_for(key)
    if lock is not None:
        lock.acquire()
    try:
        return key, runtime.store.read_cache(key), secret
    except Exception:
        return key, None, secret


def _remote_form(
    prepared: PreparedTaskRun,
    cache: tuple[str | None, Any, bytes | None],
    references: tuple[dict[str, Any], list[Any]] | None = None,
) -> ProcessTaskRun:
    run, runtime = prepared.run, prepared.runtime
    clock = runtime.clock
    flow_ctx = flow_run_context.get()
    identity = {
        "id": run.id,
        "name": run.name,
        "flow_run_id": run.flow_run_id,
        "tags": run.tags,
        "upstream_ids": run.upstream_ids,
        "fake_start": clock.now().isoformat() if timelines.is_virtual(clock) else None,
        "flow_run": _flow_run_fields(flow_ctx.run if flow_ctx else None),
        "cache": cache,
    }
    arguments, wait_for = references or (dict(prepared.bound.arguments), None)
    setup = _worker_setup(runtime.harness)
    return ProcessTaskRun(task_reference(prepared.task), arguments, identity, setup, wait_for)


def _as_reference(value: Any) -> Any:
    return UpstreamRef(value.task_run_id) if isinstance(value, WfFuture) else KEEP


def _by_reference(
    prepared: PreparedTaskRun, native: NativeSend
) -> tuple[tuple[dict[str, Any], list[Any]], Callable[[ProcessTaskRun], Any]] | None:
    """(the arguments and wait_for with references for the upstream futures, the runner's
    send) for a run the runner can send with its upstream's native futures; else None."""
    upstream = prepared.plan.upstream
    opaque = upstream.opaque
    try:
        arguments = {
            name: value if name in opaque else swap(value, _as_reference)
            for name, value in prepared.bound.arguments.items()
        }
    except HiddenFuture:
        return None
    wait_for = [
        (allow_failure(ref) if allowed else ref)
        for ref, allowed in ((swap(f, _as_reference), a) for f, a in upstream.futures)
    ]
    send = native(upstream.ids)
    return None if send is None else ((arguments, wait_for), send)


def _worker_setup(harness: HarnessLike | None) -> Callable[[], AbstractContextManager[Any]] | None:
    """What a worker enters around a run of this harness (see
    :class:`wfkit.context.HarnessLike`)."""
    return harness.worker_setup if harness is not None else None


_STATE_HOOKS = {"task": "wfkit_task_run_state_changed", "flow": "wfkit_flow_run_state_changed"}


def _replay(
    events: list[tuple[str, Any]], run: Any, runtime: Runtime, show_lines: bool = False
) -> None:
    """Publish what the worker recorded, in order, as if it had happened here; with
    ``show_lines``, also show its log lines here, as a local run's (the worker did not)."""
    previous = run.state
    labels = {run.id: ("Task run", run.name)} if show_lines else None
    for kind, payload in events:
        if kind == "log":
            publish_log(payload)
            if labels is not None:
                run_id = payload.task_run_id or payload.flow_run_id
                kind_and_name = labels.get(run_id) or (
                    "Task run" if payload.task_run_id else "Flow run",
                    run_id,
                )
                show_recorded_line(payload, *kind_and_name)
        elif kind == "cache":
            runtime.store.write_cache(*payload)
        else:
            kind = kind.removesuffix("-live")
            if labels is not None:  # (a run started inside the task: a flow, its tasks)
                labels[payload.id] = (f"{kind.capitalize()} run", payload.name)
            hook = _STATE_HOOKS[kind]
            publish_state_change(hook, payload, previous, payload.state)
            if kind == "task" and payload.id == run.id:
                previous = payload.state
                run.state, run.run_count = payload.state, payload.run_count
                run.cache_key = payload.cache_key
