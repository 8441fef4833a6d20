"""``memory://``: a run store held in this process's memory (tests and throwaway runs).

This is the reference implementation of the store protocols (:mod:`wfkit.stores._protocols`),
kept plain so that it can be read to learn them:

- runs are kept in two dicts by run id, flow runs and task runs (dicts keep insertion order,
  which is the creation order ``task_runs()`` returns);
- a run going on is a :class:`_Run`: its latest snapshot and the states it entered; a run
  that reached a final state is *frozen* into one tuple of plain values (see below);
- log lines are a list, cache records a dict by key;
- one lock guards all of it, so that many threads may record and read at once;
- every read builds new records from what is kept.

Nothing is serialized: parameters, results and exceptions come back as the very objects that
were recorded. Everything is lost when the process ends.

Finished runs are frozen because of Python's cycle collector, which walks every container it
tracks on each full collection. A run going on is seven such containers (its ``_Run``, its list
of states, its snapshot, the snapshot's view of its parameters, one ``State`` per state). The
collector stops tracking a plain tuple whose items are all plain values (strings, numbers,
datetimes, None, such tuples), but never a named tuple, a tuple holding a dict or an enum
member, or an object: hence a frozen run keeps its parameters as (name, value) pairs and its
states' types as strings. In a flow of 100,000 tasks, collections cost ~8 us per task run
without freezing, ~1.5 us with it. A result or exception that is itself a container keeps its
run tracked, as it must.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from wfkit.exceptions import StoreError
from wfkit.states import State, StateType
from wfkit.stores._base import (
    CacheRecord,
    FlowRunSnapshot,
    LogEntry,
    TaskRunSnapshot,
    aware,
    cache_value,
    check_limit,
    check_moment,
    check_tags,
    run_times,
    state_matches,
)

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun

__all__ = ["MemoryStore"]

_S = TypeVar("_S", FlowRunSnapshot, TaskRunSnapshot)
_Frozen: TypeAlias = tuple[Any, ...]  # a finished run: see _frozen_common


class _Run(Generic[_S]):
    """A run going on: its latest snapshot, and every state it entered, in order."""

    __slots__ = ("snapshot", "states")
    snapshot: _S
    states: list[State]

    def __init__(self, snapshot: _S, states: list[State]) -> None:
        self.snapshot = snapshot
        self.states = states


class MemoryStore:
    """A run store in a few dicts and lists; everything is lost when the process ends.

    Args:
        url: the URL it was opened with (``memory://`` or a plugin's own scheme).
    """

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.Lock()
        self._flow_runs: dict[str, _Run[FlowRunSnapshot] | _Frozen] = {}
        self._task_runs: dict[str, _Run[TaskRunSnapshot] | _Frozen] = {}
        self._logs: list[LogEntry] = []
        self._cache: dict[str, CacheRecord] = {}
        self._secret = secrets.token_bytes(32)  # lives and dies with the records it signs

    # recording --------------------------------------------------------------------------
    def record_flow_run(self, run: FlowRunSnapshot) -> None:
        """Upsert the flow run and append the state it just entered to its history."""
        with self._lock:
            _record(self._flow_runs, run, _freeze_flow_run)

    def record_task_run(self, run: TaskRunSnapshot) -> None:
        """Upsert the task run and append the state it just entered to its history."""
        with self._lock:
            _record(self._task_runs, run, _freeze_task_run)

    def record_log(self, entry: LogEntry) -> None:
        """Append a log line."""
        with self._lock:
            self._logs.append(entry)

    def flush(self) -> None:
        """Nothing to do: memory is as durable as this store gets."""

    def close(self) -> None:
        """Nothing to release."""

    # reading ----------------------------------------------------------------------------
    def flow_runs(
        self,
        flow_name: str | None = None,
        state: str | None = None,
        tags: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[FlowRun]:
        """Flow runs in start order, filtered by every argument given (see
        :meth:`wfkit.stores.RunReader.flow_runs`); ``limit`` keeps the most recent N."""
        wanted_tags = set(check_tags(tags) or ())
        since, until = check_moment("since", since), check_moment("until", until)
        limit = check_limit(limit)
        with self._lock:
            frozen = [_frozen(run, _freeze_flow_run) for run in self._flow_runs.values()]
        starts_and_runs = []
        for run in map(_flow_record, frozen):
            start = _start(run)
            if (
                (flow_name is None or run.flow_name == flow_name)
                and state_matches(run.state, state)
                and wanted_tags.issubset(run.tags)
                and (since is None or (start is not None and start >= since))
                and (until is None or (start is not None and start < until))
            ):
                starts_and_runs.append((start, run))
        # The sort is stable: runs that start together keep their creation order.
        starts_and_runs.sort(key=lambda pair: _start_order(pair[0]))
        runs = [run for _, run in starts_and_runs]
        return runs if limit is None else runs[len(runs) - limit :] if limit else []

    def flow_run(self, run_id: str) -> FlowRun:
        """One flow run by id.

        Raises:
            StoreError: there is no flow run with that id.
        """
        with self._lock:
            run = self._flow_runs.get(str(run_id))
            frozen = None if run is None else _frozen(run, _freeze_flow_run)
        if frozen is None:
            raise StoreError(f"No flow run with id {run_id!r} in store {self.url!r}.")
        return _flow_record(frozen)

    def task_runs(
        self, flow_run_id: str | None = None, task_name: str | None = None
    ) -> list[TaskRun]:
        """Task runs in creation order, optionally filtered by flow run id and task name."""
        with self._lock:
            frozen = [_frozen(run, _freeze_task_run) for run in self._task_runs.values()]
        return [
            run
            for run in map(_task_record, frozen)
            if (flow_run_id is None or run.flow_run_id == flow_run_id)
            and (task_name is None or run.task_name == task_name)
        ]

    def logs(self, run_id: str | None = None) -> list[LogRecord]:
        """Log records in the order they were recorded; ``run_id`` matches a flow run id or a
        task run id."""
        from wfkit.stores.records import LogRecord  # (loaded on the first read: milliseconds)

        with self._lock:
            entries = list(self._logs)
        return [
            LogRecord(**entry._asdict())
            for entry in entries
            if run_id is None or run_id in (entry.flow_run_id, entry.task_run_id)
        ]

    # cache records ----------------------------------------------------------------------
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
        record = CacheRecord(
            key=key,
            value=cache_value(value, key),
            serializer=serializer,
            expires_at=None if expires_at is None else aware(expires_at),
            task_name=task_name,
            created_at=aware(created_at),
        )
        with self._lock:
            self._cache[key] = record

    def read_cache(self, key: str) -> CacheRecord | None:
        """The record stored under ``key``, expired or not; None if there is none."""
        with self._lock:
            return self._cache.get(key)

    def cache_records(self) -> list[CacheRecord]:
        """Every cache record, oldest first (by ``created_at``, then key)."""
        with self._lock:
            records = list(self._cache.values())
        return sorted(records, key=lambda r: (r.created_at, r.key))

    def cache_secret(self) -> bytes:
        """This store's own random key for authenticating cache records (made with the
        store, so no other store's records pass the check)."""
        return self._secret

    def delete_cache(self, key: str) -> bool:
        """Delete the record under ``key``; whether there was one."""
        with self._lock:
            return self._cache.pop(key, None) is not None

    def prune_cache(self, now: datetime) -> int:
        """Delete the records whose ``expires_at`` is at or before ``now``; how many."""
        now = aware(now)
        with self._lock:
            expired = [
                key
                for key, record in self._cache.items()
                if record.expires_at is not None and record.expires_at <= now
            ]
            for key in expired:
                del self._cache[key]
        return len(expired)

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"


# recording runs -------------------------------------------------------------------------------
def _record(
    runs: dict[str, _Run[_S] | _Frozen],
    snapshot: _S,
    freeze: Callable[[_S, Sequence[State]], _Frozen],
) -> None:
    """Record ``snapshot`` in ``runs``: a new run, or one more state of a known one; a run
    entering a final state is frozen."""
    known = runs.get(snapshot.id)
    if known is None:
        run = _Run(snapshot, [])
    elif isinstance(known, _Run):
        run = known
    else:  # frozen, and changing again (rare: a final state is mostly the last one)
        states = _states(known[0])  # (a frozen run starts with its states)
        if states[-1].type is StateType.CRASHED and not snapshot.state.is_crashed():
            return  # a Crashed run stays Crashed (see RunRecorder)
        run = _Run(snapshot, list(states))
    run.snapshot = snapshot
    run.states.append(snapshot.state)
    # (a known id keeps its place in the dict: the dict stays in creation order)
    runs[snapshot.id] = freeze(snapshot, run.states) if snapshot.state.is_final() else run


def _frozen(run: _Run[_S] | _Frozen, freeze: Callable[[_S, Sequence[State]], _Frozen]) -> _Frozen:
    """A run as a frozen tuple: reads build records from this one form."""
    return freeze(run.snapshot, run.states) if isinstance(run, _Run) else run


def _freeze_flow_run(s: FlowRunSnapshot, states: Sequence[State]) -> _Frozen:
    """A finished flow run as one tuple of plain values; :func:`_flow_record` reads it."""
    return (
        *_frozen_common(s, states),
        s.flow_name, s.flow_version, s.parent_flow_run_id, s.parent_task_run_id,
        s.root_flow_run_id,
    )  # fmt: skip


def _freeze_task_run(s: TaskRunSnapshot, states: Sequence[State]) -> _Frozen:
    """A finished task run as one tuple of plain values; :func:`_task_record` reads it."""
    return (*_frozen_common(s, states), s.task_name, s.flow_run_id, s.cache_key, s.upstream_ids)


def _frozen_common(s: FlowRunSnapshot | TaskRunSnapshot, states: Sequence[State]) -> _Frozen:
    """What a frozen run starts with (its kind's own fields follow): its states, then the
    fields flow and task runs share, its parameters as (name, value) pairs."""
    parameters = tuple(s.parameters.items())
    return (_plain_states(states), s.id, s.name, parameters, s.tags, s.run_count, s.host, s.pid)


def _plain_states(states: Sequence[State]) -> tuple[tuple[Any, ...], ...]:
    """Each state's attributes, its type as the type's string value."""
    return tuple(
        (s.type.value, s.name, s.timestamp, s.message, s.data, s.exception, s.scheduled_time)
        for s in states
    )


def _states(plain_states: tuple[tuple[Any, ...], ...]) -> tuple[State, ...]:
    """The states :func:`_plain_states` made plain, as ``State`` objects again."""
    return tuple(
        State(
            StateType(type_),
            name,
            timestamp=timestamp,
            message=message,
            data=data,
            exception=exception,
            scheduled_time=scheduled_time,
        )
        for type_, name, timestamp, message, data, exception, scheduled_time in plain_states
    )


# reading runs ---------------------------------------------------------------------------------
def _flow_record(frozen: _Frozen) -> FlowRun:
    from wfkit.stores.records import FlowRun  # (loaded on the first read: milliseconds)

    common, own = _common_fields(frozen)
    flow_name, flow_version, parent_flow_run_id, parent_task_run_id, root_flow_run_id = own
    return FlowRun(
        **common,
        flow_name=flow_name,
        flow_version=flow_version,
        parent_flow_run_id=parent_flow_run_id,
        parent_task_run_id=parent_task_run_id,
        root_flow_run_id=root_flow_run_id,
    )


def _task_record(frozen: _Frozen) -> TaskRun:
    from wfkit.stores.records import TaskRun  # (loaded on the first read: milliseconds)

    common, (task_name, flow_run_id, cache_key, upstream_ids) = _common_fields(frozen)
    return TaskRun(
        **common,
        task_name=task_name,
        flow_run_id=flow_run_id,
        cache_key=cache_key,
        upstream_ids=upstream_ids,
    )


def _common_fields(frozen: _Frozen) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The record fields flow and task runs share, from a frozen run; and its own fields."""
    plain_states, id, name, parameters, tags, run_count, host, pid, *own = frozen
    states = _states(plain_states)
    start, end = run_times(states)
    common = {
        "id": id,
        "name": name,
        "state": states[-1],
        "states": states,
        "run_count": run_count,
        "parameters": dict(parameters),
        "tags": tags,
        "start_time": start,
        "end_time": end,
        "host": host,
        "pid": pid,
    }
    return common, tuple(own)


def _start(run: FlowRun) -> datetime | None:
    """When a run counts as started: its first running state, else its first state."""
    start = run.start_time or run.states[0].timestamp
    return None if start is None else aware(start)


def _start_order(start: datetime | None) -> tuple[bool, datetime]:
    """A sort key: runs without a start first, then by start."""
    return (start is not None, start or _EARLIEST)


_EARLIEST = datetime.min.replace(tzinfo=UTC)
