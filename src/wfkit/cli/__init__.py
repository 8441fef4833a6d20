"""The ``wf`` command (also ``python -m wfkit``): see, follow and re-run runs from a terminal.

One module per command group (:mod:`.runs`, :mod:`.store`); how things print is decided in
one place, :mod:`._output`. Every command reads through the store protocols
(:class:`~wfkit.stores.RunReader`) and writes no SQL. Stores are opened read-only, except by
``wf runs retry`` and ``wf store prune``.

Exit codes: 0 ok; 1 an error, or a run that did not complete; 2 a usage error.
"""

from __future__ import annotations

from typing import Any

import click

from wfkit._version import __version__
from wfkit.cli._common import ErrorHandlingGroup
from wfkit.cli.runs import runs
from wfkit.cli.store import store

__all__ = ["main", "wf"]


@click.group(cls=ErrorHandlingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wf")
def wf() -> None:
    """wfkit's runs, from the terminal.

    Every command takes --store URL (default: the configured store, WFKIT_STORE).
    """


wf.add_command(runs)
wf.add_command(store)


def main(args: list[str] | None = None) -> Any:
    """Run the ``wf`` command (the console script's entry point); exits the process."""
    return wf.main(args=args, prog_name="wf")
