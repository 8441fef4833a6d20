"""``wf assets``: the assets runs materialized (``@materialize``), each with its latest
materialization."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from wfkit.cli._common import RunNames, json_option, open_for_cli, store_option
from wfkit.cli._output import Cell, Output, echo_error, iso, local_time

if TYPE_CHECKING:
    from wfkit.assets import AssetMaterialization

__all__ = ["assets"]


@click.group()
def assets() -> None:
    """List the assets runs materialized."""


@assets.command("ls")
@json_option
@store_option
def ls(json_mode: bool, store_url: str | None) -> None:
    """List every asset materialized in the store, by key, with its latest materialization:
    whether it succeeded, when, in which run, and the assets it depends on."""
    from wfkit.assets import list_assets  # (lazy: wfkit.assets imports the task machinery)
    from wfkit.context import use_runtime  # (lazy: as above)

    store = open_for_cli(store_url)
    with use_runtime(store=store):
        found = list_assets()
    out = Output(json_mode)
    if json_mode:
        out.json([_asset_json(a) for a in found])
        return
    if not found:
        echo_error("No assets materialized yet.")
        return
    names = RunNames(store)
    rows: list[list[Cell | str]] = [
        [
            a.key,
            Cell("succeeded", "green") if a.succeeded else Cell("failed", "red"),
            local_time(a.occurred),
            ", ".join(a.depends_on) or "-",
            names(a.flow_run_id),
        ]
        for a in found
    ]
    out.table(("ASSET", "LAST", "MATERIALIZED", "DEPENDS ON", "FLOW RUN"), rows)


def _asset_json(asset: AssetMaterialization) -> dict[str, Any]:
    return {
        "key": asset.key,
        "succeeded": asset.succeeded,
        "occurred": iso(asset.occurred),
        "depends_on": list(asset.depends_on),
        "metadata": dict(asset.metadata),
        "flow_run_id": asset.flow_run_id,
        "task_run_id": asset.task_run_id,
    }
