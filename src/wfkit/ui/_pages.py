"""What the flow page and the store page show, computed from the reader's records: a flow's
success rate and p50/p95 durations over its recent runs, and the store's summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wfkit.stores import RunReader
from wfkit.ui._format import duration, moment, run_seconds

__all__ = ["RECENT", "flow_page", "percentile", "store_page"]

RECENT = 500
"""The most recent runs of a flow its statistics are computed over."""

_BUCKETS = 20  # points of the duration chart
_CHART_W, _CHART_H = 760, 160


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def flow_page(store: RunReader, flow_name: str) -> dict[str, Any] | None:
    """The flow page's context: its recent runs, success rate, p50/p95 durations and their
    chart; None if the store has no run of that flow."""
    runs = store.flow_runs(flow_name=flow_name, limit=RECENT)
    if not runs:
        return None
    finished = [r for r in runs if r.state.is_final()]
    completed = [r for r in finished if r.state.is_completed()]
    seconds = [s for r in completed if (s := run_seconds(r)) is not None]
    newest = runs[::-1][:50]
    return {
        "flow_name": flow_name,
        "runs": newest,
        "task_counts": store.task_run_counts([r.id for r in newest]),
        "counts": store.flow_run_counts(flow_name=flow_name),
        "considered": len(runs),
        "finished": len(finished),
        "success_rate": len(completed) / len(finished) if finished else None,
        "p50": duration(percentile(seconds, 50)),
        "p95": duration(percentile(seconds, 95)),
        "chart": _chart(completed),
    }


def _chart(completed: Sequence[Any]) -> dict[str, Any] | None:
    """The p50 and p95 durations of the completed runs in up to 20 buckets of equal size, in
    start order, as two SVG polylines."""
    timed = [(r, s) for r in completed if (s := run_seconds(r)) is not None]
    if len(timed) < 2:
        return None
    size = math.ceil(len(timed) / _BUCKETS)
    buckets = [timed[i : i + size] for i in range(0, len(timed), size)]
    p50 = [percentile([s for _, s in b], 50) or 0.0 for b in buckets]
    p95 = [percentile([s for _, s in b], 95) or 0.0 for b in buckets]
    top = max(p95) or 1.0
    step = _CHART_W / max(len(buckets) - 1, 1)

    def line(values: list[float]) -> str:
        return " ".join(
            f"{40 + i * step:.1f},{10 + (1 - v / top) * _CHART_H:.1f}" for i, v in enumerate(values)
        )

    return {
        "p50": line(p50),
        "p95": line(p95),
        "top": duration(top),
        "first": moment(buckets[0][0][0].start_time),
        "last": moment(buckets[-1][-1][0].start_time),
        "width": _CHART_W + 60,
        "height": _CHART_H + 40,
    }


def store_page(store: RunReader) -> dict[str, Any]:
    """The store page's context: what ``wf store info`` shows."""
    summary = store.summary()
    return {
        "summary": summary,
        "flow_total": sum(summary.flow_runs.values()),
        "task_total": sum(summary.task_runs.values()),
    }
