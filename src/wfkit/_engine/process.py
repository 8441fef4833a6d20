"""Running a submitted task run in another process: ``TaskRunCall.run_remote``.

The flow's process prepared the run (recorded Pending, id known). It waits for the run's
upstream and looks up its cache record, then hands a picklable :class:`ProcessTaskRun` to
the runner. In the worker, :meth:`ProcessTaskRun.execute` runs the lifecycle (retries,
timeouts, hooks) under the same identity, recording into a list; back in the flow's
process, those state changes, log lines and cache writes are replayed through the plugin
hooks, so its store (and every plugin) sees them as if the run had been local.
"""

from __future__ import annotations

import contextvars
import importlib
import pickle
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, NamedTuple

from wfkit._annotations import BaseAnnotation, allow_failure, quote
from wfkit._engine import timelines
from wfkit._engine.calls import PreparedTaskRun, execute_task_run, prepare_task_run
from wfkit._engine.signals import task_ended, task_started
from wfkit._plugins import publish_log, publish_state_change
from wfkit.clock import FakeClock, SystemClock
from wfkit.concurrency._tags import take_slots_sync
from wfkit.context import (
    FlowRunContext,
    HarnessLike,
    Runtime,
    flow_run_context,
    picklable_parameters,
    use_runtime,
)
from wfkit.exceptions import SerializationError, StoreError, UpstreamTaskError
from wfkit.futures import WfFuture
from wfkit.logging import lines_are_shown_elsewhere, show_recorded_line
from wfkit.states import Crashed, Failed, NotReady, State, StateType

__all__ = [
    "ProcessTaskRun", "RemoteOutcome", "UpstreamRef", "record_live", "run_remote",
    "task_reference",
]  # fmt: skip

# A runner's offer to send a run whose upstream runs it sent: given their ids, a send
# function that hands the cluster their native futures with the run (None: it cannot).
NativeSend = Callable[[tuple[str, ...]], Callable[["ProcessTaskRun"], Any] | None]


class RemoteOutcome(NamedTuple):
    """What a worker sends back: the final state, what the run recorded (in order), the
    virtual seconds it took (fake clocks; else 0), and whether the worker left its log
    lines for the flow's process to show (see :func:`wfkit.logging.lines_shown_elsewhere`)."""

    state: State
    events: list[tuple[str, Any]]
    elapsed: float
    show_lines: bool = False

    def made_picklable(self) -> RemoteOutcome:
        """This outcome, its final state made picklable where it is not (see
        :func:`_picklable`)."""
        return self._replace(state=_picklable(self.state))


class _RecordingStore:
    """A store that keeps what the worker's run records, in order, to send back.

    Cache reads are answered from the one record the flow's process looked up for the
    run's key, checked with that store's secret, sent along; cache writes are signed with
    it, sent back and replayed into the flow's store.
    """

    url = "recording://"

    def __init__(
        self,
        cache: tuple[str | None, Any, Any] = (None, None, None),
        live: tuple[str, Callable[[Any], object]] | None = None,
    ) -> None:
        self.events: list[tuple[str, Any]] = []
        self._parameters: dict[int, tuple[Any, dict[str, Any]]] = {}  # (see _plain)
        self._cache_key, self._cache_record, self._secret = cache
        # (the run's id, and the runner's publish function): its start goes out at once
        self._live = live

    def read_cache(self, key: str) -> Any:
        return self._cache_record if key == self._cache_key else None

    def cache_secret(self) -> bytes:
        if self._secret is None:
            raise StoreError("the flow's store could not give its cache secret")
        return self._secret  # type: ignore[no-any-return]

    def write_cache(self, *args: Any) -> None:
        self.events.append(("cache", args))

    def _plain(self, run: Any) -> Any:
        """``run`` with its parameters as a dict (a run's are a read-only view, which does
        not pickle): one dict per run, however many states it records (~2 µs a copy)."""
        proxy = run.parameters
        plain = self._parameters.get(id(proxy))
        if plain is None or plain[0] is not proxy:
            plain = self._parameters[id(proxy)] = (proxy, dict(proxy))
        return run._replace(parameters=plain[1])

    def record_task_run(self, run: Any) -> None:
        snapshot = self._plain(run)
        live = self._live
        if live is not None and run.id == live[0] and run.state.is_running():
            self._live = None  # (its first start only: enough for live progress)
            try:
                live[1](("task", snapshot))
            except Exception:  # (no live channel here after all: sent with the outcome)
                pass
            else:
                self.events.append(("task-live", snapshot))
                return
        self.events.append(("task", snapshot))

    def record_flow_run(self, run: Any) -> None:  # a flow called inside a process task
        self.events.append(("flow", self._plain(run)))

    def record_log(self, entry: Any) -> None:
        self.events.append(("log", entry))

    def flush(self) -> None:
        """Nothing buffered."""

    def close(self) -> None:
        """Nothing to release."""


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


class _HarnessInWorker:
    """Stands in a worker process for the test harness of the flow's process (what runs
    here submits to a process pool of its own with the same setup)."""

    def __init__(self, worker_setup: Callable[[], AbstractContextManager[Any]]) -> None:
        self.worker_setup = worker_setup

    def __repr__(self) -> str:
        return "<the flow process's test harness>"


class _FlowRunInfo:
    """What a worker process knows of the flow run its task belongs to (for
    ``wfkit.runtime.flow_run`` inside the task): its id, and the rest of its fields,
    unpickled when first read (the engine itself reads only the id)."""

    def __init__(self, run_id: str, fields: bytes) -> None:
        self.id = run_id
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        known = self.__dict__
        fields = known.get("_fields")
        if fields is None or name.startswith("__"):
            raise AttributeError(name)
        # (two threads of a task may both unpickle them: the same values, set twice)
        known.update(pickle.loads(fields))
        known.pop("_fields", None)
        try:
            return known[name]
        except KeyError:
            raise AttributeError(name) from None


class ProcessTaskRun:
    """A task run's picklable form (a :class:`~wfkit.task_runners.RemoteTaskRun`).

    Attributes:
        task_run_id: the run's id.
        reference: (module, qualname) of the task.
        arguments: its arguments, upstream results filled in.
        identity: the run's id, name, flow run, tags, upstream ids, start time (fake
            clocks) and cache record.
        worker_setup: a context manager factory entered around the run in the worker
            (the test harness's virtual sleeps), or None.
        wait_for: sent with its upstream's native futures: every upstream, as
            :class:`UpstreamRef` (in ``allow_failure`` where its failure is allowed), as
            the arguments hold them until :meth:`resolve_upstream`; else empty.
    """

    def __init__(
        self,
        reference: tuple[str, str],
        arguments: dict[str, Any],
        identity: dict[str, Any],
        worker_setup: Callable[[], AbstractContextManager[Any]] | None,
        wait_for: list[Any] | None = None,
    ) -> None:
        self.task_run_id: str = identity["id"]
        self.reference = reference
        self.arguments = arguments
        self.identity = identity
        self.worker_setup = worker_setup
        self.wait_for = wait_for or []

    def resolve_upstream(self, states: dict[str, State]) -> None:
        """Put the upstream runs' final states (by run id) where the flow's process left
        :class:`UpstreamRef` references: the run then settles them as it would futures (an
        upstream that did not complete makes it NotReady, unless in ``allow_failure``)."""

        def fill(value: Any) -> Any:
            return states[value.task_run_id] if isinstance(value, UpstreamRef) else _KEEP

        self.arguments = {name: _swap(value, fill) for name, value in self.arguments.items()}
        self.wait_for = _swap(self.wait_for, fill)
        if self.identity["fake_start"] is not None:  # (it starts when they ended, as waited)
            ends = [state.timestamp for state in states.values() if state.timestamp]
            self.identity["upstream_end"] = max(ends, default=None)

    def execute(
        self,
        task_runner: Any = None,
        publish: Callable[[Any], object] | None = None,
        *,
        picklable: bool = True,
    ) -> RemoteOutcome:
        """Run the task here (a worker process) under the run's identity; what it records
        is kept for the flow's process. ``task_runner`` runs what the task submits;
        ``publish`` (if given) is called with the run's start as it happens. Without
        ``picklable``, the final state is left as it is (see
        :meth:`RemoteOutcome.made_picklable`)."""
        module, qualname = self.reference
        task: Any = importlib.import_module(module)
        for part in qualname.split("."):
            task = getattr(task, part)
        identity = self.identity
        live = (self.task_run_id, publish) if publish is not None else None
        store = _RecordingStore(identity["cache"], live)
        fake = identity["fake_start"]
        clock = FakeClock(fake) if fake else SystemClock()
        upstream_end = identity.get("upstream_end")
        if isinstance(clock, FakeClock) and upstream_end is not None:
            if upstream_end > clock.now():
                clock.move_to(upstream_end)
        setup = self.worker_setup
        with ExitStack() as stack:
            # Under a test harness in the flow's process, the task's own sleeps are
            # virtual here too: the setup patches them, the marker makes them apply.
            harness = _HarnessInWorker(setup) if setup is not None else None
            # (the recording store is a recorder and a cache store, all the engine uses of
            # a store; it reads nothing back)
            recording = use_runtime(clock=clock, store=store, harness=harness)  # type: ignore[arg-type]
            rt = stack.enter_context(recording)
            if setup is not None:
                stack.enter_context(setup())
            if identity["flow_run"] is not None:
                info = _FlowRunInfo(identity["flow_run_id"], identity["flow_run"])
                stack.enter_context(_in_flow_run(info, rt, task_runner))
            prepared = prepare_task_run(
                task, (), {}, wait_for=self.wait_for, identity=identity, arguments=self.arguments
            )
            state = execute_task_run(prepared, return_state=True)
            if task.isasync:
                import asyncio  # (lazy: ~30 ms; only an async task in a worker needs it)

                state = asyncio.run(state)
        elapsed = clock.elapsed if isinstance(clock, FakeClock) else 0.0
        show = lines_are_shown_elsewhere()
        outcome = RemoteOutcome(state, store.events, elapsed, show)
        return outcome.made_picklable() if picklable else outcome

    def __repr__(self) -> str:
        return f"ProcessTaskRun({'.'.join(self.reference)}, task_run_id={self.task_run_id!r})"


@contextmanager
def _in_flow_run(info: _FlowRunInfo, rt: Runtime, task_runner: Any) -> Iterator[None]:
    """The flow run the task belongs to, as far as the worker knows it."""
    ctx = FlowRunContext(None, info, False, rt)
    ctx.task_runner = task_runner
    token = flow_run_context.set(ctx)
    try:
        yield
    finally:
        flow_run_context.reset(token)
        if task_runner is not None:
            task_runner.shutdown()


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


def _picklable(state: State) -> State:
    """``state``, or (when neither pickle nor cloudpickle takes it) a copy without its value
    and with its exception as text, so that the outcome can go back to the flow's process.

    A value that only cloudpickle takes (a lambda, an instance of a class of the flow's
    ``__main__``) is kept: the clusters send outcomes with cloudpickle. Dropping it made such
    a run on Dask complete with ``None`` for its result.
    """
    try:
        pickle.dumps(state)
        return state
    except Exception:
        try:
            # (cloudpickle comes with the dask and ray extras; only this rare case needs it)
            import cloudpickle

            cloudpickle.dumps(state)
            return state
        except Exception:
            pass
        exc = state.exception
        replacement = RuntimeError(f"{type(exc).__name__}: {exc}") if exc is not None else None
        return state.copy(data=None, exception=replacement)


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


class UpstreamRef:
    """Stands, in the arguments of a run sent with its upstream's native futures, for the
    outcome of upstream run ``task_run_id``; the worker puts that run's final state in its
    place (:meth:`ProcessTaskRun.resolve_upstream`)."""

    __slots__ = ("task_run_id",)

    def __init__(self, task_run_id: str) -> None:
        self.task_run_id = task_run_id

    def __reduce__(self) -> tuple[Any, ...]:
        return UpstreamRef, (self.task_run_id,)

    def __repr__(self) -> str:
        return f"UpstreamRef({self.task_run_id!r})"


class _Hidden(Exception):
    """A future sits where references cannot replace it (in a dataclass's field)."""


_KEEP: Any = object()  # (what a _swap leaf function returns for a value it leaves alone)


def _swap(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """``value`` with what ``leaf`` replaces (it returns :data:`_KEEP` for the rest),
    looked for where the engine looks for futures: in annotations (not ``quote``), dict
    values, lists, tuples and sets; unchanged containers are kept as they are.

    Raises:
        _Hidden: a dataclass instance holds something ``leaf`` would replace.
    """
    new = leaf(value)
    if new is not _KEEP:
        return new
    if isinstance(value, BaseAnnotation):
        if isinstance(value, quote):
            return value
        inner = _swap(value.value, leaf)
        return value if inner is value.value else type(value)(inner)
    if isinstance(value, dict):
        items = {k: _swap(v, leaf) for k, v in value.items()}
        changed = any(items[k] is not v for k, v in value.items())
        return items if changed else value
    if isinstance(value, (list, tuple, set, frozenset)):
        members = [_swap(v, leaf) for v in value]
        if all(new is old for new, old in zip(members, value, strict=True)):
            return value
        return type(value)(*members) if hasattr(value, "_fields") else type(value)(members)
    if hasattr(type(value), "__dataclass_fields__"):
        fields = type(value).__dataclass_fields__
        if any(_swap(getattr(value, name), leaf) is not getattr(value, name) for name in fields):
            raise _Hidden
    return value


def _as_reference(value: Any) -> Any:
    return UpstreamRef(value.task_run_id) if isinstance(value, WfFuture) else _KEEP


def _by_reference(
    prepared: PreparedTaskRun, native: NativeSend
) -> tuple[tuple[dict[str, Any], list[Any]], Callable[[ProcessTaskRun], Any]] | None:
    """(the arguments and wait_for with references for the upstream futures, the runner's
    send) for a run the runner can send with its upstream's native futures; else None."""
    upstream = prepared.plan.upstream
    opaque = upstream.opaque
    try:
        arguments = {
            name: value if name in opaque else _swap(value, _as_reference)
            for name, value in prepared.bound.arguments.items()
        }
    except _Hidden:
        return None
    wait_for = [
        (allow_failure(ref) if allowed else ref)
        for ref, allowed in ((_swap(f, _as_reference), a) for f, a in upstream.futures)
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
