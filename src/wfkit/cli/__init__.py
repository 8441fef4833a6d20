"""The ``wf`` command (also ``python -m wfkit``): see, follow and re-run runs from a terminal.

One module per command group (:mod:`.runs`, :mod:`.store`, :mod:`.limits`, ...), imported only when its group is
used; how things print is decided in one place, :mod:`._output`. Every command reads through
the store protocols (:class:`~wfkit.stores.RunReader`) and writes no SQL. Stores are opened
read-only, except by ``wf runs retry``, ``wf store prune`` and
``wf limits create/delete``.

Exit codes: 0 ok; 1 an error, or a run that did not complete; 2 a usage error.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from wfkit._version import __version__
from wfkit.cli._common import ErrorHandlingGroup

__all__ = ["main", "wf"]

# Each group: its module, and its one-line help (shown by `wf --help` without importing it).
_GROUPS = {
    "artifacts": ("wfkit.cli.artifacts", "List and inspect the artifacts runs published."),
    "assets": ("wfkit.cli.assets", "List the assets runs materialized."),
    "events": ("wfkit.cli.events", "List the events runs emitted."),
    "limits": ("wfkit.cli.limits", "Create, list and delete concurrency limits."),
    "runs": ("wfkit.cli.runs", "See, follow and re-run flow runs."),
    "store": ("wfkit.cli.store", "Look after a run store."),
    "ui": ("wfkit.cli.ui", "Serve a read-only web page of the store's runs."),
}


class _Wf(ErrorHandlingGroup):
    """The top-level group: imports a command group's module when it is used (``wf --help``
    then costs neither, ~5 ms)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _GROUPS:
            return None
        command = getattr(importlib.import_module(_GROUPS[cmd_name][0]), cmd_name)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, _GROUPS[name][1]) for name in sorted(_GROUPS)])


@click.group(cls=_Wf, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wf")
def wf() -> None:
    """wfkit's runs, from the terminal.

    Every command takes --store URL (default: the configured store, WFKIT_STORE).
    """


def main(args: list[str] | None = None) -> Any:
    """Run the ``wf`` command (the console script's entry point); exits the process."""
    return wf.main(args=args, prog_name="wf")
