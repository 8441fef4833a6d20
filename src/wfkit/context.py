"""Run contexts, carried in ``contextvars`` so they follow threads and asyncio tasks.

Three things live here:

- the **runtime**: which clock, run store and random source the engine uses
  (:func:`use_runtime`; the test harness installs one; the default is the system clock and
  the configured store);
- the **run contexts**: the flow run and task run currently executing;
- the **tags** added by ``with tags(...)``;
- :func:`with_context`, which carries the run context into another process.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar, copy_context
from typing import TYPE_CHECKING, Any, Protocol

from wfkit.clock import Clock, SystemClock
from wfkit.exceptions import MissingContextError

if TYPE_CHECKING:
    from wfkit.stores import RunStore

__all__ = [
    "ContextCarrier",
    "FlowRunContext",
    "Runtime",
    "SubmittedRuns",
    "TaskRunContext",
    "current_clock",
    "current_runtime",
    "current_store",
    "get_run_context",
    "tags",
    "use_runtime",
    "with_context",
]


class HarnessLike(Protocol):
    """What the engine asks of the test harness a runtime runs under
    (:class:`wfkit.testing.Harness` implements it; the engine never imports it).

    Attributes:
        worker_setup: a picklable, module-level function returning a context manager that
            a worker process enters around each run it executes for this harness (the
            harness's virtual sleeps), so that process-pool tasks follow the fake clock too.
    """

    worker_setup: Callable[[], AbstractContextManager[Any]]


class Runtime:
    """The clock, store and random source runs use; immutable once built.

    ``rng`` drives ``retry_jitter_factor``; give a seeded ``random.Random`` for reproducible
    jitter. ``harness`` is the test harness that installed this runtime, if any.
    """

    __slots__ = ("clock", "_store", "_parent", "rng", "harness", "_lock")

    def __init__(
        self,
        clock: Clock,
        store: RunStore | None = None,
        rng: random.Random | None = None,
        harness: HarnessLike | None = None,
        parent: Runtime | None = None,
    ) -> None:
        self.clock = clock
        self._store = store
        self._parent = parent  # whose store to use when given none
        self.rng = rng if rng is not None else random.Random()
        self.harness = harness
        self._lock = threading.Lock()

    @property
    def store(self) -> RunStore:
        """The run store: the one given, else the parent runtime's, else the configured
        store (opened on first use)."""
        if self._store is None:
            if self._parent is not None:
                return self._parent.store
            with self._lock:
                if self._store is None:
                    # (lazy: wfkit.stores costs ~4.5 ms of ``import wfkit``; a run needs it)
                    from wfkit.stores import configured_store

                    self._store = configured_store()
        return self._store

    @property
    def store_opened(self) -> bool:
        if self._store is None and self._parent is not None:
            return self._parent.store_opened
        return self._store is not None

    def __repr__(self) -> str:
        store = self._store if self._store is not None else "<configured>"
        return f"Runtime(clock={self.clock!r}, store={store!r})"


_default_runtime: Runtime | None = None
_default_lock = threading.Lock()
_runtime: ContextVar[Runtime | None] = ContextVar("wfkit_runtime", default=None)


def current_runtime() -> Runtime:
    """The runtime in force: the innermost :func:`use_runtime`, else the process default."""
    rt = _runtime.get()
    if rt is not None:
        return rt
    return default_runtime()


def default_runtime() -> Runtime:
    """The process default runtime: the system clock and the configured store."""
    global _default_runtime
    if _default_runtime is None:
        with _default_lock:
            if _default_runtime is None:
                _default_runtime = Runtime(SystemClock())
    return _default_runtime


def using_default_runtime() -> bool:
    """Whether runs here use the process default runtime (the configured, real store)."""
    return _runtime.get() is None


def current_clock() -> Clock:
    return current_runtime().clock


def current_store() -> RunStore:
    # (current_runtime() and the store property inlined: every state change asks)
    rt = _runtime.get()
    if rt is None:
        rt = default_runtime()
    store = rt._store
    return store if store is not None else rt.store


@contextmanager
def use_runtime(
    *,
    clock: Clock | None = None,
    store: RunStore | str | None = None,
    rng: random.Random | None = None,
    harness: HarnessLike | None = None,
) -> Iterator[Runtime]:
    """Run everything inside the block with this clock, store and/or random source.

    Unset arguments keep the values in force. ``store`` may be a store or a store URL.
    The store is flushed when the block exits. Example::

        with use_runtime(clock=FakeClock(), store="memory://") as rt:
            my_flow()
            rt.store.flow_runs()
    """
    outer = current_runtime()
    if isinstance(store, str):
        from wfkit.stores import open_store_at  # (lazy: as in Runtime.store)

        store = open_store_at(store)
    rt = Runtime(
        clock=clock if clock is not None else outer.clock,
        store=store,
        rng=rng if rng is not None else outer.rng,
        harness=harness if harness is not None else outer.harness,
        parent=outer,
    )
    token = _runtime.set(rt)
    try:
        yield rt
    finally:
        _runtime.reset(token)
        if rt.store_opened:
            rt.store.flush()


# -- run contexts -------------------------------------------------------------------------
class _RunContext:
    __slots__ = ("run", "log_prints", "runtime", "run_logger")

    kind = ""

    run: Any
    log_prints: bool
    runtime: Runtime
    # The run's logger once made (``wfkit.logging.logger_for(ctx)`` makes it on first use:
    # most task runs never log).
    run_logger: Any

    @property
    def parameters(self) -> dict[str, Any]:
        """The run's parameters (a copy)."""
        return dict(self.run.parameters)


class SubmittedRuns:
    """The task runs a flow run submitted that have not ended: the flow run ends after them
    (its final state is recorded only once every run it submitted has one)."""

    __slots__ = ("_pending", "_idle", "latest")

    def __init__(self) -> None:
        self._pending = 0
        self._idle = threading.Condition(threading.Lock())
        # The latest fake-clock time (``monotonic()``) at which one of them ended, if any.
        self.latest: float | None = None

    def started(self) -> None:
        """One more run was submitted."""
        with self._idle:
            self._pending += 1

    def ended(self, finished_at: float | None) -> None:
        """One of them reached its final state (at ``finished_at`` under a fake clock)."""
        with self._idle:
            self._pending -= 1
            if finished_at is not None and (self.latest is None or finished_at > self.latest):
                self.latest = finished_at
            if self._pending == 0:
                self._idle.notify_all()

    def wait(self) -> None:
        """Return once every submitted run has ended."""
        with self._idle:
            while self._pending:
                self._idle.wait()


class FlowRunContext(_RunContext):
    """What is known inside a running flow: the flow, its live run, its options, and the
    task runs it submitted. ``FlowRunContext.get()`` returns the current one (or None), as
    in Prefect.

    Attributes:
        flow: the :class:`~wfkit.Flow`.
        flow_run: the run (``id, name, flow_name, parameters, tags, run_count, state``...);
            also ``run``.
        parameters: the run's parameters (a dict).
        log_prints: whether ``print`` is logged in this run.
    """

    __slots__ = ("flow", "task_runner", "submitted")

    kind = "flow"

    def __init__(self, flow: Any, run: Any, log_prints: bool, runtime: Runtime) -> None:
        self.flow, self.run, self.log_prints, self.runtime = flow, run, log_prints, runtime
        self.run_logger = None
        self.task_runner: Any = None
        self.submitted = SubmittedRuns()

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """The flow run context here (also inside a task of the flow), or None outside a
        flow run."""
        return flow_run_context.get()

    @property
    def flow_run(self) -> Any:
        return self.run


class TaskRunContext(_RunContext):
    """What is known inside a running task: the task, its live run, its options.
    ``TaskRunContext.get()`` returns the current one (or None), as in Prefect.

    Attributes:
        task: the :class:`~wfkit.Task`.
        task_run: the run (``id, name, task_name, flow_run_id, parameters, tags,
            run_count, state``...); also ``run``.
        parameters: the run's parameters (a dict).
        log_prints: whether ``print`` is logged in this run.
    """

    __slots__ = ("task",)

    kind = "task"

    def __init__(self, task: Any, run: Any, log_prints: bool, runtime: Runtime) -> None:
        # (assigned here rather than through super().__init__: one run per task call)
        self.task, self.run, self.log_prints, self.runtime = task, run, log_prints, runtime
        self.run_logger = None

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """The task run context here, or None outside a task run."""
        return task_run_context.get()

    @property
    def task_run(self) -> Any:
        return self.run


flow_run_context: ContextVar[FlowRunContext | None] = ContextVar("wfkit_flow_run", default=None)
task_run_context: ContextVar[TaskRunContext | None] = ContextVar("wfkit_task_run", default=None)
_tags: ContextVar[tuple[str, ...]] = ContextVar("wfkit_tags", default=())


def get_run_context() -> FlowRunContext | TaskRunContext:
    """The innermost run context (a task run inside a flow run wins).

    Raises:
        MissingContextError: called outside of any flow or task run.
    """
    ctx: FlowRunContext | TaskRunContext | None = task_run_context.get() or flow_run_context.get()
    if ctx is None:
        raise MissingContextError(
            "There is no active flow or task run here. Call this from inside a function "
            "decorated with @flow or @task."
        )
    return ctx


def current_tags() -> tuple[str, ...]:
    return _tags.get()


@contextmanager
def tags(*names: str) -> Iterator[tuple[str, ...]]:
    """Add tags to every run created inside the block; nested blocks add up.

    Example::

        with tags("etl", "nightly"):
            my_flow()   # its task runs carry "etl" and "nightly"
    """
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"tags() takes strings; got {name!r}. Pass tag names like 'etl'.")
    current = _tags.get()
    merged = current + tuple(n for n in names if n not in current)
    token = _tags.set(merged)
    try:
        yield merged
    finally:
        _tags.reset(token)


# -- carrying the run context to another process ------------------------------------------
# What another process is told of the current runs (the names wfkit.runtime reads).
_FLOW_RUN_FIELDS = (
    "id", "name", "flow_name", "flow_version", "parameters", "tags", "run_count",
    "parent_flow_run_id", "root_flow_run_id", "scheduled_start_time",
)  # fmt: skip
_TASK_RUN_FIELDS = ("id", "name", "task_name", "flow_run_id", "parameters", "tags", "run_count")


class RunInfo:
    """A run as another process knows it: its attributes as plain values (what
    ``wfkit.runtime.flow_run``/``task_run`` and the run logger read)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"RunInfo(id={self.__dict__.get('id')!r}, name={self.__dict__.get('name')!r})"


def _run_fields(run: Any, names: tuple[str, ...]) -> dict[str, Any]:
    fields = {name: getattr(run, name, None) for name in names}
    fields["parameters"] = picklable_parameters(dict(run.parameters))
    fields["tags"] = tuple(run.tags)
    return fields


def picklable_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters, with those that cannot be pickled replaced by their repr."""
    import pickle  # (lazy: ~1 ms; only carrying a context to another process needs it)

    picklable = {}
    for name, value in parameters.items():
        try:
            pickle.dumps(value)
        except Exception:
            value = repr(value)
        picklable[name] = value
    return picklable


class ContextCarrier:
    """A picklable callable made by :func:`with_context`: calls ``fn`` inside the run
    context it was made in, in this process or in another one."""

    def __init__(self, fn: Callable[..., Any], snapshot: dict[str, Any]) -> None:
        self.fn = fn
        self.snapshot = snapshot
        # In this process the live context itself is used (a copy per call: threads); a
        # forked child that inherited this object rebuilds it from the snapshot instead.
        self._context: Any = copy_context()
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        return {"fn": self.fn, "snapshot": self.snapshot, "_context": None, "_pid": None}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._context is not None and self._pid == os.getpid():
            return self._context.copy().run(self.fn, *args, **kwargs)
        with _hydrated(self.snapshot):
            return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"with_context({self.fn!r})"


def with_context(fn: Callable[..., Any]) -> ContextCarrier:
    """Wrap ``fn`` so that it runs inside the current run's context wherever it is called:
    in a ``multiprocessing.Pool``, a ``ProcessPoolExecutor``, a ``multiprocessing.Process``
    or a plain thread (as Prefect's ``prefect.context.with_context``).

    In another process, ``get_run_logger()`` returns the run's logger, whose lines are
    recorded with the run in the store when the other process can open it (a SQLite file;
    a ``memory://`` store lives in one process only, so there the lines reach the console
    only); ``wfkit.runtime.flow_run``/``task_run`` read the run; the run's tags apply.
    Outside any run, ``fn`` runs with no run context.

    Example::

        @task
        def double_all(items):
            with multiprocessing.Pool() as pool:
                return pool.map(with_context(double), items)  # double() may log
    """
    flow_ctx, task_ctx = flow_run_context.get(), task_run_context.get()
    runtime = current_runtime()
    snapshot = {
        "flow_run": _run_fields(flow_ctx.run, _FLOW_RUN_FIELDS) if flow_ctx else None,
        "flow_log_prints": bool(flow_ctx and flow_ctx.log_prints),
        "task_run": _run_fields(task_ctx.run, _TASK_RUN_FIELDS) if task_ctx else None,
        "task_log_prints": bool(task_ctx and task_ctx.log_prints),
        "tags": current_tags(),
        "store_url": runtime.store.url if (flow_ctx or task_ctx) else None,
    }
    return ContextCarrier(fn, snapshot)


_carried_stores: dict[str, Any] = {}
_carried_lock = threading.Lock()


def _store_for(url: str | None) -> Any:
    """The store a carried context records into in this process (one per URL; opened on
    first use). A ``memory://`` store cannot be reached from here: a new one stands in."""
    if url is None or url.startswith("memory://"):
        url = "memory://"
    with _carried_lock:
        store = _carried_stores.get(url)
        if store is None:
            from wfkit.stores import open_store_at  # (lazy: as in Runtime.store)

            store = _carried_stores[url] = open_store_at(url)
    return store


@contextmanager
def _hydrated(snapshot: dict[str, Any]) -> Iterator[None]:
    """The run context described by ``snapshot``, in this (other) process."""
    if snapshot["flow_run"] is None and snapshot["task_run"] is None:
        yield
        return
    with use_runtime(store=_store_for(snapshot["store_url"])) as rt:
        flow = snapshot["flow_run"]
        task = snapshot["task_run"]
        flow_ctx = FlowRunContext(None, RunInfo(flow), snapshot["flow_log_prints"], rt)
        task_ctx = TaskRunContext(None, RunInfo(task), snapshot["task_log_prints"], rt)
        tokens = (
            flow_run_context.set(flow_ctx if flow is not None else None),
            task_run_context.set(task_ctx if task is not None else None),
            _tags.set(tuple(snapshot["tags"])),
        )
        try:
            yield
        finally:
            _tags.reset(tokens[2])
            task_run_context.reset(tokens[1])
            flow_run_context.reset(tokens[0])
