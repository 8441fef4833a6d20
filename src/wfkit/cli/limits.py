"""``wf limits``: create, list and delete the concurrency limits kept in a run store (global
limits used by ``concurrency(...)`` and ``rate_limit(...)``, and tag limits on task runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from wfkit.cli._common import json_option, open_for_cli, store_option
from wfkit.cli._output import Output, echo_error, iso, local_time
from wfkit.stores._limits import TAG_PREFIX

if TYPE_CHECKING:
    from wfkit.stores import ConcurrencyLimit

__all__ = ["limits"]

_TAG_OPTION_HELP = "A tag limit: cap the running task runs that carry TAG (limit tag:TAG)."


@click.group()
def limits() -> None:
    """Create, list and delete concurrency limits."""


@limits.command("create")
@click.argument("args", nargs=-1, metavar="[NAME] [LIMIT]")
@click.option("--limit", "limit_option", type=int, metavar="N", help="How many slots it has.")
@click.option("--tag", metavar="TAG", help=_TAG_OPTION_HELP)
@click.option(
    "--slot-decay-per-sec",
    "decay",
    type=float,
    metavar="X",
    help="How fast slots taken by rate_limit() drain, per second (default: 0 for a new "
    "limit, so only concurrency() uses it; an existing limit keeps its own).",
)
@json_option
@store_option
def create(
    args: tuple[str, ...],
    limit_option: int | None,
    tag: str | None,
    decay: float | None,
    json_mode: bool,
    store_url: str | None,
) -> None:
    """Create a limit, or change the size and decay of an existing one (its holders keep
    their slots).

    \b
    wf limits create database --limit 10
    wf limits create api --limit 5 --slot-decay-per-sec 0.5
    wf limits create --tag database 10
    """
    name, positional = _name_and_limit(args, tag)
    limit = _one_limit(positional, limit_option)
    if decay is not None and not decay >= 0:  # (NaN is not >= 0 either)
        raise click.UsageError(
            f"--slot-decay-per-sec {decay!r} is not a rate >= 0: give slots per second, or "
            "leave it out for a limit only concurrency() uses."
        )
    if tag is not None and decay:
        raise click.UsageError(
            "--slot-decay-per-sec cannot be combined with --tag: a tag limit caps running "
            "task runs, and slots taken by task runs do not drain."
        )
    store = open_for_cli(store_url, write=True)
    if decay is None:  # resizing a limit keeps its decay unless one is given
        existing = store.read_limit(name)
        decay = existing.slot_decay_per_second if existing is not None else 0.0
    made = store.create_limit(name, limit, decay)
    out = Output(json_mode)
    if json_mode:
        out.json(limit_json(made))
        return
    decays = (
        f", slots drain at {made.slot_decay_per_second:g}/s" if made.slot_decay_per_second else ""
    )
    out.line(f"Limit {made.name!r}: {made.limit} slots{decays}.")


def _name_and_limit(args: tuple[str, ...], tag: str | None) -> tuple[str, str | None]:
    """The limit's name and the LIMIT given as an argument (if any), from the arguments."""
    if tag is not None:
        named = [a for a in args if not _is_int(a)]
        if named:
            raise click.UsageError(
                f"Give either NAME or --tag, not both (got NAME={named[0]!r} and "
                f"--tag {tag!r}): `wf limits create NAME --limit N` makes a global limit, "
                "`wf limits create --tag TAG N` a tag limit."
            )
        if len(args) > 1:
            raise click.UsageError(f"Too many arguments {args!r}: give --tag TAG and the limit.")
        return TAG_PREFIX + tag, args[0] if args else None
    if not args:
        raise click.UsageError(
            "Give the limit's NAME, or --tag TAG: `wf limits create NAME --limit N` makes a "
            "global limit, `wf limits create --tag TAG N` a tag limit."
        )
    if len(args) > 2:
        raise click.UsageError(f"Too many arguments {args!r}: give NAME and the limit.")
    return args[0], args[1] if len(args) == 2 else None


def _one_limit(positional: str | None, option: int | None) -> int:
    if positional is not None and not _is_int(positional):
        raise click.UsageError(f"LIMIT={positional!r} is not a whole number of slots.")
    given = [int(v) for v in (positional, option) if v is not None]
    if not given:
        raise click.UsageError("Give the number of slots: --limit N (or N after the name).")
    if len(given) == 2 and given[0] != given[1]:
        raise click.UsageError(
            f"LIMIT={given[0]!r} and --limit {given[1]!r} disagree: give the number of slots once."
        )
    if given[0] < 0:
        shown = f"--limit {option!r}" if positional is None else f"LIMIT={given[0]!r}"
        raise click.UsageError(f"{shown} is negative: give a number of slots >= 0.")
    return given[0]


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


@limits.command("ls")
@json_option
@store_option
def ls(json_mode: bool, store_url: str | None) -> None:
    """List the limits, by name, with the slots they have and those taken."""
    found = open_for_cli(store_url).concurrency_limits()
    out = Output(json_mode)
    if json_mode:
        out.json([limit_json(limit) for limit in found])
        return
    if not found:
        echo_error("No concurrency limits yet (`wf limits create NAME --limit N` makes one).")
        return
    rows = [
        [
            limit.name,
            str(limit.limit),
            f"{limit.active_slots:g}",
            f"{limit.slot_decay_per_second:g}" if limit.slot_decay_per_second else "-",
            local_time(limit.created),
        ]
        for limit in found
    ]
    out.table(("NAME", "LIMIT", "ACTIVE SLOTS", "DECAY/S", "CREATED"), rows)


@limits.command("delete")
@click.argument("name", required=False)
@click.option("--tag", metavar="TAG", help="Delete the tag limit of TAG (limit tag:TAG).")
@store_option
def delete(name: str | None, tag: str | None, store_url: str | None) -> None:
    """Delete the limit NAME (its holders' slots go with it)."""
    if (name is None) == (tag is None):
        raise click.UsageError("Give either NAME or --tag TAG (one of them).")
    full = name if name is not None else TAG_PREFIX + str(tag)
    if not open_for_cli(store_url, write=True).delete_limit(full):
        raise click.ClickException(
            f"There is no concurrency limit named {full!r} in the store: `wf limits ls` lists them."
        )
    Output().line(f"Deleted the limit {full!r}.")


def limit_json(limit: ConcurrencyLimit) -> dict[str, object]:
    """A limit as JSON-ready data."""
    return {
        "name": limit.name,
        "limit": limit.limit,
        "active_slots": limit.active_slots,
        "slot_decay_per_second": limit.slot_decay_per_second,
        "created": iso(limit.created),
    }
