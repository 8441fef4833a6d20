"""Reads the SQL stores (SQLite, PostgreSQL) build alike, written once: each store passes
its parameter mark (``?`` or ``%s``) and runs the queries through its own writer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wfkit.stores._sqlite_rows import _EPOCH, _from_us

if TYPE_CHECKING:
    from wfkit.stores.records import LogPage, LogRecord, TaskRunGroup

__all__ = ["log_page", "log_queries", "log_record", "records", "task_run_groups"]

_LOG_COLUMNS = "seq, flow_run_id, task_run_id, level, logger, message, at_us"


def log_queries(
    mark: str,
    run_id: str | None,
    after: int,
    min_level: int,
    task_name: str | None,
    last: int | None,
) -> list[tuple[str, list[Any]]]:
    """The queries of ``logs_after`` (see :meth:`wfkit.stores.RunReader.logs_after`): one
    per column a run id may be in, their rows for :func:`log_page`."""
    filters: list[str] = [f"seq > {mark}"]
    args: list[Any] = [int(after)]
    if min_level:
        filters.append(f"level >= {mark}")
        args.append(int(min_level))
    if task_name is not None:
        # Within one run, its task runs are found through the index on flow_run_id; a
        # task run's name (not indexed: one more index on every task run's write) is
        # then matched in those. Without a run, a name match reads every task run.
        within = f"(flow_run_id = {mark} OR id = {mark}) AND " if run_id is not None else ""
        filters.append(
            "task_run_id IN (SELECT id FROM task_runs WHERE "
            f"{within}(task_name = {mark} OR name = {mark}))"
        )
        args += [*([run_id, run_id] if run_id is not None else []), task_name, task_name]
    order = f"ORDER BY seq DESC LIMIT {last}" if last is not None else "ORDER BY seq"
    # One query per column a run id may be in: each then walks its own index in seq
    # order (an OR of the two would collect and sort every line of a large run).
    columns = ("flow_run_id", "task_run_id") if run_id is not None else (None,)
    return [
        (
            f"SELECT {_LOG_COLUMNS} FROM logs WHERE "
            f"{' AND '.join([*filters, *([f'{column} = {mark}'] if column else [])])} {order}",
            [*args, *([run_id] if column else [])],
        )
        for column in columns
    ]


def log_page(
    parts: Sequence[Sequence[Any]], cursor: int | None, after: int, last: int | None
) -> LogPage:
    """The page of the rows :func:`log_queries` read (``parts``), ``cursor`` being the
    highest log seq the store held then."""
    rows = sorted({row[0]: row for part in parts for row in part}.values())
    if last is not None:
        rows = rows[max(0, len(rows) - last) :] if last else []
    LogRecord, LogPage = records().LogRecord, records().LogPage
    return LogPage(
        records=tuple(log_record(LogRecord, row) for row in rows),
        cursor=max(int(after), cursor or 0),
    )


def log_record(cls: Any, row: Sequence[Any]) -> LogRecord:
    """The log record (class ``cls``) of a row of ``seq`` and the log columns."""
    _, flow_run_id, task_run_id, level, logger, message, at = row
    return cls(
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        level=level,
        logger=logger,
        message=message,
        timestamp=_from_us(at) or _EPOCH,  # a log line always had a timestamp
    )


def task_run_groups(rows: Sequence[Sequence[Any]]) -> list[TaskRunGroup]:
    """Task run groups in first-run order from rows of (task name, state name, count,
    attempts, first seq); a name and state may come in several rows (they are summed)."""
    groups: dict[str, list[Any]] = {}  # task name -> [first seq, runs, states, attempts]
    for task_name, state_name, n, attempts, first in rows:
        group = groups.setdefault(task_name, [first, 0, {}, 0])
        group[0] = min(group[0], first)
        group[1] += n
        group[2][state_name] = group[2].get(state_name, 0) + n
        group[3] += int(attempts or 0)
    TaskRunGroup = records().TaskRunGroup
    return [
        TaskRunGroup(task_name=name, runs=runs, states=states, attempts=attempts)
        for name, (_, runs, states, attempts) in sorted(groups.items(), key=lambda item: item[1][0])
    ]


def records() -> Any:
    """The record classes, imported on the first read (see ``sqlite._records``)."""
    from wfkit.stores import records as module  # (lazy: defining them costs milliseconds)

    return module
