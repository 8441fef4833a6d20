"""The test harness: an isolated run store and a fake clock for everything run inside it,
plus ways to find runs and assert on what happened.

Works with or without pytest::

    from wfkit.testing import harness

    with harness(start="2026-01-01T00:00:00Z") as h:
        my_flow()
        h.assert_states(my_task, ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"])
        assert h.clock.elapsed == 60
"""

from __future__ import annotations

import importlib
import inspect
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from wfkit.clock import FakeClock
from wfkit.context import use_runtime
from wfkit.exceptions import ConfigurationError
from wfkit.states import Crashed, State
from wfkit.testing.assertions import assert_state_history

if TYPE_CHECKING:
    from datetime import datetime

    from wfkit.stores import RunStore

# The pytest plugin imports this module in every pytest session (which has already loaded
# pathlib and tempfile): what only entering a harness needs (the sleep patches, which import
# asyncio; freezegun; the stores) is imported on entry.

__all__ = ["Harness", "harness", "warm_up", "wfkit_test_harness"]

_active: ContextVar[Harness | None] = ContextVar("wfkit_active_harness", default=None)
STORE_KINDS = ("memory", "sqlite")


class Harness:
    """An isolated store and fake clock, and the questions a test asks of them.

    Attributes:
        clock: the :class:`~wfkit.clock.FakeClock` every run inside uses.
        store: the isolated run store.
        store_path: the SQLite file, for ``store="sqlite"``; else None.
    """

    def __init__(
        self,
        clock: FakeClock,
        store: RunStore,
        store_path: Path | None = None,
        *,
        background: bool = False,
    ) -> None:
        self.clock = clock
        self.store = store
        self.store_path = store_path
        # What a process-pool worker enters around a run of this harness: the virtual
        # sleeps (a module-level function, so it pickles by name; see HarnessLike).
        self.worker_setup = _patching().virtual_sleeps
        # A background harness (pytest --wf-isolated, not handed to the test) may be shadowed
        # by a harness() the test opens; one handed out (claimed) may not.
        self._background = background

    def claim(self) -> None:
        """Mark this harness as handed to a test: opening another inside it is an error."""
        self._background = False

    # finding runs ----------------------------------------------------------------------
    def flow_runs(self, flow: Any = None) -> list[Any]:
        """Flow runs, oldest first; ``flow`` is a Flow or a flow name."""
        return self.store.flow_runs(flow_name=_name_of(flow))

    def task_runs(self, task: Any = None, *, flow_run: Any = None) -> list[Any]:
        """Task runs in creation order; ``task`` is a Task or task name, ``flow_run`` a
        FlowRun record or id."""
        flow_run_id = getattr(flow_run, "id", flow_run)
        return self.store.task_runs(flow_run_id=flow_run_id, task_name=_name_of(task))

    def flow_run(self, flow: Any = None) -> Any:
        """The one flow run (of ``flow``); AssertionError listing what exists otherwise."""
        __tracebackhide__ = True
        return _exactly_one("flow", flow, self.flow_runs(flow), self.flow_runs())

    def task_run(self, task: Any = None) -> Any:
        """The one task run (of ``task``); AssertionError listing what exists otherwise."""
        __tracebackhide__ = True
        return _exactly_one("task", task, self.task_runs(task), self.task_runs())

    def logs(self, run: Any = None) -> list[Any]:
        """Log records, of one run (a record or id) or of all runs."""
        return self.store.logs(run_id=getattr(run, "id", run))

    def artifacts(self, run: Any = None, *, key: str | None = None) -> list[Any]:
        """Artifacts (:class:`~wfkit.stores.ArtifactRecord`) in creation order: of one run (a
        record, id, Flow or Task: a flow run's include its task runs'), of one ``key``'s
        versions, or all."""
        if run is not None and not isinstance(run, str):
            run = getattr(run, "id", None) or self._resolve(run).id
        return self.store.artifacts(key=key, run_id=run)

    # running ---------------------------------------------------------------------------
    def run(self, flow: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``flow`` (sync or async) and return its FlowRun record; never raises the
        flow's own error (it is on the record's state)."""
        before = {r.id for r in self.store.flow_runs(flow_name=flow.name)}
        outcome = flow(*args, return_state=True, **kwargs)
        if inspect.isawaitable(outcome):
            import asyncio  # (lazy: ~10 ms of every pytest session; entering loaded it)

            asyncio.run(_awaited(outcome))
        new = [
            r
            for r in self.store.flow_runs(flow_name=flow.name)
            if r.id not in before and r.parent_flow_run_id is None
        ]
        if len(new) != 1:
            raise AssertionError(
                f"h.run({flow!r}) expected one new top-level run, found {len(new)}"
            )
        return new[0]

    # crashes ---------------------------------------------------------------------------
    def simulate_crash(self, *runs: Any) -> list[Any]:
        """Record runs ``Crashed`` as a reader does when the process running them was
        killed: for testing code that finds and handles crashed runs.

        With no arguments, every run that is not final is crashed; otherwise the given flow
        runs (records or ids) and the runs inside them that are not final. Each gets a
        ``Crashed`` state at the fake clock's time, with the message a dead process's runs
        get (naming its host and pid). Call it while runs are live: from a task's body, from
        a hook, or from the test while a flow waits in another thread. The code that goes on
        running in this process is not stopped, but what it records afterwards about those
        runs is dropped, as the store drops a dead process's late records.

        Returns the crashed run records, flow runs first.
        """
        # (lazy: ~8 ms of every pytest session; a harness's entry loads the stores anyway)
        from wfkit.stores import FlowRunSnapshot, TaskRunSnapshot
        from wfkit.stores._base import owner_gone_message

        wanted = {getattr(run, "id", run) for run in runs}
        flows = [
            r
            for r in self.store.flow_runs()
            if not runs or r.id in wanted or r.root_flow_run_id in wanted
        ]
        flow_ids = {r.id for r in flows}
        tasks = [r for r in self.store.task_runs() if not runs or r.flow_run_id in flow_ids]
        now = self.clock.now()
        crashed = []
        for record in [*flows, *tasks]:
            if record.state.is_final():
                continue
            message = owner_gone_message(record.host, record.pid, "no longer exists", now)
            state = Crashed(timestamp=now, message=message)
            if hasattr(record, "task_name"):
                self.store.record_task_run(_snapshot(TaskRunSnapshot, record, state))
            else:
                self.store.record_flow_run(_snapshot(FlowRunSnapshot, record, state))
            crashed.append(record.id)
        self.store.flush()  # written before anything the "dead" process records next
        by_id = {r.id: r for r in [*self.store.flow_runs(), *self.store.task_runs()]}
        return [by_id[run_id] for run_id in crashed]

    # asserting -------------------------------------------------------------------------
    def assert_states(self, run_or_target: Any, expected: Sequence[str]) -> None:
        """Assert the state history (names) of a run: a FlowRun/TaskRun record, or a
        Flow/Task/name that has exactly one run."""
        __tracebackhide__ = True
        assert_state_history(self._resolve(run_or_target), expected)

    def cache_hits(self, task: Any = None) -> int:
        """How many task runs (of ``task``) ended ``Cached``."""
        return sum(1 for r in self.task_runs(task) if r.state.name == "Cached")

    def cache_misses(self, task: Any = None) -> int:
        """How many task runs (of ``task``) had a cache key but ran their body."""
        return sum(
            1 for r in self.task_runs(task) if r.cache_key is not None and r.state.name != "Cached"
        )

    def assert_cache_hits(self, task: Any, n: int) -> None:
        """Assert that ``task`` had exactly ``n`` cache hits."""
        __tracebackhide__ = True
        hits = self.cache_hits(task)
        if hits != n:
            runs = [f"  {r.name}: {' -> '.join(r.state_names)}" for r in self.task_runs(task)]
            raise AssertionError(
                f"expected {n} cache hit(s) for task {_name_of(task)!r}, got {hits}. Its runs:\n"
                + ("\n".join(runs) or "  (none)")
            )

    def _resolve(self, target: Any) -> Any:
        __tracebackhide__ = True
        if hasattr(target, "state_names") and hasattr(target, "id"):
            if hasattr(target, "task_name"):
                return next(r for r in self.store.task_runs() if r.id == target.id)
            return self.store.flow_run(target.id)
        kind = getattr(target, "kind", None)
        if kind == "flow":
            return self.flow_run(target)
        if kind == "task":
            return self.task_run(target)
        if isinstance(target, str):
            flows, tasks = self.flow_runs(target), self.task_runs(target)
            matches = flows + tasks
            if len(matches) == 1:
                return matches[0]
            return _exactly_one(
                "flow or task", target, matches, self.flow_runs() + self.task_runs()
            )
        raise TypeError(
            f"assert_states() takes a run record, a Flow, a Task or a name; got {target!r}."
        )

    def __repr__(self) -> str:
        return f"Harness(clock={self.clock!r}, store={self.store!r})"


def _snapshot(snapshot_type: Any, record: Any, state: State) -> Any:
    """A snapshot of type ``snapshot_type`` of the run ``record`` entering ``state``."""
    fields = {name: getattr(record, name, None) for name in snapshot_type._fields}
    return snapshot_type(**{**fields, "state": state})


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _name_of(target: Any) -> str | None:
    if target is None or isinstance(target, str):
        return target
    name = getattr(target, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"expected a Flow, a Task or a name; got {target!r}")
    return name


def _describe(run: Any) -> str:
    label = getattr(run, "task_name", None) or getattr(run, "flow_name", "?")
    return f"  {run.name!r} ({label}, id={run.id}): {' -> '.join(run.state_names)}"


def _exactly_one(kind: str, target: Any, matches: list[Any], everything: list[Any]) -> Any:
    __tracebackhide__ = True
    if len(matches) == 1:
        return matches[0]
    wanted = f"{kind} {_name_of(target)!r}" if target is not None else kind
    listing = "\n".join(_describe(r) for r in everything) or "  (no runs recorded)"
    if not matches:
        raise AssertionError(f"no {wanted} run was recorded. Runs recorded:\n{listing}")
    raise AssertionError(
        f"{len(matches)} {wanted} runs were recorded, expected exactly one; pick one from "
        f"h.flow_runs()/h.task_runs() and pass the record instead. Matching runs:\n"
        + "\n".join(_describe(r) for r in matches)
    )


def _open_isolated_store(
    store: str | RunStore, directory: Path | None
) -> tuple[RunStore, Path | None, tempfile.TemporaryDirectory[str] | None]:
    """Return (store, sqlite path, temporary directory to remove on exit)."""
    if not isinstance(store, str):
        return store, None, None
    if store == "memory":
        from wfkit.stores.memory import MemoryStore  # (lazy: ~8 ms of every pytest session)

        return MemoryStore(), None, None
    if store == "sqlite":
        from wfkit.stores.sqlite import SqliteStore  # (lazy: ~24 ms of every pytest session)

        temp = None
        if directory is None:
            temp = tempfile.TemporaryDirectory(prefix="wfkit-harness-", ignore_cleanup_errors=True)
            directory = Path(temp.name)
        path = directory / "wfkit.db"
        return SqliteStore(path), path, temp
    raise ConfigurationError(
        f"store={store!r} is not a harness store kind; use one of {list(STORE_KINDS)} "
        "(or pass a RunStore object)."
    )


@contextmanager
def harness(
    start: datetime | str | None = None,
    store: str | RunStore = "memory",
    freeze: bool = True,
    *,
    directory: Path | None = None,
    background: bool = False,
) -> Iterator[Harness]:
    """Install an isolated store and a fake clock for everything run inside the block.

    Args:
        start: the fake clock's start (datetime or ISO string; default: now).
        store: ``"memory"`` (default), ``"sqlite"`` (a fresh file) or a RunStore.
        freeze: also freeze wall time with freezegun (``datetime.now()``, ``time.time()``,
            ``date.today()`` return the virtual time).
        directory: where the SQLite file goes (default: a temporary directory, removed on
            exit).
        background: for the pytest plugin's per-test isolation: a harness that a test
            which did not ask for it may shadow with its own ``harness()``.

    Inside runs, ``time.sleep`` and ``asyncio.sleep`` advance the fake clock instead of
    waiting. Everything is restored on exit.

    Raises:
        RuntimeError: a harness is already active in this context (harnesses do not nest).
    """
    outer = _active.get()
    if outer is not None and not outer._background:
        raise RuntimeError(
            f"a wfkit harness is already active here ({outer!r}); harnesses do not nest. "
            "Use the active one (the wf_harness fixture, or the object the outer "
            "harness() returned) instead of opening another."
        )
    patching = _patching()
    clock = FakeClock(start)
    run_store, path, temp = _open_isolated_store(store, directory)
    h = Harness(clock, run_store, path, background=background)
    token = _active.set(h)
    try:
        with ExitStack() as stack:
            stack.enter_context(use_runtime(clock=clock, store=run_store, harness=h))
            stack.enter_context(patching.virtual_sleeps())
            if freeze:
                stack.enter_context(patching.frozen_wall_time(clock))
            yield h
    finally:
        _active.reset(token)
        run_store.close()
        if temp is not None:
            temp.cleanup()


def _patching() -> ModuleType:
    """:mod:`wfkit.testing._patching`: the sleep and wall-time patches."""
    # (lazy: ~23 ms, mostly asyncio, of every pytest session; only entering a harness needs it)
    import wfkit.testing._patching as patching

    return patching


def warm_up(freeze: bool = True) -> None:
    """Load now what the first harness of a process would load on entry: the engine's
    modules, the sleep patches (which import asyncio) and, with ``freeze``, freezegun and its
    cache of the loaded modules' time attributes.

    The pytest plugin calls this once a session has collected tests that use a harness, so
    that the first such test's duration is the test's own: the cost (tens of milliseconds)
    moves to collection, it does not go away.
    """
    for name in _FIRST_USE_MODULES:
        importlib.import_module(name)
    if freeze:
        _patching().warm_up_freezing()


# What the first harness and the first run in it import (the sleep patches import asyncio).
_FIRST_USE_MODULES = (
    "wfkit._engine.calls",
    "wfkit.stores.memory",
    "wfkit.stores.records",
    "wfkit.testing.assertions",
    "wfkit.testing._patching",
)


def wfkit_test_harness(
    start: datetime | str | None = None, store: str | RunStore = "memory", freeze: bool = True
) -> Any:
    """:func:`harness` under the name Prefect users know (``prefect_test_harness``)."""
    return harness(start=start, store=store, freeze=freeze)
