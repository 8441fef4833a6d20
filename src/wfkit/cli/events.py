"""``wf events``: the events runs emitted (``emit_event``, and asset materializations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from wfkit.cli._common import RunNames, json_option, open_for_cli, resolve_run, store_option
from wfkit.cli._output import Output, echo_error, iso, local_time

if TYPE_CHECKING:
    from wfkit.stores import EventRecord

__all__ = ["events"]

_RESOURCE_ID = "prefect.resource.id"  # (wfkit.events.RESOURCE_ID, without importing it)


@click.group()
def events() -> None:
    """List the events runs emitted."""


@events.command("ls")
@click.option(
    "--event", "name", metavar="NAME", help="Only events of this name ('prefix.*': a prefix)."
)
@click.option("--run", "run_ref", metavar="RUN", help="Only those of this flow run (its tasks').")
@click.option("--resource", metavar="ID", help="Only events about this resource id.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Show the latest N events (0 shows all).",
)
@json_option
@store_option
def ls(
    name: str | None,
    run_ref: str | None,
    resource: str | None,
    limit: int,
    json_mode: bool,
    store_url: str | None,
) -> None:
    """List events in the order they were recorded (the latest last)."""
    store = open_for_cli(store_url)
    run_id = resolve_run(store, run_ref).id if run_ref is not None else None
    found = store.events(name, run_id, resource)
    if limit:
        found = found[-limit:]
    out = Output(json_mode)
    if json_mode:
        out.json([_event_json(e) for e in found])
        return
    if not found:
        echo_error("No events match." if (name or run_ref or resource) else "No events yet.")
        return
    names = RunNames(store)
    rows = [
        [local_time(e.occurred), e.event, e.resource.get(_RESOURCE_ID, "-"), names(e.flow_run_id)]
        for e in found
    ]
    out.table(("OCCURRED", "EVENT", "RESOURCE", "FLOW RUN"), rows)


def _event_json(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "event": event.event,
        "occurred": iso(event.occurred),
        "resource": event.resource,
        "related": event.related,
        "payload": event.payload,
        "flow_run_id": event.flow_run_id,
        "task_run_id": event.task_run_id,
    }
