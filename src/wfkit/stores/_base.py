"""The run store protocol and the snapshots the engine hands to it.

The engine never talks to a store directly: it emits state changes and log entries through
the plugin hooks (:mod:`wfkit.hookspecs`), and the built-in store-writer plugin passes them to
the current store's ``record_*`` methods. Snapshots are immutable named tuples so that hooks
can keep them, and so that building one per state change stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from wfkit.states import _RUNNING, State, StateType  # (_RUNNING: see wfkit.states)

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun

__all__ = [
    "CacheRecord",
    "FlowRunSnapshot",
    "LogEntry",
    "RunStore",
    "STATE_TYPE_VALUES",
    "TaskRunSnapshot",
    "aware",
    "cache_value",
    "check_limit",
    "run_times",
    "state_matches",
]


class FlowRunSnapshot(NamedTuple):
    """A flow run as it is at one state change; ``state`` is the state it just entered."""

    id: str
    name: str
    flow_name: str
    flow_version: str | None
    parameters: Mapping[str, Any]
    tags: tuple[str, ...]
    parent_flow_run_id: str | None
    parent_task_run_id: str | None
    root_flow_run_id: str
    run_count: int
    state: State
    host: str
    pid: int


class TaskRunSnapshot(NamedTuple):
    """A task run as it is at one state change; ``state`` is the state it just entered."""

    id: str
    name: str
    task_name: str
    flow_run_id: str | None
    parameters: Mapping[str, Any]
    tags: tuple[str, ...]
    cache_key: str | None
    upstream_ids: tuple[str, ...]
    run_count: int
    state: State
    host: str
    pid: int


class LogEntry(NamedTuple):
    """One log line emitted inside a run."""

    flow_run_id: str | None
    task_run_id: str | None
    level: int
    logger: str
    message: str
    timestamp: datetime


class CacheRecord(NamedTuple):
    """One cached task result: the serialized value stored under a cache key.

    Attributes:
        key: the cache key (see :mod:`wfkit.cache_policies`).
        value: the serialized result.
        serializer: the name of the serializer that wrote ``value`` (``"pickle"``, ``"json"``).
        expires_at: when the record stops being restorable; None: never.
        task_name: the task that wrote it, for listings.
        created_at: when it was written (on the engine's clock).
    """

    key: str
    value: bytes
    serializer: str
    expires_at: datetime | None
    task_name: str | None
    created_at: datetime


@runtime_checkable
class RunStore(Protocol):
    """Where runs, their state histories and their logs are recorded.

    Writing: each ``record_*_run`` call upserts the run from the snapshot and appends
    ``snapshot.state`` to the run's history; histories keep the order of the calls. A store
    may buffer writes, but everything recorded is readable through the reading methods
    (which flush first) and durable after :meth:`flush`.

    Reading returns the record types of :mod:`wfkit.stores.records`.

    Cache records (:class:`CacheRecord`) are written through at once, not buffered, so that
    other processes using the store see them; the store never judges expiry by itself, except
    in :meth:`prune_cache`, which is given the time.
    """

    url: str

    def record_flow_run(self, run: FlowRunSnapshot) -> None: ...

    def record_task_run(self, run: TaskRunSnapshot) -> None: ...

    def record_log(self, entry: LogEntry) -> None: ...

    def flush(self) -> None:
        """Make everything recorded so far durable."""
        ...

    def close(self) -> None: ...

    def flow_runs(
        self, flow_name: str | None = None, state: str | None = None, limit: int | None = None
    ) -> list[FlowRun]:
        """Flow runs in start order, optionally filtered by flow name and state name or type;
        ``limit`` keeps the most recent N."""
        ...

    def flow_run(self, run_id: str) -> FlowRun:
        """One flow run by id; ``StoreError`` if there is none."""
        ...

    def task_runs(
        self, flow_run_id: str | None = None, task_name: str | None = None
    ) -> list[TaskRun]:
        """Task runs in creation order, optionally filtered."""
        ...

    def logs(self, run_id: str | None = None) -> list[LogRecord]:
        """Log records in order; ``run_id`` matches a flow run or a task run id."""
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
        """Store ``value`` under ``key``, replacing any record with that key."""
        ...

    def read_cache(self, key: str) -> CacheRecord | None:
        """The record stored under ``key``, expired or not; None if there is none."""
        ...

    def cache_records(self) -> list[CacheRecord]:
        """Every cache record, oldest first (by ``created_at``, then key)."""
        ...

    def delete_cache(self, key: str) -> bool:
        """Delete the record under ``key``; whether there was one."""
        ...

    def prune_cache(self, now: datetime) -> int:
        """Delete the records whose ``expires_at`` is at or before ``now``; how many."""
        ...


def check_limit(limit: int | None) -> int | None:
    """Validate a ``limit`` argument: None (no limit) or a whole number >= 0."""
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        from wfkit.exceptions import ConfigurationError

        raise ConfigurationError(
            f"limit={limit!r} is invalid: pass None for all runs, or a whole number >= 0 "
            "for the most recent N."
        )
    return limit


def cache_value(value: bytes, key: str) -> bytes:
    """``value`` as bytes, for a cache record; a bytes-like value is copied, others refused.

    Raises:
        TypeError: ``value`` is not bytes-like.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(
        f"The value of cache record {key!r} must be bytes (a serialized result), got "
        f"{type(value).__qualname__}; serialize it first."
    )


def aware(moment: datetime) -> datetime:
    """``moment`` with a timezone: a naive time is read as UTC, as the SQLite store does.

    Raises:
        TypeError: ``moment`` is not a datetime.
    """
    if not isinstance(moment, datetime):
        raise TypeError(f"Expected a datetime, got {moment!r}.")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# A state type's value, by type: what stores write. (``type.value`` runs the enum's Python
# property, and ``str(type)`` makes a new string: stores write three per task run.)
STATE_TYPE_VALUES: dict[StateType, str] = {t: t.value for t in StateType}


def state_matches(state: State, wanted: str | None) -> bool:
    """Whether ``state`` matches a filter given as a state name or type, case-insensitively."""
    if wanted is None:
        return True
    w = wanted.casefold()
    return state.name.casefold() == w or state.type.value.casefold() == w


def run_times(states: Sequence[State]) -> tuple[datetime | None, datetime | None]:
    """(start_time, end_time) of a history: first running state, and the final state."""
    start = next((s.timestamp for s in states if s.type is _RUNNING), None)
    end = states[-1].timestamp if states and states[-1].is_final() else None
    return start, end
