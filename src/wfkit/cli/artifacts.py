"""``wf artifacts``: list the artifacts runs published (``create_markdown_artifact`` and the
rest), and show one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from wfkit.cli._common import RunNames, json_option, open_for_cli, resolve_run, store_option
from wfkit.cli._output import Cell, Output, echo_error, iso, local_time

if TYPE_CHECKING:
    from wfkit.stores import ArtifactRecord

__all__ = ["artifact_json", "artifact_rows", "artifacts"]

ROW_HEADERS = ("KEY", "TYPE", "DESCRIPTION")
_DESCRIPTION_CHARS = 60  # a description is cut to this in tables (`inspect` shows it whole)


@click.group()
def artifacts() -> None:
    """List and inspect the artifacts runs published."""


@artifacts.command("ls")
@click.option("--key", metavar="KEY", help="Only the versions of this key.")
@click.option("--run", "run_ref", metavar="RUN", help="Only those of this flow run (its tasks').")
@click.option("--all", "every_version", is_flag=True, help="Every version of each key.")
@json_option
@store_option
def ls(
    key: str | None,
    run_ref: str | None,
    every_version: bool,
    json_mode: bool,
    store_url: str | None,
) -> None:
    """List artifacts, oldest first: the latest version of each key (with --key or --all,
    every version) and the artifacts without a key."""
    store = open_for_cli(store_url)
    run_id = resolve_run(store, run_ref).id if run_ref is not None else None
    found = store.artifacts(key=key, run_id=run_id)
    if not (every_version or key):
        found = _latest_versions(found)
    out = Output(json_mode)
    if json_mode:
        out.json([artifact_json(a) for a in found])
        return
    if not found:
        echo_error("No artifacts match." if (key or run_ref) else "No artifacts yet.")
        return
    names = RunNames(store)
    rows = [
        [*row, names(a.flow_run_id), local_time(a.created), a.id]
        for a, row in zip(found, artifact_rows(found), strict=True)
    ]
    out.table((*ROW_HEADERS, "FLOW RUN", "CREATED", "ID"), rows)


def _latest_versions(found: Sequence[ArtifactRecord]) -> list[ArtifactRecord]:
    """The latest artifact of each key and every artifact without one, in creation order."""
    latest = {a.key: a.id for a in found if a.key is not None}
    return [a for a in found if a.key is None or latest[a.key] == a.id]


@artifacts.command("inspect")
@click.argument("ref", metavar="ARTIFACT")
@json_option
@store_option
def inspect(ref: str, json_mode: bool, store_url: str | None) -> None:
    """Show one artifact and its data: ARTIFACT is its id, or a key (its latest version)."""
    store = open_for_cli(store_url)
    found = store.artifact(ref)
    if found is None:
        versions = store.artifacts(key=ref)
        found = versions[-1] if versions else None
    if found is None:
        raise click.ClickException(
            f"No artifact has the id or key ARTIFACT={ref!r} in the store {store.url!r}: "
            "`wf artifacts ls` lists them."
        )
    out = Output(json_mode)
    if json_mode:
        out.json(artifact_json(found))
        return
    out.fields(
        [
            ("Id", found.id),
            ("Key", found.key or "-"),
            ("Type", found.type),
            ("Description", found.description or "-"),
            ("Flow run", RunNames(store)(found.flow_run_id)),
            ("Task run", found.task_run_id or "-"),
            ("Created", local_time(found.created)),
            ("Updated", local_time(found.updated)),
        ]
    )
    out.line()
    _data(out, found)


def _data(out: Output, artifact: ArtifactRecord) -> None:
    """Print an artifact's data: a table as a table, a progress as a percentage, text as it
    is (never as markup: a terminal shows markdown's characters)."""
    data = artifact.data
    if artifact.type == "table" and isinstance(data, list) and data:
        headers, rows = _grid(data)
        out.table(headers, rows)
    elif artifact.type == "progress":
        out.line(f"{data:g}%")
    elif isinstance(data, str):
        for line in data.splitlines():
            out.line(line)
    else:
        out.line(json.dumps(data, default=str))


def _grid(rows: list[Any]) -> tuple[list[str], list[list[Cell | str]]]:
    """A table artifact's rows as headers and cells: dict rows by their keys (in the order
    they first appear), list rows by position."""
    if all(isinstance(row, dict) for row in rows):
        headers = list(dict.fromkeys(k for row in rows for k in row))
        return headers, [[_cell(row.get(h)) for h in headers] for row in rows]
    width = max(len(row) for row in rows)
    return [str(i) for i in range(width)], [[_cell(v) for v in row] for row in rows]


def _cell(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


def artifact_rows(found: Sequence[ArtifactRecord]) -> list[list[Cell | str]]:
    """Each artifact's key, type and (shortened) description: the columns of
    ``ROW_HEADERS``."""
    return [[a.key or "-", a.type, _short(a.description or "-")] for a in found]


def _short(text: str) -> str:
    first = text.splitlines()[0] if text else text
    if len(first) > _DESCRIPTION_CHARS:
        return first[: _DESCRIPTION_CHARS - 3] + "..."
    return first + (" ..." if first != text else "")  # (more lines follow)


def artifact_json(artifact: ArtifactRecord) -> dict[str, Any]:
    """An artifact as JSON-ready data."""
    return {
        "id": artifact.id,
        "key": artifact.key,
        "type": artifact.type,
        "description": artifact.description,
        "data": artifact.data,
        "flow_run_id": artifact.flow_run_id,
        "task_run_id": artifact.task_run_id,
        "created": iso(artifact.created),
        "updated": iso(artifact.updated),
    }
