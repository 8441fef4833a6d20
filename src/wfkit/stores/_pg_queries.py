"""The PostgreSQL store's reads for ``wf`` and the web page, and its batched prune.

Mixed into :class:`~wfkit.stores.postgres.PostgresStore`, as
:mod:`wfkit.stores._sqlite_queries` is into the SQLite store, with the same indexes behind
the same queries (``_pg_schema``). Read-only, a dead owner's live runs are shown ``Crashed``
in the run records, in the counts by state and in the summary (each count query also groups
by the owner of the runs that are not final: :data:`LIVE_OWNER`), and the summary leaves the
dead owners out of its live ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from wfkit.exceptions import ConfigurationError
from wfkit.stores._base import (
    check_batch_size,
    check_ids,
    check_limit,
    check_moment,
    check_states,
)
from wfkit.stores._pg_schema import SCHEMA_VERSION, PgUrl
from wfkit.stores._sql_reads import log_page, log_queries, records, task_run_groups
from wfkit.stores._sqlite_rows import _from_us, _to_us
from wfkit.stores._sqlite_schema import FINISHED_ROOT, NOT_FINAL

if TYPE_CHECKING:
    from datetime import datetime

    from wfkit.stores._pg_writer import PgWriter
    from wfkit.stores.records import (
        FlowRun,
        LogPage,
        PruneResult,
        StoreSummary,
        TaskRunGroup,
    )

__all__ = ["LIVE_OWNER", "PgQueries", "records", "summed"]

#: The owner of a run that is not final (else NULL): a count grouped by it can show the runs
#: of a dead owner Crashed (see :meth:`PgQueries._shown_states`).
LIVE_OWNER = f"CASE WHEN {NOT_FINAL} THEN owner END"

_START = "coalesce(start_us, first_us)"

#: The horizon of a read: the oldest transaction still running when its snapshot was taken
#: (the next one to start if none runs). Every transaction below it has ended, so the set of
#: log lines written below it is final; a line of a later transaction, committed or not, is
#: left for a later read, whatever its seq. A long write transaction of another application
#: on the same server holds the horizon back, and so delays (never loses) a follower's lines.
# The oldest transaction still running that may write this database's logs: the snapshot's
# running transactions (xids are numbered across the whole server), less those of sessions
# on other databases, which cannot write these tables; with none, the snapshot's xmax.
# Without that filter, any long transaction of another application on the same server held
# back every line written after it began (a follow waited, a plain read missed them).
# (backend_xid is the 32-bit form of the snapshot's 64-bit xids; a session whose xid is not
# shown, another role's, stays counted: lines wait for it rather than being skipped.)
_HORIZON = """
SELECT coalesce(
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(snap.s) AS x WHERE NOT EXISTS (
        SELECT 1 FROM pg_stat_activity AS a
        WHERE a.datname IS DISTINCT FROM current_database() AND a.backend_xid IS NOT NULL
        AND a.backend_xid::text::bigint = x::text::bigint % 4294967296)),
    pg_snapshot_xmax(snap.s)::text::bigint)
FROM (SELECT pg_current_snapshot() AS s) AS snap
"""
_HELD_BACK_PAUSES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.3)  # seconds; ~1 s in all


class PgQueries:
    """The reads of the :class:`~wfkit.stores.RunReader` protocol that ``wf`` needs."""

    _w: PgWriter
    _pg: PgUrl
    url: str

    def find_flow_runs(self, ref: str, limit: int = 10) -> list[FlowRun]:
        """Flow runs with id ``ref``, an id starting with ``ref``, or the name ``ref``."""
        ref, most = str(ref), check_limit(limit)
        if not ref or most == 0:
            return []
        prefix = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = (
            f"WHERE id LIKE %s OR name = %s ORDER BY id = %s DESC, {_START} NULLS FIRST, seq"
            + (f" LIMIT {most}" if most is not None else "")
        )
        return self._w.read_runs(records().FlowRun, where, [prefix, ref, ref])

    def flow_runs_in_tree(self, root_flow_run_id: str) -> list[FlowRun]:
        """The flow runs whose root flow run is ``root_flow_run_id``, in start order."""
        where = f"WHERE root_flow_run_id = %s ORDER BY {_START} NULLS FIRST, seq"
        return self._w.read_runs(records().FlowRun, where, [str(root_flow_run_id)])

    def task_run_counts(self, flow_run_ids: Collection[str]) -> dict[str, dict[str, int]]:
        """Task runs by state name, for each given flow run id that has task runs."""
        ids = check_ids(flow_run_ids)
        if not ids:
            return {}
        sql = (
            f"SELECT flow_run_id, state_name, count(*), {LIVE_OWNER} FROM task_runs "
            "WHERE flow_run_id = ANY(%s) GROUP BY flow_run_id, state_name, 4"
        )
        self._w.record_crashed()  # (read-only: nothing is recorded, _shown_states shows it)
        counts: dict[str, dict[str, int]] = {}
        for run_id, state_name, n in self._shown_states(self._w.read([(sql, [ids])])[0], 1):
            by_state = counts.setdefault(run_id, {})
            by_state[state_name] = by_state.get(state_name, 0) + n
        return counts

    def _shown_states(self, rows: list[Any], state_at: int) -> list[tuple[Any, ...]]:
        """``rows`` (their last column :data:`LIVE_OWNER`) without that column, the state
        name at ``state_at`` shown ``Crashed`` where the owner is gone (read-only)."""
        dead = self._w.dead_among({row[-1] for row in rows if row[-1] is not None})
        return [
            (
                *row[:state_at],
                "Crashed" if row[-1] in dead else row[state_at],
                *row[state_at + 1 : -1],
            )
            for row in rows
        ]

    def task_run_groups(self, flow_run_id: str) -> list[TaskRunGroup]:
        """The task runs of one flow run, summarised per task name in first-run order."""
        sql = (
            "SELECT task_name, state_name, count(*), sum(run_count), min(seq), "
            f"{LIVE_OWNER} FROM task_runs WHERE flow_run_id = %s GROUP BY task_name, state_name, 6"
        )
        self._w.record_crashed()  # (read-only: nothing is recorded, _shown_states shows it)
        (rows,) = self._w.read([(sql, [str(flow_run_id)])])
        return task_run_groups(self._shown_states(rows, 1))

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
        :meth:`wfkit.stores.RunReader.logs_after`).

        Only settled lines, in a window of transactions: those written from the last read's
        horizon (``after``) up to this read's (:data:`_HORIZON`), which is the cursor. A
        line's seq cannot be the cursor: two processes take seqs, then commit in either
        order, and a follower past the higher seq would never see the lower one. A committed
        matching line held back (an older transaction still runs) makes the read wait for
        it a little, up to about a second, so that a follower's last read after the run
        ended finds it.
        """
        last = check_limit(last, "last")
        after = int(after)
        selects = log_queries("%s", run_id, 0, min_level, task_name, last)
        self._w.flush()
        for pause in (*_HELD_BACK_PAUSES, None):
            parts, cursor, held_back = self._w.call(_log_window(selects, after), "read logs")
            if pause is None or not held_back:
                break
            threading.Event().wait(pause)
        return log_page(parts, cursor, after, last)

    def summary(self) -> StoreSummary:
        """What the store holds, with the database's name, host and schema version."""
        self._w.record_crashed()  # (read-only: nothing is recorded, _shown_states shows it)
        by_state = f"SELECT state_name, count(*), {LIVE_OWNER} FROM {{}} GROUP BY 1, 3"
        owners = (
            "SELECT o.host, o.pid, o.heartbeat_us, count(*), o.id FROM flow_runs f JOIN owners o "
            f"ON o.id = f.owner WHERE f.{NOT_FINAL} GROUP BY o.id ORDER BY o.host, o.pid"
        )
        flows, tasks, ((logs,),), ((cache,),), live = self._w.read(
            [
                (by_state.format("flow_runs"), ()),
                (by_state.format("task_runs"), ()),
                ("SELECT count(*) FROM logs", ()),
                ("SELECT count(*) FROM cache", ()),
                (owners, ()),
            ]
        )
        rec = records()
        gone = self._w.dead_among({row[-1] for row in live})  # (read-only; else none)
        return rec.StoreSummary(
            url=self.url,
            flow_runs=summed(self._shown_states(flows, 0)),
            task_runs=summed(self._shown_states(tasks, 0)),
            logs=logs,
            cache_records=cache,
            owners=tuple(
                rec.LiveOwner(host=h, pid=p, heartbeat=_from_us(at), live_runs=n)
                for h, p, at, n, owner in live
                if owner not in gone
            ),
            details={
                "host": self._pg.host,
                "database": self._pg.database,
                "schema_version": SCHEMA_VERSION,
            },
        )

    def check(self) -> list[str]:
        """wfkit's consistency checks (PostgreSQL keeps its own storage consistent)."""
        checks: list[tuple[str, Sequence[Any]]] = []
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
        found = self._w.read(checks)
        problems: list[str] = []
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
        if self._w.read_only and not dry_run:
            raise self._w.read_only_error("prune runs")
        check_batch_size(batch_size)
        cutoff = check_moment("before", before)
        if cutoff is None:
            raise ConfigurationError("before=None is invalid: pass the datetime to prune before.")
        wanted = check_states(states)
        folded = [name.casefold() for name in wanted or ()]
        state_filter = (
            " AND (lower(state_name) = ANY(%s) OR lower(state_type) = ANY(%s))" if wanted else ""
        )
        select = (
            f"SELECT seq, id FROM flow_runs WHERE {FINISHED_ROOT} AND state_us < %s AND seq > %s"
            f"{state_filter} ORDER BY seq LIMIT {batch_size}"
        )
        totals = [0, 0, 0, 0]
        after = 0
        if not self._w.read_only:
            self._w.flush()
        while True:
            args = [_to_us(cutoff), after, *([folded, folded] if wanted else [])]
            counts, after = self._w.call(_pruning(select, args, dry_run), "prune runs")
            if not counts[0]:
                break
            totals = [t + c for t, c in zip(totals, counts, strict=True)]
        flow_runs, task_runs, states_, logs = totals
        return records().PruneResult(
            flow_runs=flow_runs, task_runs=task_runs, states=states_, logs=logs
        )


def _log_window(
    selects: list[tuple[str, list[Any]]], after: int
) -> Callable[[Any], tuple[list[list[Any]], int, bool]]:
    """In one snapshot: the lines ``selects`` (from :func:`log_queries`) find among those
    written from the horizon ``after`` to this snapshot's, that horizon, and whether a
    matching line is committed above it (held back).

    The horizon is read first and passed as a value, not a subquery: the planner then knows
    how few lines lie above it, and reads them through the BRIN index on ``xact`` rather than
    the whole table."""

    def read(conn: Any) -> tuple[list[list[Any]], int, bool]:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            (horizon,) = conn.execute(_HORIZON).fetchone()
            window = "coalesce(xact, 0) < %s" + (" AND xact >= %s" if after else "")
            bounds = [horizon, *([after] if after else [])]
            parts, held_back = [], False
            for sql, args in selects:
                parts.append(conn.execute(_within(sql, window), [*bounds, *args]).fetchall())
                held = f"SELECT EXISTS ({_within(sql, 'xact >= %s')})"
                held_back = held_back or conn.execute(held, [horizon, *args]).fetchone()[0]
            return parts, horizon, held_back

    return read


def _within(sql: str, condition: str) -> str:
    """``sql`` (a select of the logs with a WHERE clause) with ``condition`` added first."""
    head, found, tail = sql.partition(" FROM logs WHERE ")
    assert found, sql  # (log_queries always filters on seq)
    return f"{head}{found}{condition} AND {tail}"


def summed(rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """{state name: count} of (state name, count) rows, a name possibly in several."""
    counts: dict[str, int] = {}
    for state_name, n in rows:
        counts[state_name] = counts.get(state_name, 0) + n
    return counts


def _pruning(
    select_roots: str, args: Sequence[Any], dry_run: bool
) -> Callable[[Any], tuple[list[int], int]]:
    return lambda conn: _prune_batch(conn, select_roots, args, dry_run)


def _prune_batch(
    conn: Any, select_roots: str, args: Sequence[Any], dry_run: bool
) -> tuple[list[int], int]:
    """Prune (or count) one batch in one transaction: (flow runs, task runs, states, logs),
    and the last root seq it looked at."""
    with conn.transaction():
        roots = conn.execute(select_roots, args).fetchall()
        if not roots:
            return [0, 0, 0, 0], 0
        root_ids = [r[1] for r in roots]
        flows = conn.execute(
            "SELECT seq, id FROM flow_runs WHERE root_flow_run_id = ANY(%s)", (root_ids,)
        ).fetchall()
        flow_seqs, flow_ids = [f[0] for f in flows], [f[1] for f in flows]
        tasks = conn.execute(
            "SELECT seq, id FROM task_runs WHERE flow_run_id = ANY(%s)", (flow_ids,)
        ).fetchall()
        task_seqs, task_ids = [t[0] for t in tasks], [t[1] for t in tasks]

        def change(table_and_column: str, values: list[Any]) -> int:
            if dry_run:
                sql = f"SELECT count(*) FROM {table_and_column} = ANY(%s)"
                return int(conn.execute(sql, (values,)).fetchone()[0])
            return int(
                conn.execute(f"DELETE FROM {table_and_column} = ANY(%s)", (values,)).rowcount
            )

        states = change("flow_run_states WHERE run_seq", flow_seqs)
        states += change("task_run_states WHERE run_seq", task_seqs)
        logs = change("logs WHERE flow_run_id", flow_ids)
        # (a task run's lines carry its flow run's id; a line without one is found by task)
        logs += change("logs WHERE flow_run_id IS NULL AND task_run_id", task_ids)
        change("task_runs WHERE seq", task_seqs)
        change("flow_runs WHERE seq", flow_seqs)
        return [len(flows), len(tasks), states, logs], roots[-1][0]
