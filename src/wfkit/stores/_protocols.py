"""What a run store is: three small protocols, and their union.

- :class:`RunRecorder`: what the engine writes (runs, their state changes, log lines);
- :class:`RunReader`: what the test harness, the CLI, the UI and scripts read back;
- :class:`CacheStore`: cached task results, written through and read by key;
- :class:`LimitStore`: concurrency limits and the slots taken on them;
- :class:`ArtifactStore`: artifacts created in runs;
- :class:`EventStore`: events emitted in runs (asset materializations among them);
- :class:`RunStore`: all six; what :func:`wfkit.stores.open_store` returns;
- :class:`CacheLockStore` (optional, not part of :class:`RunStore`): SERIALIZABLE cache locks
  that hold across the processes (and hosts) sharing the store (each a :class:`CacheLock`).

The engine depends only on the recorder and the cache store. A store is any object with these
members (the protocols are structural, nothing needs subclassing); ``isinstance(obj,
RunStore)`` checks that the members are there, and :func:`missing_members` names those that
are not. ``wfkit.testing.store_conformance`` checks that they behave.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wfkit.stores._artifact_records import ArtifactRecord
from wfkit.stores._base import CacheRecord, FlowRunSnapshot, LogEntry, TaskRunSnapshot
from wfkit.stores._event_records import EventRecord
from wfkit.stores._limits import ConcurrencyLimit, SlotGrant

if TYPE_CHECKING:
    from wfkit.stores.records import (
        FlowRun,
        LogPage,
        LogRecord,
        PruneResult,
        StoreSummary,
        TaskRun,
        TaskRunGroup,
    )

__all__ = [
    "ArtifactStore",
    "CacheLock",
    "CacheLockStore",
    "CacheStore",
    "EventStore",
    "LimitStore",
    "RunReader",
    "RunRecorder",
    "RunStore",
    "missing_members",
]


@runtime_checkable
class RunRecorder(Protocol):
    """Where the engine records runs, their state histories and their logs.

    Each ``record_*_run`` call upserts the run from the snapshot and appends
    ``snapshot.state`` to the run's history; histories keep the order of the calls, also
    across threads. A recorder may buffer writes, but what it buffered is readable through
    the same store's reading methods and durable after :meth:`flush`.

    A run whose recorded state is ``Crashed`` stays so: a later record of it (written after
    the ``Crashed`` one, for a buffering store) whose state is not ``Crashed`` is ignored. A
    run is recorded ``Crashed`` when its process was judged dead or was signalled; if that
    process goes on recording, what it says is no longer the run's story. Recording is called on
    the engine's hot path (three state changes per task run): keep it cheap and never block
    on I/O there if you can buffer instead.
    """

    url: str
    """The URL the store was opened with (shown in messages; ``open_store(url)`` opens it)."""

    def record_flow_run(self, run: FlowRunSnapshot) -> None:
        """Upsert the flow run ``run`` describes and append ``run.state`` to its history.

        The first call for an id creates the run (its creation position orders
        ``task_runs()``); later calls replace its fields with the snapshot's.
        """
        ...

    def record_task_run(self, run: TaskRunSnapshot) -> None:
        """Upsert the task run ``run`` describes and append ``run.state`` to its history."""
        ...

    def record_log(self, entry: LogEntry) -> None:
        """Append one log line emitted inside a run."""
        ...

    def flush(self) -> None:
        """Make everything recorded so far durable (called when a top-level run ends)."""
        ...

    def close(self) -> None:
        """Flush and release what the store holds; closing twice does nothing."""
        ...


@runtime_checkable
class RunReader(Protocol):
    """What can be read back from a store: records of :mod:`wfkit.stores.records`.

    Reads see everything recorded before them through the same store object (a store that
    buffers flushes first). Records are new, immutable values on every read.
    """

    url: str
    """The URL the store was opened with."""

    def flow_runs(
        self,
        flow_name: str | None = None,
        state: str | None = None,
        tags: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[FlowRun]:
        """Flow runs in start order, filtered by every argument given.

        A run's start is its first ``Running`` state's time, or its first state's time if it
        never ran; runs with no timestamp come first. Runs that start together keep the
        order they were created in.

        Args:
            flow_name: only runs of this flow.
            state: only runs whose current state has this name or type
                (case-insensitively): ``"TimedOut"``, ``"failed"``.
            tags: only runs carrying all of these tags.
            since: only runs that started at or after this moment (naive: UTC).
            until: only runs that started before this moment (naive: UTC).
            limit: keep only the most recent N of the matching runs (still in start order).

        Raises:
            ConfigurationError: an argument has the wrong type, or ``limit`` is negative.
        """
        ...

    def flow_run_counts(
        self,
        flow_name: str | None = None,
        tags: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, int]:
        """How many flow runs are in each state, by state name, among those
        :meth:`flow_runs` would return for the same filters (``{"Completed": 9,
        "Failed": 1}``; states with no run are left out). What the web page shows above a
        page of runs: served by the same indexes as :meth:`flow_runs` when a filter is given.

        Raises:
            ConfigurationError: an argument has the wrong type.
        """
        ...

    def flow_run(self, run_id: str) -> FlowRun:
        """One flow run by id.

        Raises:
            StoreError: there is no flow run with that id (the message names it).
        """
        ...

    def task_runs(
        self, flow_run_id: str | None = None, task_name: str | None = None
    ) -> list[TaskRun]:
        """Task runs in creation order, optionally only those of one flow run and/or task."""
        ...

    def logs(self, run_id: str | None = None) -> list[LogRecord]:
        """Log records in the order they were recorded; ``run_id`` keeps those of one flow
        run (including its task runs' lines) or one task run."""
        ...

    # Walking every run of a store a page at a time, so that memory stays bounded however
    # many runs it holds (``wf store copy``).
    def flow_runs_page(self, after: str | None = None, limit: int = 100) -> list[FlowRun]:
        """Up to ``limit`` flow runs in creation order: from the first, or (``after``) from
        the first created after the flow run with that id; ``[]`` past the last, and for
        an ``after`` the store does not hold. Pass the last id of a page to get the next.

        Raises:
            ConfigurationError: ``limit`` is negative or not a whole number.
        """
        ...

    def task_runs_page(self, after: str | None = None, limit: int = 100) -> list[TaskRun]:
        """Up to ``limit`` task runs in creation order (of every flow run, and those run
        outside a flow), as :meth:`flow_runs_page` pages flow runs."""
        ...

    # What ``wf`` and the web page read; each is served by an index, never a scan of every
    # run (the SQLite figures are in benchmarks/cli.py).
    def find_flow_runs(self, ref: str, limit: int = 10) -> list[FlowRun]:
        """Flow runs ``ref`` may mean: the run with that id, runs whose id starts with it,
        runs with that name; at most ``limit`` of them, the exact id first, then in start
        order. The caller decides what an ambiguous ``ref`` means."""
        ...

    def flow_runs_in_tree(self, root_flow_run_id: str) -> list[FlowRun]:
        """Every flow run whose root flow run is ``root_flow_run_id`` (that run and all its
        nested child flow runs), in start order; ``[]`` if there is none."""
        ...

    def task_run_counts(self, flow_run_ids: Collection[str]) -> dict[str, dict[str, int]]:
        """For each given flow run id that has task runs: how many are in each state, by
        state name (``{"run-1": {"Completed": 9, "Failed": 1}}``). Ids with no task runs
        are left out.

        Raises:
            ConfigurationError: ``flow_run_ids`` is a string, not a collection of ids.
        """
        ...

    def task_run_groups(self, flow_run_id: str) -> list[TaskRunGroup]:
        """The task runs of one flow run summarised per task name, in the order each task
        first ran: a view of a run too large to list run by run."""
        ...

    def logs_after(
        self,
        run_id: str | None = None,
        *,
        after: int = 0,
        min_level: int = 0,
        task_name: str | None = None,
        last: int | None = None,
    ) -> LogPage:
        """Log records recorded after the cursor ``after`` (0: from the first), in order.

        Args:
            run_id: only the lines of this flow run (with its task runs') or task run.
            after: a cursor from an earlier :class:`~wfkit.stores.records.LogPage`.
            min_level: only lines at this level or above (``logging.WARNING``...).
            task_name: only lines of task runs of this task, or of the task run so named.
            last: keep only the most recent N matching lines.

        Returns:
            The lines, and a cursor past every line recorded before this read (matching or
            not): pass it as ``after`` to read only newer lines (``wf runs logs --follow``).

        Raises:
            ConfigurationError: ``last`` is negative or not a whole number.
        """
        ...

    def summary(self) -> StoreSummary:
        """What the store holds: runs by state, log and cache counts, live owners."""
        ...

    def check(self) -> list[str]:
        """Problems with the stored data, each a sentence (``[]``: none): the storage's
        own integrity check where it has one, a run without a state history or a current
        state, states whose run is gone."""
        ...

    def prune_runs(
        self,
        before: datetime,
        states: Collection[str] | None = None,
        *,
        dry_run: bool = False,
        batch_size: int = 200,
    ) -> PruneResult:
        """Delete finished top-level flow runs that reached their final state before
        ``before``, each with its child flow runs, task runs, states and logs; the one
        method of this protocol that writes (a store opened read-only refuses it).

        Deletes ``batch_size`` top-level runs per transaction, so that recording runs in
        other processes never waits long. A run still going on is never deleted, nor is
        any run of its tree.

        Args:
            before: the cut-off (naive: UTC).
            states: only runs whose final state has one of these names or types.
            dry_run: count what would be deleted, delete nothing.
            batch_size: top-level runs per transaction.

        Raises:
            ConfigurationError: ``before`` is not a datetime, ``states`` not a collection
                of names, or ``batch_size`` < 1.
            StoreError: the store cannot be written.
        """
        ...


@runtime_checkable
class CacheStore(Protocol):
    """Cached task results (:class:`~wfkit.stores.CacheRecord`), one per cache key.

    Records are written through at once, never buffered, so that other processes using the
    store see them. The store never judges expiry itself (the engine does, on its clock),
    except in :meth:`prune_cache`, which is given the time. Naive times are read as UTC.

    The store keeps values as opaque bytes and trusts none of them: the engine signs each
    value it writes with :meth:`cache_secret` (an HMAC-SHA256 over the key, the serializer and
    the payload, put before the payload) and checks it before deserializing anything, so a
    record changed, forged or copied from another store is a miss. The store only has to keep
    its secret where those who can write its records cannot read it.
    """

    def cache_secret(self) -> bytes:
        """The secret key (at least 32 random bytes) that authenticates this store's cache
        records; the same for every process and every call while the records last, and
        unknown to other stores.

        Raises:
            StoreError: the secret cannot be read or made (the engine then caches nothing).
        """
        ...

    def write_cache(
        self,
        key: str,
        value: bytes,
        serializer: str,
        expires_at: datetime | None,
        task_name: str | None,
        created_at: datetime,
    ) -> None:
        """Store ``value`` under ``key``, replacing any record with that key.

        Raises:
            TypeError: ``value`` is not bytes-like (a bytes-like value is stored as bytes).
        """
        ...

    def read_cache(self, key: str) -> CacheRecord | None:
        """The record stored under ``key``, expired or not; None if there is none."""
        ...

    def cache_records(self) -> list[CacheRecord]:
        """Every cache record, oldest first (by ``created_at``, then key)."""
        ...

    def cache_keys(self) -> list[str]:
        """The keys of :meth:`cache_records`, in the same order, without their values
        (which may be large): read each with :meth:`read_cache`."""
        ...

    def delete_cache(self, key: str) -> bool:
        """Delete the record under ``key``; whether there was one."""
        ...

    def prune_cache(self, now: datetime) -> int:
        """Delete the records whose ``expires_at`` is at or before ``now``; how many.

        Raises:
            TypeError: ``now`` is not a datetime.
        """
        ...


class CacheLock(Protocol):
    """A lock on one cache key that holds across the processes sharing a store; one object
    per task run that asks for it (see :class:`CacheLockStore`)."""

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock: wait for it (``blocking``), or return False at once if another
        process holds it. True once it is held.

        Raises:
            StoreError: the store cannot be reached (the engine then warns and holds only its
                in-process lock: the task may then run once per process).
        """
        ...

    def release(self) -> None:
        """Give the lock back (nothing if it is not held); never raises."""
        ...


@runtime_checkable
class CacheLockStore(Protocol):
    """Optional: a store whose ``isolation_level="SERIALIZABLE"`` cache locks hold across
    processes and hosts, so that identical misses anywhere compute once.

    Without it, the engine's lock holds within one process. With it, the engine still takes
    its in-process lock first (threads of one process queue there), then this one. A lock
    held by a process that dies must be freed without that process (PostgreSQL ends its
    session, the operating system its file lock), or the key is blocked for good.
    """

    def cache_lock(self, key: str) -> CacheLock:
        """A new, unheld lock on ``key``, for one task run (cheap: no I/O before
        :meth:`CacheLock.acquire`). Two keys may share a lock (a hash of the key): that
        only serializes their misses."""
        ...


@runtime_checkable
class LimitStore(Protocol):
    """Concurrency limits (:class:`~wfkit.stores.ConcurrencyLimit`) and the slots taken on
    them, shared by every thread and process using the store (see :mod:`wfkit.stores._limits`
    for what occupies a slot).

    Taking slots is atomic: on every existing limit named, or on none. Times are epoch
    seconds on the caller's clock. A store shared by processes ties each lease to the process
    that took it and frees the leases of a process that is gone.
    """

    def create_limit(
        self, name: str, limit: int, slot_decay_per_second: float = 0.0
    ) -> ConcurrencyLimit:
        """Create the limit ``name``, or change the size and decay of an existing one (its
        holders keep their slots); the limit as it is now.

        Raises:
            ConfigurationError: a bad name, limit or decay (the message names it).
        """
        ...

    def read_limit(self, name: str) -> ConcurrencyLimit | None:
        """The limit ``name``; None if there is none."""
        ...

    def concurrency_limits(self) -> list[ConcurrencyLimit]:
        """Every limit, sorted by name."""
        ...

    def delete_limit(self, name: str) -> bool:
        """Delete the limit ``name`` and its leases; whether there was one."""
        ...

    def acquire_slots(
        self, names: Sequence[str], occupy: int, now: float, holder: str, lease: bool
    ) -> SlotGrant:
        """Take ``occupy`` slots on every existing limit in ``names`` at time ``now``, or
        none if one has no room; with ``lease``, as a lease for ``holder`` to give back,
        otherwise as draining slots (``rate_limit``). Names with no limit are reported in
        ``missing`` and take nothing."""
        ...

    def release_slots(self, lease_id: str, now: float) -> None:
        """Give back the slots of a lease at time ``now``; nothing if it is gone."""
        ...


@runtime_checkable
class ArtifactStore(Protocol):
    """Artifacts (:class:`~wfkit.stores.ArtifactRecord`) created in runs or outside them,
    written through at once. Several may share a key: the latest is the key's current
    version."""

    def record_artifact(self, artifact: ArtifactRecord) -> None:
        """Keep ``artifact``; one with the same id is replaced (progress updates), keeping
        its place in creation order."""
        ...

    def artifacts(self, key: str | None = None, run_id: str | None = None) -> list[ArtifactRecord]:
        """Artifacts in creation order; ``key`` keeps the versions of one key, ``run_id``
        those created in one flow run (its task runs' too) or one task run."""
        ...

    def artifact(self, artifact_id: str) -> ArtifactRecord | None:
        """The artifact with this id; None if there is none."""
        ...


@runtime_checkable
class EventStore(Protocol):
    """Events (:class:`~wfkit.stores.EventRecord`), written through at once; asset
    materializations are events named ``prefect.asset.materialization.*``."""

    def record_event(self, event: EventRecord) -> None:
        """Keep ``event`` (after every event recorded before it)."""
        ...

    def events(
        self, event: str | None = None, run_id: str | None = None, resource_id: str | None = None
    ) -> list[EventRecord]:
        """Events in the order they were recorded: of one name (``"prefix.*"`` matches every
        name starting with ``prefix.``), of one flow run (its task runs' too) or task run,
        about one resource (``resource["prefect.resource.id"]``)."""
        ...


@runtime_checkable
class RunStore(RunRecorder, RunReader, CacheStore, LimitStore, ArtifactStore, EventStore, Protocol):
    """A whole run store: a :class:`RunRecorder`, a :class:`RunReader`, a
    :class:`CacheStore`, a :class:`LimitStore`, an :class:`ArtifactStore` and an
    :class:`EventStore` in one object, as ``open_store(url)`` returns it."""


def missing_members(obj: object, protocol: type) -> list[str]:
    """The members of ``protocol`` (one of the classes above) that ``obj`` lacks, sorted;
    a method counts as missing if ``obj`` has something by that name that is not callable."""
    missing = []
    for name in sorted(_members(protocol)):
        value = getattr(obj, name, _ABSENT)
        if value is _ABSENT or (name in _METHODS and not callable(value)):
            missing.append(name)
    return missing


_ABSENT = object()


def _members(protocol: type) -> set[str]:
    """The public names a protocol class declares, with those of the protocols it extends."""
    return {
        name
        for cls in protocol.__mro__
        if cls in _PROTOCOLS
        for name in (*vars(cls), *vars(cls).get("__annotations__", {}))
        if not name.startswith("_")
    }


_PROTOCOLS = (
    RunRecorder,
    RunReader,
    CacheStore,
    LimitStore,
    ArtifactStore,
    EventStore,
    RunStore,
)
_METHODS = frozenset(
    name for cls in _PROTOCOLS for name, value in vars(cls).items() if callable(value)
)
