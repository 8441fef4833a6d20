"""``wf runs``: list, show, follow, watch and re-run flow runs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from wfkit.cli._common import (
    Level,
    When,
    json_option,
    open_for_cli,
    resolve_run,
    store_option,
)
from wfkit.cli._output import (
    Cell,
    Output,
    duration,
    echo_error,
    local_time,
    log_json,
    rich_table,
    run_duration,
    run_json,
    state_cell,
    task_counts,
)

if TYPE_CHECKING:
    from wfkit.stores import RunStore
    from wfkit.stores.records import FlowRun, LogRecord

__all__ = ["runs"]

_LS_HEADERS = ("RUN", "FLOW", "STATE", "STARTED", "DURATION", "TASK RUNS", "ID")
_FOLLOW_POLL_SECONDS = 0.25  # how often --follow looks for new lines (real time)
_NAMED_TASKS = 5000  # log lines of a run with more task runs show task run ids


_flow_option = click.option("--flow", "flow_name", metavar="NAME", help="Only runs of this flow.")


@click.group()
def runs() -> None:
    """See, follow and re-run flow runs."""


# wf runs ls ---------------------------------------------------------------------------------
@runs.command("ls")
@_flow_option
@click.option(
    "--state",
    "states",
    multiple=True,
    metavar="STATE",
    help="Only runs in this state (name or type, any case); repeat for several.",
)
@click.option(
    "--tag", "tags", multiple=True, metavar="TAG", help="Only runs with this tag; repeatable."
)
@click.option("--since", type=When(), help="Only runs started since WHEN (ISO time, or 2h, 3d).")
@click.option("--until", type=When(), help="Only runs started before WHEN.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Show the most recent N runs (newest last); 0 shows all.",
)
@json_option
@store_option
def ls(
    flow_name: str | None,
    states: tuple[str, ...],
    tags: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    limit: int,
    json_mode: bool,
    store_url: str | None,
) -> None:
    """List flow runs, oldest first and the newest last."""
    out = Output(json_mode)
    store = open_for_cli(store_url)
    found = find_runs(store, flow_name, states, tags, since, until, limit or None)
    counts = store.task_run_counts([run.id for run in found])
    if json_mode:
        out.json([{**run_json(run), "task_runs": counts.get(run.id, {})} for run in found])
        return
    if not found:
        echo_error(
            "No flow runs match."
            if (flow_name or states or tags or since or until)
            else "No flow runs yet."
        )
        return
    out.table(_LS_HEADERS, ls_rows(found, counts))


def find_runs(
    store: RunStore,
    flow_name: str | None,
    states: Sequence[str],
    tags: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
) -> list[FlowRun]:
    """The most recent ``limit`` runs that match (any of ``states``), in start order."""
    query: dict[str, Any] = {
        "flow_name": flow_name,
        "tags": list(tags) or None,
        "since": since,
        "until": until,
        "limit": limit,
    }
    if len(states) <= 1:
        return store.flow_runs(state=states[0] if states else None, **query)
    merged = {run.id: run for state in states for run in store.flow_runs(state=state, **query)}
    ordered = sorted(merged.values(), key=_start_key)
    return ordered[max(0, len(ordered) - limit) :] if limit else ordered


def _start_key(run: FlowRun) -> datetime:
    start = run.start_time or run.states[0].timestamp
    if start is None:
        return datetime.min.replace(tzinfo=UTC)
    return start if start.tzinfo else start.replace(tzinfo=UTC)


def ls_rows(found: Sequence[FlowRun], counts: dict[str, dict[str, int]]) -> list[list[Any]]:
    """The rows of the runs table."""
    return [
        [
            run.name,
            run.flow_name,
            state_cell(run.state),
            local_time(run.start_time),
            duration(run_duration(run)),
            task_counts(counts.get(run.id, {})),
            run.id,
        ]
        for run in found
    ]


# wf runs show -------------------------------------------------------------------------------
@runs.command("show")
@click.argument("run_ref", metavar="RUN")
@click.option("--all", "show_all", is_flag=True, help="List every task run, however many.")
@json_option
@store_option
def show(run_ref: str, show_all: bool, json_mode: bool, store_url: str | None) -> None:
    """Show one flow run: RUN is its id, a unique id prefix, or its name."""
    from wfkit.cli._show import show_run  # (lazy: only `show` needs it)

    store = open_for_cli(store_url)
    show_run(Output(json_mode), store, resolve_run(store, run_ref), show_all)


# wf runs logs -------------------------------------------------------------------------------
@runs.command("logs")
@click.argument("run_ref", metavar="RUN")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option("--level", type=Level(), default="DEBUG", help="Only lines at LEVEL or above.")
@click.option("--task", "task_name", metavar="NAME", help="Only lines of this task (or task run).")
@json_option
@store_option
def logs(
    run_ref: str,
    follow: bool,
    level: int,
    task_name: str | None,
    json_mode: bool,
    store_url: str | None,
) -> None:
    """Print the log lines of a flow run (with its task runs').

    With --json: a JSON array; with --follow too, one JSON object per line.
    """
    out = Output(json_mode)
    store = open_for_cli(store_url)
    run = resolve_run(store, run_ref)
    names = _TaskNames(store, run.id)
    page = store.logs_after(run.id, min_level=level, task_name=task_name)
    if json_mode and not follow:
        out.json([log_json(record) for record in page.records])
        return
    _print_logs(out, page.records, names)
    cursor, done = page.cursor, run.state.is_final()
    try:
        while follow and not done:
            time.sleep(_FOLLOW_POLL_SECONDS)
            done = store.flow_run(run.id).state.is_final()  # then read what it logged last
            page = store.logs_after(run.id, after=cursor, min_level=level, task_name=task_name)
            _print_logs(out, page.records, names)
            cursor = page.cursor
    except KeyboardInterrupt:  # Ctrl-C ends following; not an error
        return


class _TaskNames:
    """Task run names by id for log lines, read once a line of an unknown task run shows up;
    a run with more than ``_NAMED_TASKS`` task runs shows ids instead (reading every task
    run of a 100,000-task run to name a few lines would take seconds)."""

    def __init__(self, store: RunStore, flow_run_id: str) -> None:
        self.store, self.flow_run_id = store, flow_run_id
        self.names: dict[str, str] = {}
        self.many: bool | None = None  # whether the run has too many task runs to name

    def __call__(self, task_run_id: str) -> str:
        if task_run_id not in self.names:
            if self.many is None:
                counts = self.store.task_run_counts([self.flow_run_id])
                self.many = sum(counts.get(self.flow_run_id, {}).values()) > _NAMED_TASKS
            if self.many:
                return task_run_id
            tasks = self.store.task_runs(flow_run_id=self.flow_run_id)
            self.names.update((t.id, t.name) for t in tasks)
        return self.names.get(task_run_id, task_run_id)


def _print_logs(out: Output, records: Sequence[LogRecord], names: _TaskNames) -> None:
    for record in records:
        if out.json_mode:
            out.json_line(log_json(record))
            continue
        where = names(record.task_run_id) if record.task_run_id else "flow"
        style = "red" if record.level >= 40 else "yellow" if record.level >= 30 else ""
        out.cells(
            [
                Cell(local_time(record.timestamp), "dim"),
                Cell(f"{record.level_name:<8}", style),
                Cell(where, "cyan"),
                record.message,
            ]
        )


# wf runs watch ------------------------------------------------------------------------------
@runs.command("watch")
@_flow_option
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Runs shown."
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option(
    "--count", type=click.IntRange(min=0), default=0, help="Stop after N refreshes (0: never)."
)
@click.option("--json", "json_mode", is_flag=True, hidden=True)
@store_option
def watch(
    flow_name: str | None,
    limit: int,
    interval: float,
    count: int,
    json_mode: bool,
    store_url: str | None,
) -> None:
    """A live table of the running and most recent flow runs (Ctrl-C to stop)."""
    if json_mode:
        raise click.UsageError(
            "--json cannot be combined with `wf runs watch`, a live table; use "
            "`wf runs ls --json` for the runs as JSON."
        )
    out = Output()
    store = open_for_cli(store_url)

    def table() -> tuple[list[FlowRun], list[list[Any]]]:
        found = find_runs(store, flow_name, (), (), None, None, limit)
        return found, ls_rows(found, store.task_run_counts([run.id for run in found]))

    try:
        if out.rich:
            from rich.live import Live  # (lazy: see _output)

            with Live(console=out.console, auto_refresh=False) as live:
                for n in _refreshes(count):
                    _, rows = table()
                    title = f"Flow runs at {local_time(datetime.now(UTC), date=False)}"
                    live.update(rich_table(_LS_HEADERS, _cells(rows), title), refresh=True)
                    _pause(n, count, interval)
        else:
            for n in _refreshes(count):
                _, rows = table()
                out.table(_LS_HEADERS, rows, f"Flow runs at {local_time(datetime.now(UTC))}")
                out.line()
                _pause(n, count, interval)
    except KeyboardInterrupt:
        return


def _refreshes(count: int) -> range | Any:
    import itertools  # (only watch loops)

    return range(count) if count else itertools.count()


def _pause(n: int, count: int, interval: float) -> None:
    if not count or n + 1 < count:
        time.sleep(interval)


def _cells(rows: list[list[Any]]) -> list[list[Cell]]:
    return [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]


# wf runs retry ------------------------------------------------------------------------------
@runs.command("retry")
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--entrypoint",
    metavar="FILE.py:FLOW",
    help="Where the flow is, if not where it was recorded: a file and the flow's name in it.",
)
@store_option
def retry(run_ref: str, entrypoint: str | None, store_url: str | None) -> None:
    """Run a flow run's flow again, in this process, with its recorded parameters.

    Exits 0 only if the new run completes.
    """
    from wfkit.cli._retry import rerun  # (lazy: only `retry` runs flows)

    store = open_for_cli(store_url, write=True)
    new_run = rerun(store, resolve_run(store, run_ref), entrypoint)
    Output().cells(
        [
            "New flow run",
            Cell(new_run.name, "bold"),
            f"({new_run.id}):",
            state_cell(new_run.state, True),
        ]
    )
    if not new_run.state.is_completed():
        raise SystemExit(1)
