"""``wf runs show``: one flow run with its header, result or traceback, state history, the
tree of its task runs and child flow runs, the artifacts it published (its task runs' too),
and its last log lines.

A run with more than ``LIST_LIMIT`` task runs is summarised per task name (one indexed query,
however large the run) unless ``--all`` asks for every task run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from wfkit.cli._output import (
    Cell,
    Output,
    ago,
    duration,
    local_time,
    log_json,
    run_duration,
    run_json,
    state_cell,
    state_style,
    states_json,
    task_counts,
)
from wfkit.cli.artifacts import ROW_HEADERS, artifact_json, artifact_rows

if TYPE_CHECKING:
    from wfkit.states import State
    from wfkit.stores import RunStore
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun, TaskRunGroup

__all__ = ["LIST_LIMIT", "show_run"]

LIST_LIMIT = 200  # task runs listed one by one; more are summarised per task name
_LAST_LOGS = 20


def show_run(out: Output, store: RunStore, run: FlowRun, show_all: bool) -> None:
    """Print ``run`` (see the module docstring)."""
    children = _descendants(store, run)
    # The per-task summary comes first: one indexed query however large the run, and the
    # run's own counts by state are its sum.
    every_group = store.task_run_groups(run.id)
    counts = store.task_run_counts([child.id for child in children]) if children else {}
    counts[run.id] = _summed(every_group)
    big = not show_all and sum(counts[run.id].values()) > LIST_LIMIT
    groups = every_group if big else None
    tasks: dict[str, list[TaskRun]] = {}
    for flow_run in [run] if groups is not None else [run, *children]:
        if show_all or sum(counts.get(flow_run.id, {}).values()) <= LIST_LIMIT:
            tasks[flow_run.id] = store.task_runs(flow_run_id=flow_run.id)
    logs = store.logs_after(run.id, last=_LAST_LOGS).records
    error = _traceback(store, run, logs)
    made = store.artifacts(run_id=run.id)
    if out.json_mode:
        out.json(
            {
                **run_json(run),
                "states": states_json(run.states),
                "task_runs": counts.get(run.id, {}),
                "task_run_list": [_task_json(t) for t in tasks.get(run.id, [])],
                "task_groups": [_group_json(g) for g in groups or []],
                "child_flow_runs": [
                    {**run_json(c), "task_runs": counts.get(c.id, {})} for c in children
                ],
                "traceback": error,
                "artifacts": [artifact_json(a) for a in made],
                "logs": [log_json(record) for record in logs],
            }
        )
        return
    _header(out, run, error)
    _history(out, run.states)
    out.line()
    total = sum(counts.get(run.id, {}).values())
    summary = f"{total}: {task_counts(counts.get(run.id, {}))}" if total else "none"
    out.line(f"Task runs ({summary})", "bold")
    if groups is not None:
        _groups(out, groups)
        if children:
            out.line(f"  and {len(children)} child flow runs (--all lists them)", "dim")
    else:
        _tree(out, run, _Shown(children, tasks, counts), "  ")
    if made:  # (a run without artifacts shows no section for them)
        out.line()
        out.line(f"Artifacts ({len(made)})", "bold")
        out.table([f"  {ROW_HEADERS[0]}", *ROW_HEADERS[1:]], _indented(artifact_rows(made)))
    out.line()
    out.line(f"Last {_LAST_LOGS} log lines" if len(logs) == _LAST_LOGS else "Log lines", "bold")
    names = {t.id: t.name for t in tasks.get(run.id, [])}  # (ids stand in for a large run's)
    for record in logs:
        style = "red" if record.level >= logging.ERROR else ""
        first, *rest = record.message.splitlines() or [""]
        where = names.get(record.task_run_id, record.task_run_id) if record.task_run_id else "flow"
        out.cells(
            [
                Cell(local_time(record.timestamp, date=False), "dim"),
                Cell(f"{record.level_name:<8}", style),
                Cell(where, "cyan"),
                first,
            ]
        )
        for line in rest:
            out.line(f"    {line}")


def _indented(rows: list[list[Cell | str]]) -> list[list[Cell | str]]:
    return [[f"  {row[0]}", *row[1:]] for row in rows]


def _descendants(store: RunStore, run: FlowRun) -> list[FlowRun]:
    """The child flow runs of ``run``, nested ones too, in start order."""
    tree = store.flow_runs_in_tree(run.root_flow_run_id or run.id)
    below: set[str] = {run.id}
    found = []
    for other in tree:  # a child starts after its parent: one pass in start order
        if other.parent_flow_run_id in below and other.id != run.id:
            below.add(other.id)
            found.append(other)
    return found


def _summed(groups: Sequence[TaskRunGroup]) -> dict[str, int]:
    total: dict[str, int] = {}
    for group in groups:
        for name, n in group.states.items():
            total[name] = total.get(name, 0) + n
    return total


def _traceback(store: RunStore, run: FlowRun, last: Sequence[LogRecord]) -> str | None:
    """The traceback of a run that failed, as the engine logged it with its final state:
    among its ``last`` lines (where it mostly is), else its last error lines."""
    if not (run.state.is_failed() or run.state.is_crashed()):
        return None
    found = _with_traceback(run, last)
    if found is None:
        found = _with_traceback(
            run, store.logs_after(run.id, min_level=logging.ERROR, last=5).records
        )
    return found


def _with_traceback(run: FlowRun, records: Sequence[LogRecord]) -> str | None:
    for record in reversed(records):
        if (
            record.flow_run_id == run.id
            and record.task_run_id is None
            and "Traceback" in record.message
        ):
            return record.message
    return None


def _header(out: Output, run: FlowRun, error: str | None) -> None:
    now = datetime.now(UTC)
    out.cells([Cell("Flow run", "bold"), Cell(run.name, "bold cyan"), f"({run.id})"])
    fields: list[tuple[str, Cell | str]] = [
        ("Flow", run.flow_name + (f" (version {run.flow_version})" if run.flow_version else "")),
        ("Import path", run.flow_path or "-"),
        ("State", state_cell(run.state, with_message=True)),
        ("Parameters", json.dumps(run.parameters, default=repr) if run.parameters else "-"),
        ("Tags", ", ".join(run.tags) or "-"),
        ("Created", _when(run.states[0].timestamp, now)),
        ("Started", _when(run.start_time, now)),
        ("Ended", _when(run.end_time, now)),
        ("Duration", duration(run_duration(run, now))),
        ("Owner", f"{run.host or '?'} pid {run.pid}" if run.pid is not None else "-"),
    ]
    if run.parent_flow_run_id:
        fields.append(("Parent run", run.parent_flow_run_id))
    if run.state.data is not None:
        fields.append(("Result", _short(repr(run.state.data))))
    out.fields(fields)
    if error:
        out.line()
        out.line("Traceback", "bold red")
        for line in error.splitlines():
            out.line(f"  {line}")


def _when(moment: datetime | None, now: datetime) -> str:
    return "-" if moment is None else f"{local_time(moment)} ({ago(moment, now)})"


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _history(out: Output, states: Sequence[State]) -> None:
    out.line()
    out.line("State history", "bold")
    for i, state in enumerate(states):
        following = states[i + 1].timestamp if i + 1 < len(states) else None
        spent = _between(state.timestamp, following)
        cells: list[Cell | str] = [
            Cell(local_time(state.timestamp), "dim"),
            Cell(f"{state.name:<14}", state_style(state)),
            f"{spent:>8}",
        ]
        if state.message:
            cells.append(Cell(state.message, "dim"))
        out.cells(cells)


def _between(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    return duration((end - start).total_seconds())


class _Shown(NamedTuple):
    """What the tree of a run shows: its child flow runs (nested ones too), the task runs
    listed one by one (by flow run id), and every flow run's task counts by state."""

    children: Sequence[FlowRun]
    tasks: dict[str, list[TaskRun]]
    counts: dict[str, dict[str, int]]


def _tree(out: Output, run: FlowRun, shown: _Shown, indent: str) -> None:
    """Print ``run``'s task runs, each child flow run under the task run that called it (or
    after the task runs), and recursively their own."""
    children, tasks, counts = shown
    direct = [c for c in children if c.parent_flow_run_id == run.id]
    under_task: dict[str, list[FlowRun]] = {}
    for child in direct:
        under_task.setdefault(child.parent_task_run_id or "", []).append(child)
    items: list[Any] = list(tasks.get(run.id, []))
    if run.id not in tasks and counts.get(run.id):
        out.line(f"{indent}{task_counts(counts[run.id])} (--all lists them)", "dim")
    items += under_task.pop("", [])
    items += [c for rest in under_task.values() for c in rest if not _has_task(tasks, run, c)]
    width = max((len(t.name) for t in tasks.get(run.id, [])), default=0)
    for i, item in enumerate(items):
        last = i == len(items) - 1
        branch, deeper = ("└─", "   ") if last else ("├─", "│  ")
        if hasattr(item, "task_name"):
            out.cells([indent + branch, *_task_cells(item, width)])
            nested = under_task.get(item.id, [])
            for j, child in enumerate(nested):
                child_branch = "└─" if j == len(nested) - 1 else "├─"
                _child(out, child, shown, indent + deeper, child_branch)
        else:
            _child(out, item, shown, indent, branch)


def _has_task(tasks: dict[str, list[TaskRun]], run: FlowRun, child: FlowRun) -> bool:
    return any(t.id == child.parent_task_run_id for t in tasks.get(run.id, []))


def _child(out: Output, child: FlowRun, shown: _Shown, indent: str, branch: str) -> None:
    out.cells(
        [
            indent + branch,
            Cell(f"flow run {child.name}", "bold"),
            f"({child.flow_name})",
            state_cell(child.state),
            duration(run_duration(child)),
        ]
    )
    deeper = indent + ("   " if branch.startswith("└") else "│  ")
    _tree(out, child, shown, deeper)


def _task_cells(task: TaskRun, width: int) -> list[Cell | str]:
    cells: list[Cell | str] = [
        task.name.ljust(width),
        state_cell(task.state),
        duration(run_duration(task)),
    ]
    if task.run_count > 1:
        waits = _retry_waits(task.states)
        waited = f", waited {', '.join(waits)}" if waits else ""
        cells.append(Cell(f"{task.run_count} attempts{waited}", "yellow"))
    if any(s.name == "Cached" for s in task.states):
        cells.append(Cell("cache hit", "green"))
    return cells


def _retry_waits(states: Sequence[State]) -> list[str]:
    """How long each retry waited: from an AwaitingRetry state to the next running state."""
    waits = []
    for i, state in enumerate(states):
        if state.name == "AwaitingRetry":
            nxt = next((s for s in states[i + 1 :] if s.is_running()), None)
            if nxt is not None:
                waits.append(_between(state.timestamp, nxt.timestamp))
    return waits


def _groups(out: Output, groups: Sequence[TaskRunGroup]) -> None:
    rows = [
        [f"  {g.task_name}", str(g.runs), task_counts(g.states), str(g.attempts)] for g in groups
    ]
    out.table(["  TASK", "RUNS", "STATES", "ATTEMPTS"], rows)


def _task_json(task: TaskRun) -> dict[str, Any]:
    return {**run_json(task), "states": states_json(task.states)}


def _group_json(group: TaskRunGroup) -> dict[str, Any]:
    return {
        "task_name": group.task_name,
        "runs": group.runs,
        "states": group.states,
        "attempts": group.attempts,
    }
