"""``memory://``: a run store held in this process's memory (tests and throwaway runs).

This is the reference implementation of the store protocols (:mod:`wfkit.stores._protocols`),
kept plain so that it can be read to learn them:

- runs are kept in two dicts by run id, flow runs and task runs (dicts keep insertion order,
  which is the creation order ``task_runs()`` returns);
- a run going on is a :class:`_Run`: its latest snapshot and the states it entered; a run
  that reached a final state is *frozen* into one tuple of plain values (see below);
- log lines are a dict by position, cache records a dict by key;
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

from wfkit.exceptions import ConfigurationError, StoreError
from wfkit.states import State, StateType
from wfkit.stores._base import (
    CacheRecord,
    FlowRunSnapshot,
    LogEntry,
    TaskRunSnapshot,
    aware,
    cache_value,
    check_batch_size,
    check_ids,
    check_limit,
    check_moment,
    check_states,
    check_tags,
    run_times,
    state_matches,
    states_match,
)
from wfkit.stores._memory_artifacts import MemoryArtifacts
from wfkit.stores._memory_events import MemoryEvents
from wfkit.stores._memory_limits import MemoryLimits

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


class MemoryStore(MemoryLimits, MemoryArtifacts, MemoryEvents):
    """A run store in a few dicts and lists; everything is lost when the process ends.

    Args:
        url: the URL it was opened with (``memory://`` or a plugin's own scheme).
    """

    def __init__(self, url: str = "memory://") -> None:
        MemoryLimits.__init__(self)
        MemoryArtifacts.__init__(self)
        MemoryEvents.__init__(self)
        self.url = url
        self._lock = threading.Lock()
        self._flow_runs: dict[str, _Run[FlowRunSnapshot] | _Frozen] = {}
        self._task_runs: dict[str, _Run[TaskRunSnapshot] | _Frozen] = {}
        # Log lines by position (1, 2, ...): ``logs_after`` cursors are positions, which
        # deleting lines (``prune_runs``) must not shift.
        self._logs: dict[int, LogEntry] = {}
        self._log_count = 0
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
            self._log_count += 1
            self._logs[self._log_count] = entry

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
        return runs if limit is None else runs[max(0, len(runs) - limit) :] if limit else []

    def flow_run_counts(
        self,
        flow_name: str | None = None,
        tags: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, int]:
        """How many flow runs matching the filters are in each state, by state name."""
        return _count_by_state(self.flow_runs(flow_name, None, tags, since, until))

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
            entries = list(self._logs.values())
        return [
            LogRecord(**entry._asdict())
            for entry in entries
            if run_id is None or run_id in (entry.flow_run_id, entry.task_run_id)
        ]

    def flow_runs_page(self, after: str | None = None, limit: int = 100) -> list[FlowRun]:
        """Up to ``limit`` flow runs in creation order, after the one with id ``after``."""
        return list(map(_flow_record, self._page(self._flow_runs, _freeze_flow_run, after, limit)))

    def task_runs_page(self, after: str | None = None, limit: int = 100) -> list[TaskRun]:
        """Up to ``limit`` task runs in creation order, after the one with id ``after``."""
        return list(map(_task_record, self._page(self._task_runs, _freeze_task_run, after, limit)))

    def _page(self, runs: dict[str, Any], freeze: Any, after: str | None, limit: int) -> list[Any]:
        most = check_limit(limit)
        with self._lock:
            ids = list(runs)
            start = 0 if after is None else ids.index(after) + 1 if after in runs else len(ids)
            chosen = ids[start:] if most is None else ids[start : start + most]
            return [_frozen(runs[run_id], freeze) for run_id in chosen]

    # what ``wf`` reads (see the RunReader protocol) ------------------------------------
    def find_flow_runs(self, ref: str, limit: int = 10) -> list[FlowRun]:
        """Flow runs with id ``ref``, an id starting with ``ref`` or the name ``ref``; the
        exact id first, then in start order; at most ``limit``."""
        ref, most = str(ref), check_limit(limit)
        runs = [r for r in self.flow_runs() if ref and (r.id.startswith(ref) or r.name == ref)]
        runs.sort(key=lambda run: run.id != ref)  # stable: then in start order
        return runs[:most]

    def flow_runs_in_tree(self, root_flow_run_id: str) -> list[FlowRun]:
        """The flow runs whose root flow run is ``root_flow_run_id``, in start order."""
        return [r for r in self.flow_runs() if r.root_flow_run_id == root_flow_run_id]

    def task_run_counts(self, flow_run_ids: Collection[str]) -> dict[str, dict[str, int]]:
        """Task runs by state name, for each given flow run id that has task runs."""
        wanted = set(check_ids(flow_run_ids))
        counts: dict[str, dict[str, int]] = {}
        for run in self.task_runs():
            if run.flow_run_id in wanted:
                by_state = counts.setdefault(run.flow_run_id, {})
                by_state[run.state.name] = by_state.get(run.state.name, 0) + 1
        return counts

    def task_run_groups(self, flow_run_id: str) -> list[TaskRunGroup]:
        """The task runs of one flow run, summarised per task name in first-run order."""
        from wfkit.stores.records import TaskRunGroup  # (loaded on the first read: ms)

        groups: dict[str, list[TaskRun]] = {}
        for run in self.task_runs(flow_run_id=flow_run_id):
            groups.setdefault(run.task_name, []).append(run)
        return [
            TaskRunGroup(
                task_name=name,
                runs=len(runs),
                states=_count_by_state(runs),
                attempts=sum(run.run_count for run in runs),
            )
            for name, runs in groups.items()
        ]

    def logs_after(
        self,
        run_id: str | None = None,
        *,
        after: int = 0,
        min_level: int = 0,
        task_name: str | None = None,
        last: int | None = None,
    ) -> LogPage:
        """Log records recorded after the cursor ``after``, filtered (see
        :meth:`wfkit.stores.RunReader.logs_after`)."""
        from wfkit.stores.records import LogPage, LogRecord  # (loaded on the first read)

        last = check_limit(last, "last")
        tasks = None
        if task_name is not None:
            tasks = {r.id for r in self.task_runs() if task_name in (r.task_name, r.name)}
        with self._lock:
            entries = [(pos, e) for pos, e in self._logs.items() if pos > after]
            cursor = max(after, self._log_count)
        matching = [
            LogRecord(**entry._asdict())
            for _, entry in entries
            if (run_id is None or run_id in (entry.flow_run_id, entry.task_run_id))
            and entry.level >= min_level
            and (tasks is None or entry.task_run_id in tasks)
        ]
        if last is not None:
            matching = matching[max(0, len(matching) - last) :] if last else []
        return LogPage(records=tuple(matching), cursor=cursor)

    def summary(self) -> StoreSummary:
        """What the store holds (no heartbeats: every owner is this process)."""
        from wfkit.stores.records import LiveOwner, StoreSummary  # (loaded on first read)

        flow_runs = self.flow_runs()
        live: dict[tuple[str, int], int] = {}
        for run in flow_runs:
            if not run.state.is_final() and run.host is not None and run.pid is not None:
                live[run.host, run.pid] = live.get((run.host, run.pid), 0) + 1
        with self._lock:
            logs, cache_records = len(self._logs), len(self._cache)
        return StoreSummary(
            url=self.url,
            flow_runs=_count_by_state(flow_runs),
            task_runs=_count_by_state(self.task_runs()),
            logs=logs,
            cache_records=cache_records,
            owners=tuple(
                LiveOwner(host=host, pid=pid, heartbeat=None, live_runs=n)
                for (host, pid), n in sorted(live.items())
            ),
            details={},
        )

    def check(self) -> list[str]:
        """Problems with the kept runs: a run kept without a state (never, by construction)."""
        runs: list[FlowRun | TaskRun] = [*self.flow_runs(), *self.task_runs()]
        return [f"Run {run.id!r} has no state history." for run in runs if not run.states]

    def prune_runs(
        self,
        before: datetime,
        states: Collection[str] | None = None,
        *,
        dry_run: bool = False,
        batch_size: int = 200,
    ) -> PruneResult:
        """Delete finished top-level flow runs older than ``before`` with everything of
        their trees (see :meth:`wfkit.stores.RunReader.prune_runs`); memory needs no
        batches, but ``batch_size`` is checked as every store checks it."""
        from wfkit.stores.records import PruneResult  # (loaded on the first read: ms)

        cutoff, wanted = _prune_args(before, states, batch_size)
        roots = {
            run.id
            for run in self.flow_runs()
            if run.parent_flow_run_id is None
            and run.state.is_final()
            and run.end_time is not None
            and aware(run.end_time) < cutoff
            and states_match(run.state, wanted)
        }
        flows = [run for run in self.flow_runs() if run.root_flow_run_id in roots]
        flow_ids = {run.id for run in flows}
        tasks = [run for run in self.task_runs() if run.flow_run_id in flow_ids]
        task_ids = {run.id for run in tasks}
        with self._lock:
            logs = [
                pos
                for pos, e in self._logs.items()
                if e.flow_run_id in flow_ids or e.task_run_id in task_ids
            ]
            if not dry_run:
                for pos in logs:
                    del self._logs[pos]
                for run_id in flow_ids:
                    self._flow_runs.pop(run_id, None)
                for run_id in task_ids:
                    self._task_runs.pop(run_id, None)
        return PruneResult(
            flow_runs=len(flows),
            task_runs=len(tasks),
            states=sum(len(run.states) for run in [*flows, *tasks]),
            logs=len(logs),
        )

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

    def cache_keys(self) -> list[str]:
        """The key of every cache record, oldest record first (by ``created_at``, then key)."""
        return [record.key for record in self.cache_records()]

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


def _count_by_state(runs: Sequence[FlowRun | TaskRun]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.state.name] = counts.get(run.state.name, 0) + 1
    return counts


def _prune_args(
    before: datetime, states: Collection[str] | None, batch_size: int
) -> tuple[datetime, tuple[str, ...] | None]:
    """``prune_runs``'s checked cut-off and state names."""
    check_batch_size(batch_size)
    cutoff = check_moment("before", before)
    if cutoff is None:
        raise ConfigurationError("before=None is invalid: pass the datetime to prune before.")
    return cutoff, check_states(states)


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
        s.root_flow_run_id, s.flow_path,
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
    flow_name, flow_version, parent_flow_run_id, parent_task_run_id, root_flow_run_id, path = own
    return FlowRun(
        **common,
        flow_name=flow_name,
        flow_version=flow_version,
        parent_flow_run_id=parent_flow_run_id,
        parent_task_run_id=parent_task_run_id,
        root_flow_run_id=root_flow_run_id,
        flow_path=path,
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
