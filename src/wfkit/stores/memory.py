"""``memory://``: a run store held in this process's memory (tests and throwaway runs)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from wfkit.exceptions import StoreError
from wfkit.stores._base import (
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
        # run id -> [latest snapshot, history]; dicts keep insertion (creation) order.
        self._flow_runs: dict[str, list[Any]] = {}
        self._task_runs: dict[str, list[Any]] = {}
        self._logs: list[LogEntry] = []
        self._cache: dict[str, CacheRecord] = {}

    # writing ----------------------------------------------------------------------------
    def record_flow_run(self, run: FlowRunSnapshot) -> None:
        self._record(self._flow_runs, run)

    def record_task_run(self, run: TaskRunSnapshot) -> None:
        self._record(self._task_runs, run)

    def _record(self, table: dict[str, list[Any]], run: Any) -> None:
        with self._lock:
            entry = table.get(run.id)
            if entry is None:
                table[run.id] = [run, [run.state]]
            else:
                entry[0] = run
                entry[1].append(run.state)

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
            entries = [list(e) for e in self._flow_runs.values()]
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
            entry = self._flow_runs.get(str(run_id))
            entry = list(entry) if entry else None
        if entry is None:
            raise StoreError(f"No flow run with id {run_id!r} in store {self.url!r}.")
        return _flow_record(*entry)

    def task_runs(
        self, flow_run_id: str | None = None, task_name: str | None = None
    ) -> list[TaskRun]:
        with self._lock:
            entries = [list(e) for e in self._task_runs.values()]
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
