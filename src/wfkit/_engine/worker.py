"""A submitted task run on the worker's side (another process): its picklable form,
:class:`ProcessTaskRun`, whose :meth:`~ProcessTaskRun.execute` runs the lifecycle (retries,
timeouts, hooks) under the run's identity and records into a list, the
:class:`RemoteOutcome` that goes back to the flow's process, and the references that stand
in its arguments for upstream runs the cluster resolves. The flow's side is
:mod:`wfkit._engine.process`.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, NamedTuple

from wfkit._annotations import BaseAnnotation, quote
from wfkit._engine.calls import execute_task_run, prepare_task_run
from wfkit.clock import FakeClock, SystemClock
from wfkit.context import FlowRunContext, Runtime, flow_run_context, use_runtime
from wfkit.exceptions import StoreError
from wfkit.logging import lines_are_shown_elsewhere
from wfkit.states import State

__all__ = ["KEEP", "HiddenFuture", "ProcessTaskRun", "RemoteOutcome", "UpstreamRef", "swap"]


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
            return states[value.task_run_id] if isinstance(value, UpstreamRef) else KEEP

        self.arguments = {name: swap(value, fill) for name, value in self.arguments.items()}
        self.wait_for = swap(self.wait_for, fill)
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


class HiddenFuture(Exception):
    """A future sits where references cannot replace it (in a dataclass's field)."""


KEEP: Any = object()  # (what a swap leaf function returns for a value it leaves alone)


def swap(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """``value`` with what ``leaf`` replaces (it returns :data:`KEEP` for the rest),
    looked for where the engine looks for futures: in annotations (not ``quote``), dict
    values, lists, tuples and sets; unchanged containers are kept as they are.

    Raises:
        HiddenFuture: a dataclass instance holds something ``leaf`` would replace.
    """
    new = leaf(value)
    if new is not KEEP:
        return new
    if isinstance(value, BaseAnnotation):
        if isinstance(value, quote):
            return value
        inner = swap(value.value, leaf)
        return value if inner is value.value else type(value)(inner)
    if isinstance(value, dict):
        items = {k: swap(v, leaf) for k, v in value.items()}
        changed = any(items[k] is not v for k, v in value.items())
        return items if changed else value
    if isinstance(value, (list, tuple, set, frozenset)):
        members = [swap(v, leaf) for v in value]
        if all(new is old for new, old in zip(members, value, strict=True)):
            return value
        return type(value)(*members) if hasattr(value, "_fields") else type(value)(members)
    if hasattr(type(value), "__dataclass_fields__"):
        fields = type(value).__dataclass_fields__
        if any(swap(getattr(value, name), leaf) is not getattr(value, name) for name in fields):
            raise HiddenFuture
    return value
