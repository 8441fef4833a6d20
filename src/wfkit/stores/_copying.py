"""Copying a store's whole history into another store (``wf store copy SRC DST``).

Everything goes through the store protocols, so any two stores wfkit opens can be copied
between (SQLite, PostgreSQL, a plugin's): the source is read a page at a time
(``flow_runs_page``, ``task_runs_page``, ``cache_keys``), and the destination is written
through its recorder, flushed once per page (or more often, if the store flushes its buffer
on its own), so memory stays bounded by a page of runs with their logs, not by the store.
Artifacts, events and concurrency-limit definitions, which the protocols list only whole,
are read whole (stores hold far fewer of them than runs); slots taken on limits belong to
live processes and are not copied.

A run is copied with its whole history: one ``record_*`` call per state, as its process
recorded it. What the copy decides:

- A run still going on (not in a final state; a run whose process died reads ``Crashed``)
  is not copied, nor are its flow run's task runs and logs: its process goes on recording
  into the source only, and in the destination it would be judged ``Crashed`` once the copy
  ends. Copy again with ``merge`` once it has finished.
- Copying into a store that already has a run (``merge``) adds only the states and log
  lines it lacks: when the destination's history is the start of the source's. Equal
  histories are left alone. A history that differs in another way (most often: the run is
  ``Crashed`` in the destination, and a Crashed run stays Crashed) is kept as the destination
  has it, and reported as a conflict. Copying twice therefore changes nothing the second time.
- A cache record is copied only if its MAC checks with the source's secret; it is then signed
  again with the destination's (the caller passes the signing, which the engine owns: see
  :data:`Resign`). A record that does not check is counted and left behind: nothing read
  from a store is trusted before it is authenticated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wfkit.exceptions import StoreError
from wfkit.states import State, StateType
from wfkit.stores._base import CacheRecord, FlowRunSnapshot, LogEntry, TaskRunSnapshot

if TYPE_CHECKING:
    from wfkit.stores._protocols import RunStore
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun

__all__ = ["CopyResult", "Resign", "copy_store", "store_contents"]

Resign = Callable[[CacheRecord, bytes, bytes], "bytes | None"]
"""``resign(record, source_secret, destination_secret)``: the record's value signed with the
destination's secret, or None if its MAC does not check with the source's."""

_KINDS = (
    "flow_runs", "task_runs", "states", "logs", "cache_records", "artifacts", "events", "limits"
)  # fmt: skip
_MAX_CONFLICTS_SHOWN = 20


@dataclass
class CopyResult:
    """What a copy did, by kind of record (``flow_runs``, ``task_runs``, ``states``,
    ``logs``, ``cache_records``, ``artifacts``, ``events``, ``limits``), each a count by
    outcome: ``copied`` (new in the destination), ``updated`` (a run given the states it
    lacked), ``identical`` (already there), ``running`` (not finished: left for later),
    ``conflicts`` (different in the destination: kept as it is there), ``unauthentic`` (a
    cache record whose MAC does not check). ``conflicts`` lists the first conflicting ids."""

    counts: dict[str, dict[str, int]] = field(default_factory=lambda: {kind: {} for kind in _KINDS})
    conflicts: list[str] = field(default_factory=list)

    def add(self, kind: str, outcome: str, n: int = 1) -> None:
        """Count ``n`` records of ``kind`` with ``outcome``."""
        if n:
            self.counts[kind][outcome] = self.counts[kind].get(outcome, 0) + n

    def conflict(self, kind: str, what: str) -> None:
        """Count a conflict on ``what`` (a record of ``kind``), listing the first ones."""
        self.add(kind, "conflicts")
        if len(self.conflicts) < _MAX_CONFLICTS_SHOWN:
            self.conflicts.append(what)


def store_contents(store: RunStore) -> dict[str, int]:
    """How many records of each kind ``store`` holds, leaving out the kinds it has none of
    (``{}``: the store is empty)."""
    summary = store.summary()
    found = {
        "flow_runs": sum(summary.flow_runs.values()),
        "task_runs": sum(summary.task_runs.values()),
        "logs": summary.logs,
        "cache_records": summary.cache_records,
    }
    if not any(found.values()):  # (only then: these read every such record)
        found.update(
            artifacts=len(store.artifacts()),
            events=len(store.events()),
            limits=len(store.concurrency_limits()),
        )
    return {kind: n for kind, n in found.items() if n}


def copy_store(
    source: RunStore,
    destination: RunStore,
    resign: Resign,
    *,
    merge: bool = False,
    page_size: int = 200,
    progress: Callable[[str, int], None] | None = None,
) -> CopyResult:
    """Copy every run, state, log line, cache record, artifact, event and concurrency-limit
    definition of ``source`` into ``destination`` (see the module docstring).

    Args:
        source: the store to read (open it read-only).
        destination: the store to write; empty, unless ``merge``.
        resign: signs a cache record again for the destination (see :data:`Resign`).
        merge: look up each record in the destination first (it may hold some already).
        page_size: runs read, and written in one flush, at a time.
        progress: called as ``progress(kind, records_done)`` after each page.

    Raises:
        StoreError: a store could not be read or written, or a source run vanished in the
            middle of the copy (copy again with ``merge``).
    """
    copier = _Copier(source, destination, merge, page_size, progress or _no_progress)
    copier.flow_runs()
    copier.task_runs()
    copier.cache_records(resign)
    copier.artifacts()
    copier.events()
    copier.limits()
    return copier.result


def _no_progress(kind: str, done: int) -> None:
    """No progress to show."""


class _Copier:
    """One copy's state: the stores, the counts, and the flow runs left as still running."""

    def __init__(
        self,
        source: RunStore,
        destination: RunStore,
        merge: bool,
        page_size: int,
        progress: Callable[[str, int], None],
    ) -> None:
        self.src, self.dst, self.merge = source, destination, merge
        self.page_size, self.progress = page_size, progress
        self.result = CopyResult()
        self.running: set[str] = set()  # ids of flow runs not copied because not finished
        # Merging: ids of the flow runs this copy made (their task runs are new too), and the
        # destination's task runs of the flow runs (or, outside flows, of the tasks) looked
        # up last, by id.
        self.fresh: set[str] = set()
        self._known_tasks: dict[str, dict[str, TaskRun]] = {}

    def _pages(
        self, read: Callable[[str | None, int], Sequence[Any]], kind: str
    ) -> Iterator[tuple[str | None, Sequence[Any]]]:
        """Every page ``read`` gives, with the id it came after; the destination is flushed
        after each."""
        after, done = None, 0
        while True:
            page = read(after, self.page_size)
            if not page:
                if after is not None and kind == "flow_runs":
                    self._check_still_there(after)
                return
            yield after, page
            self.dst.flush()
            done += len(page)
            self.progress(kind, done)
            after = page[-1].id

    def _there(
        self, read: Callable[[str | None, int], Sequence[Any]], after: str | None, size: int
    ) -> dict[str, Any]:
        """Merging: the destination's runs in the page that follows ``after`` there, by id.
        A destination copied from this source has the same runs in the same order, so one
        read per page finds them; runs it lacks are looked up one by one."""
        return {r.id: r for r in read(after, size)} if self.merge else {}

    def _check_still_there(self, run_id: str) -> None:
        # An empty page after a run that was deleted meanwhile (pruned by another process)
        # would end the walk early without a word.
        if not any(r.id == run_id for r in self.src.find_flow_runs(run_id, limit=1)):
            raise StoreError(
                f"The flow run {run_id!r} was deleted from the source store while it was being "
                "copied, so the copy may have missed the runs after it. Copy again with --merge "
                "(what is already copied is left as it is)."
            )

    # runs ------------------------------------------------------------------------------
    # Each page is looked up in the destination before anything of it is written: a read
    # flushes what the store has buffered, and a flush per run instead of per page would
    # cost a transaction each.
    def flow_runs(self) -> None:
        for after, page in self._pages(self.src.flow_runs_page, "flow_runs"):
            found = self._there(self.dst.flow_runs_page, after, len(page))
            done = [run for run in page if run.state.is_final()]
            there = {run.id: found.get(run.id) or self._flow_there(run.id) for run in done}
            lines = self._lines([run.id for run in done], there)
            for run in page:
                if not run.state.is_final():
                    self.running.add(run.id)
                    self.result.add("flow_runs", "running")
                    continue
                before = there[run.id]
                if self._states(
                    "flow_runs", run, before, self.dst.record_flow_run, FlowRunSnapshot
                ):
                    self._logs(run.id, *lines[run.id])
                if self.merge and before is None:
                    self.fresh.add(run.id)

    def _flow_there(self, run_id: str) -> FlowRun | None:
        """Merging: the destination's flow run with this id, if it has one."""
        if not self.merge:
            return None
        return next((r for r in self.dst.find_flow_runs(run_id, 1) if r.id == run_id), None)

    def task_runs(self) -> None:
        for after, page in self._pages(self.src.task_runs_page, "task_runs"):
            found = self._there(self.dst.task_runs_page, after, len(page))
            done = [r for r in page if r.flow_run_id not in self.running and r.state.is_final()]
            there = {run.id: found.get(run.id) or self._task_there(run) for run in done}
            lines = self._lines([run.id for run in done if run.flow_run_id is None], there)
            for run in page:
                if run.id not in there:
                    self.result.add("task_runs", "running")
                    continue
                before = there[run.id]
                copied = self._states(
                    "task_runs", run, before, self.dst.record_task_run, TaskRunSnapshot
                )
                if copied and run.id in lines:  # (a flow run's lines came with it)
                    self._logs(run.id, *lines[run.id])

    def _lines(
        self, run_ids: list[str], there: dict[str, Any]
    ) -> dict[str, tuple[list[LogRecord], list[LogRecord]]]:
        """The log lines of these runs in the source, and in the destination (of the runs
        it has), by run id."""
        return {
            run_id: (self.src.logs(run_id), self.dst.logs(run_id) if there[run_id] else [])
            for run_id in run_ids
        }

    def _task_there(self, run: TaskRun) -> TaskRun | None:
        """Merging: the destination's task run with ``run``'s id, if it has one."""
        if not self.merge or run.flow_run_id in self.fresh:
            return None
        group = f"flow:{run.flow_run_id}" if run.flow_run_id else f"task:{run.task_name}"
        if group not in self._known_tasks:
            if len(self._known_tasks) >= 64:
                self._known_tasks.clear()
            found = (
                self.dst.task_runs(flow_run_id=run.flow_run_id)
                if run.flow_run_id
                else self.dst.task_runs(task_name=run.task_name)
            )
            self._known_tasks[group] = {r.id: r for r in found}
        return self._known_tasks[group].get(run.id)

    def _states(
        self,
        kind: str,
        run: Any,
        there: Any,
        record: Callable[[Any], None],
        snapshot: type[FlowRunSnapshot | TaskRunSnapshot],
    ) -> bool:
        """Record the states of ``run`` that the destination's run (``there``) lacks;
        whether the run's logs should be copied too (it is not a conflict)."""
        lacking = _lacking(there.states if there is not None else (), run.states)
        if lacking is None:
            self.result.conflict(kind, f"{kind[:-1].replace('_', ' ')} {run.id}")
            return False
        if not lacking:
            self.result.add(kind, "identical")
            return True
        recorded = _snapshot(snapshot, run)
        for state in lacking:
            record(recorded._replace(state=state))
        self.result.add(kind, "copied" if there is None else "updated")
        self.result.add("states", "copied", len(lacking))
        return True

    def _logs(self, run_id: str, lines: list[LogRecord], have: list[LogRecord]) -> None:
        """Copy the log ``lines`` of a run (a flow run's: its task runs' too) that the
        destination lacks (it ``have``s the others)."""
        if have and [_log_key(r) for r in lines[: len(have)]] != [_log_key(r) for r in have]:
            self.result.conflict("logs", f"log lines of run {run_id}")
            return
        for line in lines[len(have) :]:
            self.dst.record_log(_log_entry(line))
        self.result.add("logs", "copied", len(lines) - len(have))
        self.result.add("logs", "identical", len(have))

    # the rest --------------------------------------------------------------------------
    def cache_records(self, resign: Resign) -> None:
        src_secret, dst_secret = self.src.cache_secret(), self.dst.cache_secret()
        for done, key in enumerate(self.src.cache_keys(), 1):
            record = self.src.read_cache(key)
            if record is None:  # deleted since it was listed
                continue
            value = resign(record, src_secret, dst_secret)
            if value is None:
                self.result.add("cache_records", "unauthentic")
                continue
            new = record._replace(value=value)
            there = self.dst.read_cache(key) if self.merge else None
            if there is not None and (there == new or there.created_at > new.created_at):
                # (a newer record in the destination is a result computed there since)
                self.result.add("cache_records", "identical" if there == new else "conflicts")
                continue
            self.dst.write_cache(*new)
            self.result.add("cache_records", "copied" if there is None else "updated")
            if done % self.page_size == 0:
                self.progress("cache_records", done)

    def artifacts(self) -> None:
        for artifact in self.src.artifacts():
            there = self.dst.artifact(artifact.id) if self.merge else None
            if there == artifact:
                self.result.add("artifacts", "identical")
                continue
            self.dst.record_artifact(artifact)  # (replaces the one with its id)
            self.result.add("artifacts", "copied" if there is None else "updated")

    def events(self) -> None:
        have = {e.id for e in self.dst.events()} if self.merge else set()
        for event in self.src.events():
            if event.id in have:
                self.result.add("events", "identical")
            else:
                self.dst.record_event(event)
                self.result.add("events", "copied")

    def limits(self) -> None:
        for limit in self.src.concurrency_limits():
            there = self.dst.read_limit(limit.name)
            size = (limit.limit, limit.slot_decay_per_second)
            if there is None:
                self.dst.create_limit(limit.name, *size)
                self.result.add("limits", "copied")
            elif (there.limit, there.slot_decay_per_second) == size:
                self.result.add("limits", "identical")
            else:  # (the destination's users set it so: a copy does not resize their limit)
                self.result.conflict("limits", f"concurrency limit {limit.name}")


def _lacking(there: Sequence[State], source: Sequence[State]) -> list[State] | None:
    """The states of ``source`` after ``there``, if ``there`` is how ``source`` starts;
    else None (the histories differ)."""
    if len(there) > len(source):
        return None
    if any(_state_key(a) != _state_key(b) for a, b in zip(there, source, strict=False)):
        return None
    return list(source[len(there) :])


def _state_key(state: State) -> tuple[Any, ...]:
    # A read-only store shows a dead process's run Crashed at the moment *it* first saw the
    # process dead, which differs from one reader to the next: a run crashes once, so two
    # Crashed states are the same state.
    if state.type is StateType.CRASHED:
        return (state.type,)
    return (state.type, state.name, state.timestamp, state.message)


def _log_key(line: LogRecord) -> tuple[Any, ...]:
    return (line.task_run_id, line.level, line.logger, line.message, line.timestamp)


def _log_entry(line: LogRecord) -> LogEntry:
    return LogEntry(**{name: getattr(line, name) for name in LogEntry._fields})


def _snapshot(
    cls: type[FlowRunSnapshot | TaskRunSnapshot], run: FlowRun | TaskRun
) -> FlowRunSnapshot | TaskRunSnapshot:
    """A snapshot (of class ``cls``) of a read-back run, in its current state."""
    values = {name: getattr(run, name) for name in cls._fields}
    if values.get("root_flow_run_id", run.id) is None:  # (not recorded by old versions)
        values["root_flow_run_id"] = run.id
    return cls(**values)
