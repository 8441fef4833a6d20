"""``wf store``: what a store holds, whether it is sound, pruning old runs, and copying a
store into another (:mod:`._copy`)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import click

from wfkit.cli._common import Age, json_option, open_for_cli, store_option
from wfkit.cli._copy import copy
from wfkit.cli._output import Output, ago, echo_error, task_counts

__all__ = ["store"]


@click.group()
def store() -> None:
    """Look after a run store."""


store.add_command(copy)


@store.command("info")
@json_option
@store_option
def info(json_mode: bool, store_url: str | None) -> None:
    """Show the store's URL, file, schema version, size, runs by state and live owners."""
    out = Output(json_mode)
    summary = open_for_cli(store_url).summary()
    if json_mode:
        out.json(asdict(summary))
        return
    details = summary.details
    fields: list[tuple[str, str]] = [("URL", summary.url)]
    if "path" in details:
        fields.append(("Path", str(details["path"])))
    if "schema_version" in details:
        fields.append(("Schema version", str(details["schema_version"])))
    if "size_bytes" in details:
        wal = details.get("wal_bytes") or 0
        extra = f" (+ {_size(wal)} write-ahead log)" if wal else ""
        fields.append(("Size", _size(details["size_bytes"]) + extra))
    now = datetime.now(UTC)
    fields += [
        ("Flow runs", _counted(summary.flow_runs)),
        ("Task runs", _counted(summary.task_runs)),
        ("Log lines", str(summary.logs)),
        ("Cache records", str(summary.cache_records)),
        (
            "Live owners",
            "; ".join(
                f"{o.host} pid {o.pid}: {o.live_runs} running"
                + (f", heartbeat {ago(o.heartbeat, now)}" if o.heartbeat else "")
                for o in summary.owners
            )
            or "none",
        ),
    ]
    out.fields(fields)


def _counted(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return f"{total} ({task_counts(counts)})" if total else "0"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


@store.command("check")
@json_option
@store_option
def check(json_mode: bool, store_url: str | None) -> None:
    """Check the store: SQLite's integrity check and wfkit's own consistency checks.

    Exits 1 if a problem is found.
    """
    out = Output(json_mode)
    opened = open_for_cli(store_url)
    problems = opened.check()
    if json_mode:
        out.json({"url": opened.url, "problems": problems})
    elif problems:
        for problem in problems:
            out.line(problem, "red")
    else:
        out.line(f"No problems found in {opened.url}.", "green")
    if problems:
        echo_error(f"{len(problems)} problem(s) found in {opened.url}.")
        raise SystemExit(1)


@store.command("prune")
@click.option(
    "--older-than",
    "before",
    type=Age(),
    required=True,
    help="Delete runs that finished longer ago than AGE (30d, 12h, 90m).",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    metavar="STATE",
    help="Only runs that ended in this state (name or type); repeatable.",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option("--cache", is_flag=True, help="Also delete expired cache records.")
@json_option
@store_option
def prune(
    before: datetime,
    states: tuple[str, ...],
    dry_run: bool,
    cache: bool,
    json_mode: bool,
    store_url: str | None,
) -> None:
    """Delete finished flow runs (with their task runs, child flow runs, states and logs)
    older than --older-than, in short transactions."""
    out = Output(json_mode)
    opened = open_for_cli(store_url, write=not dry_run)
    result = opened.prune_runs(before, list(states) or None, dry_run=dry_run)
    expired = 0
    if cache:
        now = datetime.now(UTC)
        if dry_run:
            expired = sum(1 for r in opened.cache_records() if r.expires_at and r.expires_at <= now)
        else:
            expired = opened.prune_cache(now)
    if json_mode:
        out.json({**asdict(result), "cache_records": expired, "dry_run": dry_run})
        return
    verb = "Would remove" if dry_run else "Removed"
    text = (
        f"{verb} {result.flow_runs} flow runs, {result.task_runs} task runs, "
        f"{result.states} states and {result.logs} log lines"
    )
    out.line(text + (f", and {expired} expired cache records." if cache else "."))
