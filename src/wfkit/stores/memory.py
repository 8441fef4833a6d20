"""``memory://``: a run store held in this process's memory (tests and throwaway runs)."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from wfkit.exceptions import StoreError
from wfkit.states import FINAL_TYPES, State, StateType
from wfkit.stores._base import (
    STATE_TYPE_VALUES,
    CacheRecord,
    FlowRunSnapshot,
    LogEntry,
    TaskRunSnapshot,
    aware,
    cache_value,
    check_limit,
    run_times,
    state_matches,
)

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun

__all__ = ["MemoryStore"]


class MemoryStore:
    """A run store in a few dicts; everything is lost when the process ends."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.Lock()
        # Snapshots recorded and not yet filed into the tables below (see record_task_run).
        self._journal: deque[Any] = deque()
        # run id -> [latest snapshot, history] while the run goes on, packed (see _pack)
        # once it reaches a final state; dicts keep creation (insertion) order.
        self._flow_runs: dict[str, Any] = {}
        self._task_runs: dict[str, Any] = {}
        self._parameters: dict[str, dict[str, Any]] = {}  # of the packed runs, by run id
        self._logs: list[LogEntry] = []
        self._cache: dict[str, CacheRecord] = {}
        # snapshot type -> (its table, the position of its state)
        self._tables = {
            kind: (table, _POSITIONS[kind][1])
            for kind, table in (
                (FlowRunSnapshot, self._flow_runs),
                (TaskRunSnapshot, self._task_runs),
            )
        }

    # writing ----------------------------------------------------------------------------
    def record_task_run(self, run: TaskRunSnapshot | FlowRunSnapshot) -> None:
        """Record a state change: the snapshot joins a journal, filed into the run tables
        in batches (and before every read).

        Appending to a deque is atomic, so recording takes no lock; filing a batch at once
        costs a fraction of filing each change as it comes (every task run records three).
        """
        journal = self._journal
        journal.append(run)
        if len(journal) >= _FILE_EVERY:
            self._file()

    record_flow_run = record_task_run  # one journal: filing tells them apart by type

    def _file(self) -> None:
        """File the journal's snapshots into the run tables, in the order recorded."""
        with self._lock:
            self._file_locked()

    def _file_locked(self) -> None:
        journal, tables, parameters = self._journal, self._tables, self._parameters
        while journal:  # (only the lock's holder takes from the journal)
            run = journal.popleft()
            table, at_state = tables[type(run)]
            run_id, state = run[0], run[at_state]  # (by index: the fields' fast path)
            entry = table.get(run_id)
            if entry is None:
                entry = table[run_id] = [run, [state]]
            else:
                if type(entry) is tuple:  # packed, and changing again (rare): unpack it
                    entry = table[run_id] = list(self._unpack(type(run), entry))
                entry[0] = run
                entry[1].append(state)
            if state.type in FINAL_TYPES:  # done changing (mostly): pack it
                table[run_id] = _pack(*entry)
                parameters[run_id] = _copied(run.parameters)

    def _unpack(self, kind: type[Any], entry: Any) -> tuple[Any, list[State]]:
        """An entry (packed, or a live ``[snapshot, history]``) as (its latest snapshot,
        its history of State objects)."""
        if type(entry) is list:
            return entry[0], list(entry[1])
        return _unpack(kind, entry, self._parameters[entry[0]])

    def record_log(self, entry: LogEntry) -> None:
        with self._lock:
            self._logs.append(entry)

    def flush(self) -> None:
        """Nothing to do: memory is as durable as this store gets."""

    def close(self) -> None:
        """Nothing to release."""

    # reading ----------------------------------------------------------------------------
    def flow_runs(
        self, flow_name: str | None = None, state: str | None = None, limit: int | None = None
    ) -> list[FlowRun]:
        with self._lock:
            self._file_locked()
            entries = [self._unpack(FlowRunSnapshot, e) for e in self._flow_runs.values()]
        records = [
            _flow_record(snap, history)
            for snap, history in entries
            if (flow_name is None or snap.flow_name == flow_name)
            and state_matches(snap.state, state)
        ]
        records.sort(key=_start_key)
        limit = check_limit(limit)
        if limit is None:
            return records
        return records[len(records) - limit :] if limit else []

    def flow_run(self, run_id: str) -> FlowRun:
        with self._lock:
            self._file_locked()
            packed = self._flow_runs.get(str(run_id))
            entry = self._unpack(FlowRunSnapshot, packed) if packed else None
        if entry is None:
            raise StoreError(f"No flow run with id {run_id!r} in store {self.url!r}.")
        return _flow_record(*entry)

    def task_runs(
        self, flow_run_id: str | None = None, task_name: str | None = None
    ) -> list[TaskRun]:
        with self._lock:
            self._file_locked()
            entries = [self._unpack(TaskRunSnapshot, e) for e in self._task_runs.values()]
        return [
            _task_record(snap, history)
            for snap, history in entries
            if (flow_run_id is None or snap.flow_run_id == flow_run_id)
            and (task_name is None or snap.task_name == task_name)
        ]

    def logs(self, run_id: str | None = None) -> list[LogRecord]:
        with self._lock:
            entries = list(self._logs)
        from wfkit.stores.records import LogRecord

        return [
            LogRecord(**e._asdict())
            for e in entries
            if run_id is None or run_id in (e.flow_run_id, e.task_run_id)
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
        expiry = None if expires_at is None else aware(expires_at)
        record = CacheRecord(
            key, cache_value(value, key), serializer, expiry, task_name, aware(created_at)
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

    def delete_cache(self, key: str) -> bool:
        """Delete the record under ``key``; whether there was one."""
        with self._lock:
            return self._cache.pop(key, None) is not None

    def prune_cache(self, now: datetime) -> int:
        """Delete the records whose ``expires_at`` is at or before ``now``; how many."""
        now = aware(now)
        with self._lock:
            expired = [
                k
                for k, r in self._cache.items()
                if r.expires_at is not None and r.expires_at <= now
            ]
            for key in expired:
                del self._cache[key]
        return len(expired)

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"


# A finished run is kept packed, in one flat tuple: its latest snapshot's fields (None for
# its parameters and its state), then the attributes of each of its states (the type as a
# string); its parameters go in a dict of their own. Python's cycle collector stops
# tracking a tuple that holds only plain values (and never tracks a dict of them), so a
# store holding many runs does not make every full collection walk seven objects per run
# (in a benchmark of 60,000 task runs that walking cost ~5 us per run). Reads rebuild fresh
# snapshots and State objects around the same values.
_POSITIONS = {  # snapshot type -> the positions of its parameters and its state
    kind: (kind._fields.index("parameters"), kind._fields.index("state"))
    for kind in (FlowRunSnapshot, TaskRunSnapshot)
}
_STATE_SIZE = 7  # the attributes of a packed state
_FILE_EVERY = 192  # snapshots journaled before they are filed (64 task runs' worth)


def _pack(run: Any, history: list[State]) -> tuple[Any, ...]:
    """A run's latest snapshot and its history, packed (without its parameters)."""
    parameters, state = _POSITIONS[type(run)]
    packed = list(run)
    packed[parameters] = packed[state] = None
    for s in history:
        packed.extend(
            (
                STATE_TYPE_VALUES[s.type],
                s.name,
                s.timestamp,
                s.message,
                s.data,
                s.exception,
                s.scheduled_time,
            )
        )
    return tuple(packed)


def _copied(parameters: Any) -> dict[str, Any]:
    # The engine hands over a read-only view of a dict: copying through it is cheapest.
    return parameters.copy() if type(parameters) is MappingProxyType else dict(parameters)


def _unpack(
    kind: type[Any], packed: tuple[Any, ...], parameters: dict[str, Any]
) -> tuple[Any, list[State]]:
    """A packed run (and its parameters) as (its latest snapshot, its history)."""
    size = len(kind._fields)
    history = [
        State(
            StateType(packed[i]),
            packed[i + 1],
            timestamp=packed[i + 2],
            message=packed[i + 3],
            data=packed[i + 4],
            exception=packed[i + 5],
            scheduled_time=packed[i + 6],
        )
        for i in range(size, len(packed), _STATE_SIZE)
    ]
    snapshot = kind._make(packed[:size])._replace(parameters=parameters, state=history[-1])
    return snapshot, history


def _start_key(record: FlowRun) -> float:
    # Runs whose states carry no timestamp sort first, as in the SQLite store.
    moment = record.start_time or record.states[0].timestamp
    return moment.timestamp() if moment is not None else float("-inf")


def _flow_record(snap: FlowRunSnapshot, history: list[Any]) -> FlowRun:
    from wfkit.stores.records import FlowRun

    start, end = run_times(history)
    return FlowRun(
        id=snap.id,
        name=snap.name,
        flow_name=snap.flow_name,
        flow_version=snap.flow_version,
        state=history[-1],
        states=tuple(history),
        run_count=snap.run_count,
        parameters=dict(snap.parameters),
        tags=snap.tags,
        start_time=start,
        end_time=end,
        parent_flow_run_id=snap.parent_flow_run_id,
        parent_task_run_id=snap.parent_task_run_id,
        root_flow_run_id=snap.root_flow_run_id,
        host=snap.host,
        pid=snap.pid,
    )


def _task_record(snap: TaskRunSnapshot, history: list[Any]) -> TaskRun:
    from wfkit.stores.records import TaskRun

    start, end = run_times(history)
    return TaskRun(
        id=snap.id,
        name=snap.name,
        task_name=snap.task_name,
        flow_run_id=snap.flow_run_id,
        state=history[-1],
        states=tuple(history),
        run_count=snap.run_count,
        parameters=dict(snap.parameters),
        tags=snap.tags,
        start_time=start,
        end_time=end,
        cache_key=snap.cache_key,
        upstream_ids=snap.upstream_ids,
        host=snap.host,
        pid=snap.pid,
    )
