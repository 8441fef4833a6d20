"""What the ``wf`` commands share: the ``--store`` and ``--json`` options, opening the store,
parsing times and levels, finding the run a RUN argument means, and turning wfkit's errors
into messages and exit codes (1: an error; 2: a usage error), never tracebacks."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from wfkit.exceptions import ConfigurationError, WfkitError

if TYPE_CHECKING:
    from wfkit.stores import RunStore
    from wfkit.stores.records import FlowRun

__all__ = [
    "Age",
    "ErrorHandlingGroup",
    "Level",
    "RunNames",
    "When",
    "json_option",
    "open_for_cli",
    "parse_age",
    "resolve_run",
    "store_option",
]

_F = TypeVar("_F", bound=Callable[..., Any])


class ErrorHandlingGroup(click.Group):
    """A command group that turns wfkit's errors into exit codes: a
    :class:`~wfkit.exceptions.ConfigurationError` (an argument wfkit refused: a store URL of
    an unknown scheme, say) exits 2 as a usage error; any other wfkit error exits 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            raise click.UsageError(str(exc), ctx) from exc
        except WfkitError as exc:
            raise click.ClickException(str(exc)) from exc


def store_option(fn: _F) -> _F:
    """``--store URL``: the store to read (default: the configured one)."""
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        default=None,
        help="Run store URL, e.g. sqlite:///./wfkit.db (default: WFKIT_STORE, or the SQLite "
        "file in WFKIT_HOME).",
    )(fn)


def json_option(fn: _F) -> _F:
    """``--json``: print one JSON document on stdout, messages on stderr."""
    return click.option(
        "--json", "json_mode", is_flag=True, help="Print JSON only (one document) on stdout."
    )(fn)


def open_for_cli(url: str | None, *, write: bool = False) -> RunStore:
    """The store at ``url`` (None: the configured one), opened read-only unless ``write``.

    Raises:
        ConfigurationError: the URL is not one wfkit knows (exit 2).
        StoreError: there is no usable store there (exit 1).
    """
    from wfkit.settings import store_url  # (lazy: `wf --help` opens no store)

    if url is None:
        url = store_url()
    if url.startswith("memory://"):
        raise ConfigurationError(
            f"--store {url!r} is a memory store: it lives inside one process, so `wf` (another "
            "process) cannot read it. Record runs in a SQLite store (WFKIT_STORE="
            "sqlite:///path/to/wfkit.db) and point --store at it."
        )
    if url.startswith("sqlite:///") and "?" not in url:
        # The built-in scheme, opened directly: asking the plugins first (open_store) loads
        # every installed package's entry points through importlib.metadata, ~25 ms of each
        # `wf` command, and plugins add stores of other schemes.
        from wfkit.stores.sqlite import SqliteStore  # (lazy: as above)

        return SqliteStore.from_url(url if write else f"{url}?mode=ro")
    from wfkit.stores import open_store  # (lazy: as above)

    return open_store(url, read_only=not write)


def resolve_run(store: RunStore, ref: str) -> FlowRun:
    """The flow run ``ref`` means: its id, a unique id prefix, or its name.

    Raises:
        click.ClickException: no run matches, or several do (they are listed).
    """
    candidates = store.find_flow_runs(ref, limit=11)
    exact = [run for run in candidates if run.id == ref]
    if exact:
        return exact[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise click.ClickException(
            f"No flow run matches RUN={ref!r} in the store {store.url!r}: give a run id, a "
            "unique id prefix or a run name (`wf runs ls` lists them)."
        )
    shown = "\n".join(
        f"  {run.id}  {run.name}  {run.flow_name}  {run.state.name}" for run in candidates[:10]
    )
    more = "\n  ..." if len(candidates) > 10 else ""
    raise click.ClickException(
        f"RUN={ref!r} is ambiguous: it matches {'more than 10' if more else len(candidates)} "
        f"flow runs. Give one of their ids:\n{shown}{more}"
    )


class RunNames:
    """Flow run names by id (for tables of things runs made), each read once; ``-`` for
    none (made outside a run)."""

    def __init__(self, store: RunStore) -> None:
        self.store, self.names = store, dict[str, str]()

    def __call__(self, run_id: str | None) -> str:
        if run_id is None:
            return "-"
        if run_id not in self.names:
            found = self.store.find_flow_runs(run_id, limit=1)
            self.names[run_id] = found[0].name if found else run_id
        return self.names[run_id]


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float | None:
    """``2h``, ``30m``, ``3d``, ``1w``, ``45s`` as seconds; None if ``text`` is not one."""
    match = _RELATIVE.match(text)
    return None if match is None else float(match[1]) * _UNITS[match[2].lower()]


class When(click.ParamType):
    """A moment: an ISO 8601 time (without a zone: local time) or an age (``2h``, ``3d``:
    that long before now); converted to an aware datetime."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        age = parse_age(str(value))
        if age is not None:
            return datetime.now(UTC) - timedelta(seconds=age)
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(
                f"{value!r} is not a time: give an ISO time such as 2026-01-31 or "
                "2026-01-31T14:00, or an age such as 30m, 2h, 3d or 1w.",
                param,
                ctx,
            )
        return moment.astimezone() if moment.tzinfo is None else moment  # naive: local


class Age(click.ParamType):
    """An age (``30d``, ``12h``): how long before now; converted to that moment."""

    name = "AGE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        age = parse_age(str(value))
        if age is None:
            self.fail(
                f"{value!r} is not an age: give a number and a unit, such as 30d, 12h, 90m, "
                "45s or 2w.",
                param,
                ctx,
            )
        return datetime.now(UTC) - timedelta(seconds=age)


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Level(click.ParamType):
    """A logging level by name (``warning``) or number (``30``)."""

    name = "LEVEL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip().upper()
        if text.isdigit():
            return int(text)
        if text in _LEVELS:
            return int(getattr(logging, text))
        self.fail(
            f"{value!r} is not a log level: use one of {', '.join(_LEVELS)} (any case) or a "
            "number.",
            param,
            ctx,
        )
