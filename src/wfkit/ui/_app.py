"""The pages: one Starlette route each, reading through the store's
:class:`~wfkit.stores.RunReader` methods and rendering a Jinja template.

The handlers are plain functions (Starlette runs them in its thread pool); each reads what
its page needs with a few indexed queries and never writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from wfkit.exceptions import StoreError
from wfkit.states import State
from wfkit.stores import ArtifactStore, RunReader
from wfkit.stores.records import FlowRun, TaskRun
from wfkit.ui import _timeline
from wfkit.ui._artifacts import artifact_views
from wfkit.ui._format import FILTERS, aware, run_seconds
from wfkit.ui._pages import flow_page, store_page
from wfkit.ui._query import (
    LOG_LEVELS,
    MAX_LIMIT,
    STATE_NAMES,
    RunFilters,
    parse_level,
    parse_run_filters,
)

__all__ = ["create_app"]

_HERE = Path(__file__).parent
_LOG_LINES = 500  # the most log lines a page shows (the newest)


class Pages:
    """The store and the template environment every handler uses."""

    def __init__(self, store: RunReader) -> None:
        self.store = store
        self.env = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(FILTERS)
        self.env.globals.update(store_url=store.url, run_seconds=run_seconds)

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=status)

    # the runs page ---------------------------------------------------------------------------
    def runs(self, request: Request) -> Response:
        filters = parse_run_filters(request.query_params)
        page, more = find_page(self.store, filters)
        counts = self.store.flow_run_counts(
            flow_name=filters.flow,
            tags=list(filters.tags) or None,
            since=filters.since,
            until=filters.until,
        )
        older = None
        if more and page:
            older = filters.url(before=_start(page[-1]).isoformat())
        return self.render(
            "runs.html",
            status=400 if filters.errors else 200,
            f=filters,
            runs=page,
            task_counts=self.store.task_run_counts([r.id for r in page]) if page else {},
            counts=counts,
            total=sum(counts.values()),
            states=STATE_NAMES,
            older=older,
        )

    def run_row(self, request: Request) -> Response:
        """One row of the runs table: what a running row's htmx polling swaps in."""
        run = self._flow_run(request.path_params["run_id"])
        counts = self.store.task_run_counts([run.id])
        return self.render("_row.html", run=run, task_counts=counts)

    # a flow run -------------------------------------------------------------------------------
    def flow_run(self, request: Request) -> Response:
        run = self._flow_run(request.path_params["run_id"])
        now = datetime.now(UTC)
        groups = self.store.task_run_groups(run.id)
        total = sum(g.runs for g in groups)
        tree = self.store.flow_runs_in_tree(run.root_flow_run_id or run.id)
        children = [c for c in tree if c.parent_flow_run_id == run.id]
        tasks: list[TaskRun] = []
        graph = None
        if total <= _timeline.MAX_DRAWN:
            tasks = self.store.task_runs(flow_run_id=run.id)
            timeline = _timeline.timeline(run, tasks, children, now)
            if any(t.upstream_ids for t in tasks):
                graph = _timeline.graph(run.id, tasks)
        else:
            timeline = _timeline.aggregate(run.id, groups)
        logs, log_error = self._logs(run.id, request)
        # (a reader that keeps no artifacts, e.g. a third-party RunReader, shows none)
        made = self.store.artifacts(run_id=run.id) if isinstance(self.store, ArtifactStore) else []
        return self.render(
            "run.html",
            status=400 if log_error else 200,
            run=run,
            parent=self._maybe(run.parent_flow_run_id),
            groups=groups,
            total=total,
            task_states=_summed(g.states for g in groups),
            tasks=tasks,
            names={t.id: t.name for t in tasks},
            children=children,
            timeline=timeline,
            graph=graph,
            artifacts=artifact_views(made),
            traceback=self._traceback(run),
            logs=logs,
            log_error=log_error,
            levels=LOG_LEVELS,
            query=request.query_params,
        )

    def flow_run_logs(self, request: Request) -> Response:
        """The log lines of a flow run, filtered: what the log filter form swaps in."""
        run = self._flow_run(request.path_params["run_id"])
        logs, log_error = self._logs(run.id, request)
        names = {t.id: t.name for t in self.store.task_runs(flow_run_id=run.id)} if logs else {}
        return self.render(
            "_logs.html",
            status=400 if log_error else 200,
            logs=logs,
            log_error=log_error,
            names=names,
        )

    def _logs(self, run_id: str, request: Request) -> tuple[Sequence[Any], str | None]:
        level, error = parse_level(request.query_params.get("level"))
        task = (request.query_params.get("task") or "").strip() or None
        page = self.store.logs_after(run_id, min_level=level, task_name=task, last=_LOG_LINES)
        return page.records, error

    def _traceback(self, run: FlowRun) -> str | None:
        """The traceback the engine logged with the run's final state, if it failed."""
        if not (run.state.is_failed() or run.state.is_crashed()):
            return None
        for record in reversed(
            self.store.logs_after(run.id, min_level=logging.ERROR, last=10).records
        ):
            if record.task_run_id is None and "Traceback" in record.message:
                return record.message
        return None

    # a task run -------------------------------------------------------------------------------
    def task_run(self, request: Request) -> Response:
        run = self._flow_run(request.path_params["run_id"])
        task_id = request.path_params["task_run_id"]
        by_id = {t.id: t for t in self.store.task_runs(flow_run_id=run.id)}
        task = by_id.get(task_id)
        if task is None:
            raise HTTPException(404, f"No task run with id {task_id!r} in flow run {run.id!r}.")
        return self.render(
            "task_run.html",
            run=run,
            task=task,
            upstreams=[(u, by_id.get(u)) for u in task.upstream_ids],
            logs=self.store.logs_after(task.id, last=_LOG_LINES).records,
            names={task.id: task.name},
        )

    # a flow, the store --------------------------------------------------------------------
    def flow(self, request: Request) -> Response:
        name = request.path_params["flow_name"]
        context = flow_page(self.store, name)
        if context is None:
            raise HTTPException(404, f"No runs of a flow named {name!r} in this store.")
        return self.render("flow.html", **context)

    def store_info(self, request: Request) -> Response:
        return self.render("store.html", **store_page(self.store))

    # helpers -------------------------------------------------------------------------------
    def _flow_run(self, run_id: str) -> FlowRun:
        found = self._maybe(run_id)
        if found is None:
            raise HTTPException(404, f"No flow run with id {run_id!r} in this store.")
        return found

    def _maybe(self, run_id: str | None) -> FlowRun | None:
        if not run_id:
            return None
        found = self.store.find_flow_runs(run_id, limit=1)  # exact id first; no exception
        return found[0] if found and found[0].id == run_id else None

    async def not_found(self, request: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", "Not found.")
        status = getattr(exc, "status_code", 404)
        return self.render("error.html", status=status, title="Not found", detail=detail)

    async def store_error(self, request: Request, exc: Exception) -> Response:
        return self.render(
            "error.html",
            status=503,
            title="The store could not be read",
            detail=f"{exc} Reload the page in a moment: the store may be being migrated or "
            "written.",
        )


def find_page(store: RunReader, f: RunFilters) -> tuple[list[FlowRun], bool]:
    """The runs of one page, newest first, and whether older ones match too."""
    if f.text is not None:
        # A name or id prefix: few runs match; the other filters are applied to them here.
        found = [r for r in store.find_flow_runs(f.text, limit=MAX_LIMIT) if _matches(r, f)]
        found.sort(key=_start)
        return found[::-1][: f.limit], len(found) > f.limit
    until = min((m for m in (f.until, f.before) if m is not None), default=None)
    runs = store.flow_runs(
        flow_name=f.flow,
        state=f.state,
        tags=list(f.tags) or None,
        since=f.since,
        until=until,
        limit=f.limit + 1,
    )
    more = len(runs) > f.limit
    return runs[::-1][: f.limit], more


def _matches(run: FlowRun, f: RunFilters) -> bool:
    start = _start(run)
    return (
        (f.flow is None or run.flow_name == f.flow)
        and (f.state is None or _state_is(run.state, f.state))
        and set(f.tags).issubset(run.tags)
        and (f.since is None or start >= f.since)
        and (f.until is None or start < f.until)
        and (f.before is None or start < f.before)
    )


def _summed(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for by_state in counts:
        for name, n in by_state.items():
            total[name] = total.get(name, 0) + n
    return total


def _state_is(state: State, name: str) -> bool:
    return name.casefold() in (state.name.casefold(), state.type.value.casefold())


def _start(run: FlowRun) -> datetime:
    start = run.start_time or run.states[0].timestamp
    return aware(start) if start is not None else datetime.min.replace(tzinfo=UTC)


def create_app(store: RunReader) -> Starlette:
    """The web page over ``store`` (opened read-only by ``wf ui``; the app never writes).

    Args:
        store: any :class:`~wfkit.stores.RunReader`.

    Returns:
        A Starlette (ASGI) application: serve it with uvicorn, or test it with Starlette's
        ``TestClient``.
    """
    pages = Pages(store)
    routes = [
        Route("/", pages.runs),
        Route("/partials/run-row/{run_id}", pages.run_row),
        Route("/runs/{run_id}", pages.flow_run),
        Route("/runs/{run_id}/logs", pages.flow_run_logs),
        Route("/task-runs/{run_id}/{task_run_id}", pages.task_run),
        Route("/flows/{flow_name:path}", pages.flow),
        Route("/store", pages.store_info),
        Mount("/static", app=StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: pages.not_found, StoreError: pages.store_error},
    )
