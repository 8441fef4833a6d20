"""The SQLite store's reads for ``wf`` and the web page, and its batched prune.

:class:`SqliteQueries` is mixed into :class:`~wfkit.stores.sqlite.SqliteStore`: it works
through the store's :class:`~wfkit.stores._sqlite_writer.Writer` (``self._w``), so every read
sees what the store buffered. Each query is served by an index of schema version 4 (see
``_sqlite_schema``): a page of 20 runs, a run's last log lines or its per-task summary cost
the same in a store of 100 runs as in one of 100,000.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfkit.exceptions import ConfigurationError
from wfkit.stores._base import (
    check_batch_size,
    check_ids,
    check_limit,
    check_moment,
    check_states,
)
from wfkit.stores._sql_reads import log_page, log_queries, task_run_groups
from wfkit.stores._sqlite_rows import _from_us, _to_us
from wfkit.stores._sqlite_schema import FINISHED_ROOT, NOT_FINAL

if TYPE_CHECKING:
    from datetime import datetime

    from wfkit.stores._sqlite_writer import Writer
    from wfkit.stores.records import (
        FlowRun,
        LogPage,
        PruneResult,
        StoreSummary,
        TaskRunGroup,
    )

__all__ = ["SqliteQueries"]

_START = "coalesce(start_us, first_us)"  # as the flow_runs_start index has it
_CHUNK = 500  # ids per IN (...): well under SQLite's limit on bound parameters
_INTEGRITY_ERRORS = 20  # integrity_check stops after this many problems


class SqliteQueries:
    """The reads of the :class:`~wfkit.stores.RunReader` protocol that ``wf`` needs."""

    _w: Writer
    url: str
    path: Path

    def find_flow_runs(self, ref: str, limit: int = 10) -> list[FlowRun]:
        """Flow runs with id ``ref``, an id starting with ``ref``, or the name ``ref``."""
        ref, most = str(ref), check_limit(limit)
        if not ref or most == 0:
            return []
        # An id prefix is a range of the unique index on id (LIKE would scan).
        where = (
            f"WHERE (id >= ? AND id < ?) OR name = ? ORDER BY id = ? DESC, {_START}, seq "
            f"LIMIT {most if most is not None else -1}"
        )
        return self._w.read_runs(_records().FlowRun, where, [ref, ref + "\U0010ffff", ref, ref])

    def flow_runs_in_tree(self, root_flow_run_id: str) -> list[FlowRun]:
        """The flow runs whose root flow run is ``root_flow_run_id``, in start order."""
        where = f"WHERE root_flow_run_id = ? ORDER BY {_START}, seq"
        return self._w.read_runs(_records().FlowRun, where, [str(root_flow_run_id)])

    def task_run_counts(self, flow_run_ids: Collection[str]) -> dict[str, dict[str, int]]:
        """Task runs by state name, for each given flow run id that has task runs."""
        ids = check_ids(flow_run_ids)
        table = self._runs_table("task_runs")
        # Grouped in the covering index's own order (flow run, task, state), so that SQLite
        # streams the groups instead of sorting every task run of a large run; the task
        # names are then summed away here.
        queries = [
            (
                f"SELECT flow_run_id, state_name, count(*) FROM {table} WHERE flow_run_id IN "
                f"({', '.join('?' * len(chunk))}) GROUP BY flow_run_id, task_name, state_name",
                chunk,
            )
            for chunk in _chunks(ids)
        ]
        counts: dict[str, dict[str, int]] = {}
        for rows in self._w.read(queries) if queries else []:
            for run_id, state_name, n in rows:
                by_state = counts.setdefault(run_id, {})
                by_state[state_name] = by_state.get(state_name, 0) + n
        return counts

    def task_run_groups(self, flow_run_id: str) -> list[TaskRunGroup]:
        """The task runs of one flow run, summarised per task name in first-run order."""
        # Reads only the covering index task_runs_summary (seq is in every index entry).
        sql = (
            "SELECT task_name, state_name, count(*), sum(run_count), min(seq) FROM "
            f"{self._runs_table('task_runs')} WHERE flow_run_id = ? GROUP BY task_name, state_name"
        )
        (rows,) = self._w.read([(sql, [str(flow_run_id)])])
        return task_run_groups(rows)

    def _runs_table(self, name: str) -> str:
        """The runs table (``task_runs``, ``flow_runs``) to count in: on a read-only
        connection, it is a view that shows the runs of dead owners as Crashed (see
        ``_sqlite_readonly``), and its computed state columns keep SQLite off the covering
        index (a 100,000-task run then takes ~100 ms instead of ~30; counting 100,000 flow
        runs by state ~53 ms instead of ~39). While no owner is dead, the view shows what
        the table holds, so the table itself is read."""
        if not self._w.read_only:
            return name
        self._w.record_crashed()  # (refreshes temp.dead_owners)
        ((any_dead,),) = self._w.read([("SELECT EXISTS (SELECT 1 FROM temp.dead_owners)", ())])[0]
        return name if any_dead else f"main.{name}"

    def logs_after(
        self,
        run_id: str | None = None,
        *,
        after: int = 0,
        min_level: int = 0,
        task_name: str | None = None,
        last: int | None = None,
    ) -> LogPage:
        """Log records recorded after the cursor ``after`` (a log row's seq), filtered."""
        last = check_limit(last, "last")
        queries = log_queries("?", run_id, int(after), min_level, task_name, last)
        *parts, ((cursor,),) = self._w.read([*queries, ("SELECT max(seq) FROM logs", ())])
        return log_page(parts, cursor, after, last)

    def summary(self) -> StoreSummary:
        """What the store holds, with the SQLite file's path, schema version and size."""
        self._w.record_crashed()  # a dead process's runs are not counted as running
        by_state = "SELECT state_name, count(*) FROM {} GROUP BY state_name"
        owners = (
            "SELECT o.host, o.pid, o.heartbeat_us, count(*) FROM flow_runs f JOIN owners o "
            f"ON o.id = f.owner WHERE {NOT_FINAL} GROUP BY o.id ORDER BY o.host, o.pid"
        )
        flows, tasks, ((logs,),), ((cache,),), live, ((version,),) = self._w.read(
            [
                (by_state.format("flow_runs"), ()),
                (by_state.format("task_runs"), ()),
                ("SELECT count(*) FROM logs", ()),
                ("SELECT count(*) FROM cache", ()),
                (owners, ()),
                ("SELECT value FROM wfkit_meta WHERE key = 'schema_version'", ()),
            ]
        )
        records = _records()
        return records.StoreSummary(
            url=self.url,
            flow_runs=dict(flows),
            task_runs=dict(tasks),
            logs=logs,
            cache_records=cache,
            owners=tuple(
                records.LiveOwner(host=h, pid=p, heartbeat=_from_us(at), live_runs=n)
                for h, p, at, n in live
            ),
            details={
                "path": str(self.path.resolve()),
                "schema_version": int(version),
                "size_bytes": _file_size(self.path),
                "wal_bytes": _file_size(Path(f"{self.path}-wal")),
            },
        )

    def check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check``, then wfkit's own consistency checks."""
        checks = [(f"PRAGMA integrity_check({_INTEGRITY_ERRORS})", ())]
        for kind in ("flow_run", "task_run"):
            checks += [
                (
                    f"SELECT id FROM {kind}s r WHERE NOT EXISTS (SELECT 1 FROM {kind}_states s "
                    "WHERE s.run_seq = r.seq) LIMIT 20",
                    (),
                ),
                (f"SELECT id FROM {kind}s WHERE state_type IS NULL OR state_name IS NULL", ()),
                (
                    f"SELECT DISTINCT run_seq FROM {kind}_states s WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {kind}s r WHERE r.seq = s.run_seq) LIMIT 20",
                    (),
                ),
            ]
        try:
            integrity, *found = self._w.read(checks)
        except sqlite3.DatabaseError as exc:  # (read() wraps most errors; corruption may not)
            return [f"SQLite cannot read the file: {exc}."]
        problems = [f"SQLite's integrity check: {row[0]}" for row in integrity if row[0] != "ok"]
        for i, kind in enumerate(("flow run", "task run")):
            no_history, no_state, orphans = found[3 * i : 3 * i + 3]
            problems += [f"The {kind} {r[0]!r} has no state history." for r in no_history]
            problems += [f"The {kind} {r[0]!r} has no current state." for r in no_state]
            problems += [
                f"States of a {kind} that is not in the store (run seq {r[0]})." for r in orphans
            ]
        return problems

    def prune_runs(
        self,
        before: datetime,
        states: Collection[str] | None = None,
        *,
        dry_run: bool = False,
        batch_size: int = 200,
    ) -> PruneResult:
        """Delete finished top-level flow runs older than ``before`` with their trees, in
        transactions of ``batch_size`` top-level runs each."""
        if self._w.read_only and not dry_run:  # (a dry run only reads)
            raise self._w.read_only_error("prune runs")
        check_batch_size(batch_size)
        cutoff = check_moment("before", before)
        if cutoff is None:
            raise ConfigurationError("before=None is invalid: pass the datetime to prune before.")
        wanted = check_states(states)
        select = _select_roots(wanted, batch_size)
        folded = [name.casefold() for name in wanted or ()]
        totals = [0, 0, 0, 0]
        after = 0
        if not self._w.read_only:
            self._w.flush()
        while True:
            args = [_to_us(cutoff), after, *folded, *folded]
            counts, after = self._w.call(_pruning(select, args, dry_run), "prune runs")
            if not counts[0]:
                break
            totals = [t + c for t, c in zip(totals, counts, strict=True)]
        flow_runs, task_runs, states_, logs = totals
        return _records().PruneResult(
            flow_runs=flow_runs, task_runs=task_runs, states=states_, logs=logs
        )


def _select_roots(wanted: tuple[str, ...] | None, batch_size: int) -> str:
    """The query for the next batch of finished top-level runs to prune (parameters: the
    cut-off, the last seq seen, the wanted states twice)."""
    state_filter = ""
    if wanted:
        marks = ", ".join("?" * len(wanted))
        state_filter = (
            f" AND (wf_casefold(state_name) IN ({marks}) OR wf_casefold(state_type) IN ({marks}))"
        )
    return (
        f"SELECT seq, id FROM flow_runs WHERE {FINISHED_ROOT} AND state_us < ? AND seq > ?"
        f"{state_filter} ORDER BY seq LIMIT {batch_size}"
    )


def _pruning(
    select_roots: str, args: Sequence[Any], dry_run: bool
) -> Callable[[sqlite3.Connection], tuple[list[int], int]]:
    return lambda conn: _prune_batch(conn, select_roots, args, dry_run)


def _prune_batch(
    conn: sqlite3.Connection, select_roots: str, args: Sequence[Any], dry_run: bool
) -> tuple[list[int], int]:
    """Prune (or count) one batch in one transaction: (flow runs, task runs, states, logs),
    and the last root seq it looked at."""
    conn.execute("BEGIN" if dry_run else "BEGIN IMMEDIATE")
    try:
        roots = conn.execute(select_roots, args).fetchall()
        if not roots:
            return [0, 0, 0, 0], 0
        flows = _select_in(conn, "SELECT seq, id FROM flow_runs WHERE root_flow_run_id", roots, 1)
        tasks = _select_in(conn, "SELECT seq, id FROM task_runs WHERE flow_run_id", flows, 1)
        verb = "SELECT count(*) FROM" if dry_run else "DELETE FROM"
        states = _change_in(conn, f"{verb} flow_run_states WHERE run_seq", flows, 0, dry_run)
        states += _change_in(conn, f"{verb} task_run_states WHERE run_seq", tasks, 0, dry_run)
        logs = _change_in(conn, f"{verb} logs WHERE flow_run_id", flows, 1, dry_run)
        # (a task run's lines carry its flow run's id; a line without one is found by task)
        orphan_logs = f"{verb} logs WHERE flow_run_id IS NULL AND task_run_id"
        logs += _change_in(conn, orphan_logs, tasks, 1, dry_run)
        _change_in(conn, f"{verb} task_runs WHERE seq", tasks, 0, dry_run)
        _change_in(conn, f"{verb} flow_runs WHERE seq", flows, 0, dry_run)
        conn.execute("COMMIT")
        return [len(flows), len(tasks), states, logs], roots[-1][0]
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _select_in(
    conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], column: int
) -> list[Any]:
    """``head IN (...)`` for the ``column`` of ``rows``, in chunks; all the rows found."""
    found: list[Any] = []
    for chunk in _chunks([row[column] for row in rows]):
        found += conn.execute(f"{head} IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
    return found


def _change_in(
    conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], column: int, count: bool
) -> int:
    """Run a DELETE (or a count) ``head IN (...)`` in chunks; how many rows it matched."""
    total = 0
    for chunk in _chunks([row[column] for row in rows]):
        cursor = conn.execute(f"{head} IN ({', '.join('?' * len(chunk))})", chunk)
        total += cursor.fetchone()[0] if count else cursor.rowcount
    return total


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _file_size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _records() -> Any:
    """The record classes, imported on the first read (see ``sqlite._records``)."""
    from wfkit.stores import records  # (lazy: defining them costs milliseconds)

    return records
