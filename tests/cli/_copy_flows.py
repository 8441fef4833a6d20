"""What the ``wf store copy`` tests (SQLite here, PostgreSQL in ``tests/postgres``) share:
flows that record every kind of record, and what a store's readers show."""

from __future__ import annotations

from typing import Any

from wfkit import flow, get_run_logger, task
from wfkit.artifacts import create_markdown_artifact
from wfkit.cache_policies import INPUTS
from wfkit.events import emit_event
from wfkit.stores import RunStore
from wfkit.testing import harness

__all__ = ["START", "contents", "fill", "squares"]

START = "2026-02-01T00:00:00Z"


@task(cache_policy=INPUTS, persist_result=True)
def square(x: int) -> int:
    get_run_logger().info("squaring %d", x)
    return x * x


@task
def alone(x: int) -> int:
    return x


@flow(flow_run_name="nested-{n}")
def nested(n: int) -> int:
    return square(n)


@flow(flow_run_name="squares-{n}")
def squares(n: int) -> int:
    create_markdown_artifact("# squares", key="squares-report")
    emit_event("squares.done", resource={"prefect.resource.id": f"squares.{n}"})
    return sum(square(i) for i in range(n)) + nested(n)


@flow(flow_run_name="broken")
def broken() -> None:
    raise ValueError("no")


def fill(store: RunStore) -> None:
    """Record every kind of record in ``store``: runs (nested, failed, a task run outside a
    flow), states, logs, cache records, artifacts, events and a concurrency limit. The
    harness closes the store."""
    store.create_limit("db", 3)
    with harness(start=START, store=store):  # (which closes the store)
        squares(3)
        squares(4)
        broken(return_state=True)
        alone(1)


def contents(store: RunStore) -> dict[str, Any]:
    """Everything a store's readers show, cache values left out (they are re-signed)."""
    return {
        "flow_runs": store.flow_runs_page(limit=None),  # type: ignore[arg-type]
        "task_runs": store.task_runs_page(limit=None),  # type: ignore[arg-type]
        # Each run's lines in their order (lines of runs going on at once may interleave
        # differently in the copy: it copies run by run).
        "logs": {r.id: store.logs(r.id) for r in store.flow_runs()},
        "lines": len(store.logs()),
        "cache": [r._replace(value=r.value[32:]) for r in store.cache_records()],
        "artifacts": store.artifacts(),
        "events": store.events(),
        "limits": [(lim.name, lim.limit) for lim in store.concurrency_limits()],
    }
