"""``wf store copy SRC DST [--merge]``: copy a store's whole history into another store (from
the default SQLite file to a team's PostgreSQL database, say). The copying itself is
:mod:`wfkit.stores._copying`; this module opens the stores, refuses what must not be copied
and prints what was done."""

from __future__ import annotations

import hmac
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from wfkit.cli._common import json_option, open_for_cli
from wfkit.cli._output import Output, echo_error
from wfkit.exceptions import ConfigurationError, WfkitError

if TYPE_CHECKING:
    from wfkit.stores import CacheRecord, RunStore
    from wfkit.stores._copying import CopyResult

__all__ = ["copy"]

_SHOWN_OUTCOMES = ("copied", "updated", "identical", "running", "conflicts", "unauthentic")


@click.command("copy")
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@click.option(
    "--merge",
    is_flag=True,
    help="Copy into a store that already holds records: add what it lacks, keep the rest.",
)
@json_option
def copy(source: str, destination: str, merge: bool, json_mode: bool) -> None:
    """Copy every run (with its states and logs), cache record, artifact, event and
    concurrency limit of the store SRC into the store DST (URLs, such as
    sqlite:///./wfkit.db and postgresql://me@db-host/wfkit).

    SRC is only read. DST must be empty, unless --merge: then runs already there get the
    states and log lines they lack, and copying again changes nothing. Runs still going on
    are left out: copy again with --merge once they end. Cached results are signed again
    with DST's secret; one that SRC's secret does not authenticate is not copied.
    """
    from wfkit.stores._copying import copy_store, store_contents  # (lazy: only this command)

    out = Output(json_mode)
    src = _open("SRC", source, write=False)
    _refuse_same_store(source, destination)
    dst = _open("DST", destination, write=True)
    try:
        if getattr(dst, "read_only", False):
            raise click.UsageError(
                f"DST {_shown(destination)!r} is opened read-only (mode=ro): drop mode=ro."
            )
        if src.cache_secret() == dst.cache_secret():  # (another URL of the same store)
            raise click.UsageError(f"SRC and DST are the same store ({_shown(destination)}).")
        held = store_contents(dst)
        if held and not merge:
            raise click.UsageError(
                f"DST {_shown(destination)!r} is not empty ({_listed(held)}). Copy into an "
                "empty store, or pass --merge to add SRC's records to what DST holds."
            )
        try:
            result = copy_store(src, dst, _resign, merge=merge, progress=_progress(out))
            dst.flush()
        except WfkitError as exc:
            raise click.ClickException(
                f"The copy stopped: {exc} What was copied so far stays in DST: run the same "
                "command with --merge to finish it."
            ) from exc
    finally:
        dst.close()
        src.close()
    _report(out, result, source=_shown(source), destination=_shown(destination), merge=merge)


def _open(name: str, url: str, *, write: bool) -> RunStore:
    """The store at ``url`` (the argument ``name``), errors saying which argument it was."""
    try:
        return open_for_cli(url, write=write)
    except ConfigurationError as exc:
        raise click.UsageError(f"{name} {_shown(url)!r}: {exc}") from exc
    except WfkitError as exc:
        raise click.ClickException(f"{name} {_shown(url)!r}: {exc}") from exc


def _refuse_same_store(source: str, destination: str) -> None:
    """Refuse two URLs of one SQLite file or one PostgreSQL database, before DST is opened
    for writing (opening it may write: an owner row, a new secret key)."""
    same = _where(source) == _where(destination)
    if same:
        raise click.UsageError(
            f"SRC and DST are the same store ({_shown(destination)}): give DST another file "
            "or database."
        )


def _where(url: str) -> tuple[str, ...]:
    """What names the place a store URL points at, for comparing two URLs."""
    base = url.partition("?")[0]
    if base.startswith("sqlite:///"):
        return ("sqlite", os.path.realpath(os.path.expanduser(base.removeprefix("sqlite:///"))))
    if base.startswith(("postgresql://", "postgres://")):
        from urllib.parse import urlsplit  # (lazy: only for these URLs)

        parts = urlsplit(base)
        host = parts.hostname or "localhost"
        host = "localhost" if host == "127.0.0.1" else host
        return ("postgresql", host, str(parts.port or 5432), parts.path.lstrip("/"))
    return ("url", base)


def _shown(url: str) -> str:
    """``url`` without a password it may carry."""
    if url.startswith(("postgresql://", "postgres://")):
        from wfkit.stores._pg_schema import redacted  # (lazy: only for these URLs)

        return redacted(url)
    return url


def _resign(record: CacheRecord, source_secret: bytes, destination_secret: bytes) -> bytes | None:
    """The record's value signed with the destination's secret, if its MAC checks with the
    source's (see :mod:`wfkit._engine.caching`); else None."""
    from wfkit._engine.caching import MAC_SIZE, sign  # (lazy: the engine's, for this command)

    key, serializer, value = record.key, record.serializer, record.value
    payload = value[MAC_SIZE:]
    if len(value) < MAC_SIZE or not hmac.compare_digest(
        sign(source_secret, key, serializer, payload), value
    ):
        return None
    return sign(destination_secret, key, serializer, payload)


def _progress(out: Output) -> Any:
    """What shows progress on a big copy: a line on stderr per page, in a terminal only."""
    if out.json_mode or not _stderr_is_terminal():
        return None

    def show(kind: str, done: int) -> None:
        click.echo(f"\r{kind.replace('_', ' ')}: {done} read\033[K", err=True, nl=False)

    return show


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def _report(out: Output, result: CopyResult, **about: Any) -> None:
    """Print what the copy did: a table of counts, the conflicts; or JSON."""
    if out.json_mode:
        out.json({**about, "counts": result.counts, "conflicts": result.conflicts})
        return
    if _stderr_is_terminal():
        click.echo("\r\033[K", err=True, nl=False)
    # Only the outcomes that happened (a table of every one is wider than a terminal).
    shown = [
        o for o in _SHOWN_OUTCOMES if o == "copied" or any(o in c for c in result.counts.values())
    ]
    rows = [
        [kind.replace("_", " "), *(str(counts.get(o, 0)) for o in shown)]
        for kind, counts in result.counts.items()
    ]
    out.line(f"Copied {about['source']} into {about['destination']}")
    out.table(["records", *shown], rows)
    running = result.counts["flow_runs"].get("running", 0)
    if running:
        out.line(
            f"{running} flow run(s) still going on were left out: copy again with --merge "
            "once they end.",
            "yellow",
        )
    unauthentic = result.counts["cache_records"].get("unauthentic", 0)
    if unauthentic:
        out.line(
            f"{unauthentic} cache record(s) failed the check with SRC's secret (changed since "
            "they were written, or SRC's secret key is not the one that signed them) and were "
            "not copied; they are computed again when needed.",
            "yellow",
        )
    if result.conflicts:
        echo_error(
            "Kept as DST has them (they differ from SRC's, e.g. a run Crashed in DST): "
            + ", ".join(result.conflicts)
        )


def _listed(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
