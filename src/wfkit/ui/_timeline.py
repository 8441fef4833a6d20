"""The geometry of a flow run's timeline and dependency graph, computed here and drawn as SVG
by the templates (``_timeline.html``, ``_graph.html``): no JavaScript draws anything.

The timeline has a row per task run and child flow run, in start order. In a row, each
attempt is a bar from a ``Running`` state to the state after it (coloured by that state), each
retry wait a hatched bar from ``AwaitingRetry`` to the next ``Running``, and each cache hit a
diamond. A run too large to draw run by run is drawn per task name instead
(:func:`aggregate`), from the store's per-task summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wfkit.ui._format import aware, duration, moment, state_class

__all__ = ["MAX_DRAWN", "Graph", "Timeline", "aggregate", "graph", "timeline"]

MAX_DRAWN = 500
"""Task runs above which a run's timeline is drawn per task name, and its graph not drawn."""

LABEL_W, PLOT_W, ROW_H = 220, 760, 20
_ENDED = {"AwaitingRetry": "failed"}  # an attempt that ended waiting for a retry had failed


@dataclass(slots=True)
class Bar:
    """A rectangle of the timeline: ``kind`` is its CSS class, ``title`` its tooltip."""

    x: float
    width: float
    kind: str
    title: str


@dataclass(slots=True)
class Row:
    """One line of the timeline: a run (or, aggregated, a task name) and its shapes."""

    label: str
    href: str | None
    y: float
    bars: list[Bar] = field(default_factory=list)
    marks: list[Bar] = field(default_factory=list)  # cache hits: diamonds at x
    note: str = ""


@dataclass(slots=True)
class Timeline:
    """What the timeline template draws."""

    rows: list[Row]
    ticks: list[tuple[float, str]]
    aggregated: bool
    width: int = LABEL_W + PLOT_W + 130  # (room for a note right of the plot)
    label_w: int = LABEL_W

    @property
    def height(self) -> float:
        return ROW_H * (len(self.rows) + 2)


def timeline(
    flow_run: Any, task_runs: Sequence[Any], children: Sequence[Any], now: datetime
) -> Timeline:
    """The timeline of ``flow_run``: a row per task run and child flow run, in start order."""
    runs: list[tuple[Any, str]] = [(t, f"/task-runs/{flow_run.id}/{t.id}") for t in task_runs]
    runs += [(c, f"/runs/{c.id}") for c in children]
    runs.sort(key=lambda pair: _first_time(pair[0]))
    times = [
        aware(s.timestamp)
        for r in (flow_run, *task_runs, *children)
        for s in r.states
        if s.timestamp
    ]
    t0 = min(times, default=now)
    t1 = max([*times, *(() if flow_run.state.is_final() else (now,))], default=now)
    span = max((t1 - t0).total_seconds(), 1e-3)

    def x(moment_: datetime) -> float:
        return LABEL_W + (aware(moment_) - t0).total_seconds() / span * PLOT_W

    rows = []
    for i, (run, href) in enumerate(runs):
        label = run.name if hasattr(run, "task_name") else f"flow {run.name}"
        row = Row(label=label, href=href, y=ROW_H * (i + 1))
        _draw(row, run, x, now)
        rows.append(row)
    ticks = [
        (LABEL_W + PLOT_W * k / 4, f"+{duration(span * k / 4)}" if k else moment(t0))
        for k in range(5)
    ]
    return Timeline(rows=rows, ticks=ticks, aggregated=False)


def _first_time(run: Any) -> datetime:
    for state in run.states:
        if state.timestamp is not None:
            return aware(state.timestamp)
    return datetime.max.replace(tzinfo=UTC)  # (never recorded a time: drawn last)


def _draw(row: Row, run: Any, x: Any, now: datetime) -> None:
    """Add ``run``'s attempts, retry waits and cache hits to ``row``."""
    states = [s for s in run.states if s.timestamp is not None]
    attempt = 0
    for i, state in enumerate(states):
        after = states[i + 1] if i + 1 < len(states) else None
        end = after.timestamp if after is not None else (None if run.state.is_final() else now)
        if state.name == "Cached":
            left = x(state.timestamp)
            row.marks.append(
                Bar(left, 0, "cached", f"{run.name}: cache hit at {moment(state.timestamp)}")
            )
        elif state.is_running() and end is not None:
            attempt += 1
            kind = "running" if after is None else _ENDED.get(after.name, state_class(after))
            outcome = after.name if after is not None else "still running"
            seconds = (aware(end) - aware(state.timestamp)).total_seconds()
            row.bars.append(
                Bar(
                    x(state.timestamp),
                    max(x(end) - x(state.timestamp), 2.0),
                    kind,
                    f"{run.name}: attempt {attempt}, {duration(seconds)}, then {outcome}",
                )
            )
        elif state.name == "AwaitingRetry" and end is not None:
            seconds = (aware(end) - aware(state.timestamp)).total_seconds()
            row.bars.insert(  # (first: drawn under the attempts, which may touch it)
                0,
                Bar(
                    x(state.timestamp),
                    max(x(end) - x(state.timestamp), 2.0),
                    "waiting",
                    f"{run.name}: retry wait, {duration(seconds)}",
                ),
            )
    row.note = f"{attempt} attempts" if attempt > 1 else ""


def aggregate(flow_run_id: str, groups: Sequence[Any]) -> Timeline:
    """A run too large to draw run by run: a row per task name, its bar split by how many of
    its task runs are in each state (lengths relative to the task with the most runs)."""
    most = max((g.runs for g in groups), default=1) or 1
    rows = []
    for i, group in enumerate(groups):
        row = Row(label=group.task_name, href=None, y=ROW_H * (i + 1))
        left = float(LABEL_W)
        for name, n in sorted(group.states.items(), key=lambda item: -item[1]):
            width = n / most * PLOT_W
            row.bars.append(
                Bar(left, max(width, 1.0), state_class(name), f"{group.task_name}: {n} {name}")
            )
            left += width
        row.note = f"{group.runs} runs, {group.attempts} attempts"
        rows.append(row)
    return Timeline(rows=rows, ticks=[], aggregated=True)


@dataclass(slots=True)
class Node:
    """A task run in the dependency graph."""

    x: float
    y: float
    label: str
    kind: str
    href: str
    title: str


@dataclass(slots=True)
class Graph:
    """What the graph template draws: boxes, and an SVG path per upstream edge."""

    nodes: list[Node]
    edges: list[str]
    width: float
    height: float


NODE_W, NODE_H, COL_W, LINE_H = 170, 26, 210, 36


def graph(flow_run_id: str, task_runs: Sequence[Any]) -> Graph:
    """The task runs of a flow run laid out in columns by depth (a task run sits one column
    right of its deepest upstream), with an edge from each upstream in the run."""
    depth: dict[str, int] = {}
    by_id = {t.id: t for t in task_runs}
    for task in task_runs:  # upstreams are created before the runs that wait on them
        ups = [depth.get(u, 0) for u in task.upstream_ids if u in by_id]
        depth[task.id] = 1 + max(ups) if ups else 0
    columns: dict[int, int] = {}
    nodes, places = [], {}
    for task in task_runs:
        col = depth[task.id]
        row = columns.get(col, 0)
        columns[col] = row + 1
        places[task.id] = (10 + col * COL_W, 10 + row * LINE_H)
        label = task.name if len(task.name) <= 22 else task.name[:21] + "…"
        nodes.append(
            Node(
                *places[task.id],
                label=label,
                kind=state_class(task.state),
                href=f"/task-runs/{flow_run_id}/{task.id}",
                title=f"{task.name}: {task.state.name}",
            )
        )
    edges = []
    for task in task_runs:
        x2, y2 = places[task.id]
        for up in task.upstream_ids:
            if up in places:
                left, top = places[up]
                x1, y1, y2m = left + NODE_W, top + NODE_H / 2, y2 + NODE_H / 2
                mid = (x1 + x2) / 2
                edges.append(
                    f"M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2m:.0f} {x2:.0f},{y2m:.0f}"
                )
    width = 20 + (max(columns, default=0) + 1) * COL_W
    height = 20 + max(columns.values(), default=0) * LINE_H
    return Graph(nodes=nodes, edges=edges, width=width, height=height)
