"""How ``wf`` prints: Rich tables and colours in a terminal, plain untruncated text when piped,
and JSON (one document on stdout) with ``--json``; times in local time, durations relative.

Every command prints through an :class:`Output`; nothing else in the package writes to
stdout. Rich is imported only when a table is printed to a terminal (it costs ~35 ms).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

import click

if TYPE_CHECKING:
    from wfkit.states import State
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun

__all__ = [
    "Cell",
    "Output",
    "duration",
    "iso",
    "local_time",
    "run_duration",
    "run_json",
    "state_cell",
    "state_style",
]

# A state's colour, by state type (names within a type share it; Cached is a kind of
# Completed, Retrying of Running).
_STYLES = {
    "COMPLETED": "green",
    "FAILED": "red",
    "CRASHED": "bold magenta",
    "CANCELLED": "bright_black",
    "CANCELLING": "bright_black",
    "RUNNING": "blue",
    "PENDING": "yellow",
    "SCHEDULED": "yellow",
    "PAUSED": "yellow",
}


class Cell(NamedTuple):
    """A table cell: its text and, in a terminal, its Rich style."""

    text: str
    style: str = ""


def state_style(state: State) -> str:
    """The Rich style of a state (by its type)."""
    return _STYLES.get(state.type.value, "")


def state_cell(state: State, with_message: bool = False) -> Cell:
    """A cell showing a state's name in its colour; a crashed run also says what killed it
    (its message), and ``with_message`` shows any state's message."""
    text = state.name
    if state.message and (with_message or state.type.value == "CRASHED"):
        text = f"{text}: {state.message}"
    return Cell(text, state_style(state))


def local_time(moment: datetime | None, *, date: bool = True) -> str:
    """``moment`` in local time (``2026-01-31 14:05:09``); ``-`` for none."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def duration(seconds: float | None) -> str:
    """A short duration: ``0.25s``, ``42s``, ``3m05s``, ``2h03m``, ``3d04h``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}{(whole % size) // sub_size:02d}{sub}"
    return f"{whole // 60}m{whole % 60:02d}s"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``moment`` was (``5m10s ago``); ``""`` for none."""
    if moment is None:
        return ""
    now = now or datetime.now(UTC)
    return f"{duration((now - _aware(moment)).total_seconds())} ago"


def run_duration(run: FlowRun | TaskRun, now: datetime | None = None) -> float | None:
    """Seconds from a run's start to its end (to now if it is still going); None if it
    never started."""
    if run.start_time is None:
        return None
    end = run.end_time or (None if run.state.is_final() else now or datetime.now(UTC))
    return None if end is None else (_aware(end) - _aware(run.start_time)).total_seconds()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    """``moment`` as ISO 8601 with its zone (a naive one is taken as UTC); None for none."""
    return None if moment is None else _aware(moment).isoformat()


def run_json(run: FlowRun | TaskRun) -> dict[str, Any]:
    """A flow or task run as JSON-ready data (times as ISO 8601 UTC)."""
    data: dict[str, Any] = {
        "id": run.id,
        "name": run.name,
        "state": run.state.name,
        "state_type": run.state.type.value,
        "state_message": run.state.message,
        "start_time": iso(run.start_time),
        "end_time": iso(run.end_time),
        "duration_seconds": run_duration(run),
        "run_count": run.run_count,
        "parameters": run.parameters,
        "tags": list(run.tags),
        "host": run.host,
        "pid": run.pid,
    }
    for field in (
        "flow_name", "flow_version", "flow_path", "parent_flow_run_id", "parent_task_run_id",
        "task_name", "flow_run_id", "cache_key",
    ):  # fmt: skip
        if hasattr(run, field):
            data[field] = getattr(run, field)
    if hasattr(run, "upstream_ids"):
        data["upstream_ids"] = list(run.upstream_ids)
    return data


def states_json(states: Iterable[State]) -> list[dict[str, Any]]:
    """A state history as JSON-ready data."""
    return [
        {"name": s.name, "type": s.type.value, "timestamp": iso(s.timestamp), "message": s.message}
        for s in states
    ]


def log_json(record: LogRecord) -> dict[str, Any]:
    """A log line as JSON-ready data."""
    return {
        "timestamp": iso(record.timestamp),
        "level": record.level_name,
        "flow_run_id": record.flow_run_id,
        "task_run_id": record.task_run_id,
        "logger": record.logger,
        "message": record.message,
    }


class Output:
    """Where a command prints: Rich in a terminal, plain text when piped, JSON on request.

    Args:
        json_mode: print only JSON documents on stdout (messages go to stderr).
        stream: stdout (the default); a terminal gets Rich output.
    """

    def __init__(self, json_mode: bool = False, stream: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stream = stream if stream is not None else sys.stdout
        self.rich = not json_mode and _is_terminal(self.stream)
        self._console: Any = None

    @property
    def console(self) -> Any:
        """The Rich console (made on first use; only in a terminal)."""
        if self._console is None:
            from rich.console import Console  # (lazy: rich costs ~35 ms to import)

            self._console = Console(file=self.stream, highlight=False)
        return self._console

    def json(self, document: Any) -> None:
        """Print one JSON document."""
        import json  # (lazy: most commands print no JSON; ~1.5 ms)

        self.stream.write(json.dumps(document, indent=2, default=str) + "\n")

    def json_line(self, document: Any) -> None:
        """Print one JSON document on one line (a stream of them: ``--follow``)."""
        import json  # (lazy: as in json())

        self.stream.write(json.dumps(document, default=str) + "\n")
        self.stream.flush()

    def line(self, text: str = "", style: str = "") -> None:
        """Print a line of text (styled in a terminal)."""
        if self.rich:
            from rich.text import Text  # (lazy: see console)

            self.console.print(Text(text, style=style), soft_wrap=True)
        else:
            self.stream.write(text + "\n")

    def cells(self, cells: Sequence[Cell | str]) -> None:
        """Print one line made of cells (each styled in a terminal), separated by spaces."""
        parts = [c if isinstance(c, Cell) else Cell(c) for c in cells]
        if self.rich:
            from rich.text import Text  # (lazy: see console)

            self.console.print(
                Text(" ").join(Text(c.text, style=c.style) for c in parts), soft_wrap=True
            )
        else:
            self.stream.write(" ".join(c.text for c in parts).rstrip() + "\n")
            self.stream.flush()

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[Cell | str]], title: str = ""
    ) -> None:
        """Print a table: Rich in a terminal, else aligned plain columns, never cut."""
        cells = [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]
        if self.rich:
            self.console.print(rich_table(headers, cells, title))
            return
        if title:
            self.stream.write(title + "\n")
        widths = [
            max([len(h), *(len(row[i].text) for row in cells)]) for i, h in enumerate(headers)
        ]
        for row in [[Cell(h) for h in headers], *cells]:
            text = "  ".join(c.text.ljust(w) for c, w in zip(row, widths, strict=True))
            self.stream.write(text.rstrip() + "\n")

    def fields(self, pairs: Sequence[tuple[str, Cell | str]]) -> None:
        """Print ``name: value`` lines, names aligned."""
        width = max((len(name) for name, _ in pairs), default=0)
        for name, value in pairs:
            self.cells([f"{name + ':':<{width + 1}}", value])


def rich_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], title: str = "") -> Any:
    """A Rich table of styled cells (for :meth:`Output.table` and ``wf runs watch``)."""
    from rich import box  # (lazy: see Output.console)
    from rich.table import Table

    table = Table(title=title or None, box=box.SIMPLE_HEAD, title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(
            *(f"[{c.style}]{_escape(c.text)}[/]" if c.style else _escape(c.text) for c in row)
        )
    return table


def _escape(text: str) -> str:
    from rich.markup import escape  # (lazy: see Output.console)

    return escape(text)


def task_counts(counts: Mapping[str, int]) -> str:
    """Task runs by state, most first: ``9 Completed, 1 Failed``; ``-`` for none."""
    if not counts:
        return "-"
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{n} {name}" for name, n in ordered)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def echo_error(message: str) -> None:
    """Print a message on stderr (never stdout, which may carry JSON)."""
    click.echo(message, err=True)


def since_now(seconds: float) -> datetime:
    """The moment ``seconds`` before now (UTC)."""
    return datetime.now(UTC) - timedelta(seconds=seconds)
