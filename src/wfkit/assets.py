"""Assets: ``@materialize("s3://bucket/data.csv")`` makes a task whose runs record that
they materialized those assets (as on Prefect's assets page), with their dependencies.

A materialization is an event (:mod:`wfkit.events`) named
``prefect.asset.materialization.succeeded`` (or ``.failed`` when the body raised) about the
asset, recorded with the task run; its ``related`` resources are the asset's dependencies:
the ``asset_deps`` given to ``materialize``, and the assets that upstream materializing task
runs (whose futures or results this run was given) materialized.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wfkit.context import current_store, task_run_context
from wfkit.events import RESOURCE_ID, emit_event
from wfkit.exceptions import ConfigurationError
from wfkit.tasks import task

__all__ = [
    "Asset",
    "AssetMaterialization",
    "AssetProperties",
    "add_asset_metadata",
    "list_assets",
    "materialize",
]

_MATERIALIZED = "prefect.asset.materialization"
# A URI: a scheme, '://', then no whitespace and none of the characters URIs leave out.
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>{}|\\^`]+")
_MAX_KEY = 512


@dataclass(frozen=True)
class AssetProperties:
    """What is shown with an asset: its name, description, owners and URL."""

    name: str | None = None
    description: str | None = None
    owners: Sequence[str] = ()
    url: str | None = None


@dataclass(frozen=True)
class Asset:
    """An asset: a URI key (``s3://bucket/data.csv``) and optional properties.

    Raises:
        ConfigurationError: the key is not a URI (a scheme, ``://``, no spaces or quotes,
            at most 512 characters).
    """

    key: str
    properties: AssetProperties | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check_key(self.key)

    def add_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Add ``metadata`` to this asset's materialization by the running task run."""
        add_asset_metadata(self, metadata)


@dataclass(frozen=True)
class AssetMaterialization:
    """An asset's latest materialization: what :func:`list_assets` returns."""

    key: str
    succeeded: bool
    flow_run_id: str | None
    task_run_id: str | None
    depends_on: tuple[str, ...]
    metadata: Mapping[str, Any]
    occurred: Any  # datetime


def materialize(
    *assets: str | Asset,
    by: str | None = None,
    asset_deps: Sequence[str | Asset] | None = None,
    **task_kwargs: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """Decorate a function as a task that materializes ``assets`` each time it runs.

    Args:
        assets: the assets it materializes (URI keys or :class:`Asset`).
        by: the tool that does the materializing (e.g. ``"dbt"``), recorded with it.
        asset_deps: assets it depends on beyond those upstream tasks materialized.
        task_kwargs: what ``@task`` accepts.

    Raises:
        ConfigurationError: no asset, or a malformed asset key.
    """
    if not assets:
        raise ConfigurationError("materialize() needs at least one asset key, e.g. 's3://b/x.csv'.")
    made = tuple(_asset(a) for a in assets)
    deps = tuple(_asset(a).key for a in asset_deps or ())

    def decorate(fn: Callable[..., Any]) -> Any:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def body_async(*args: Any, **kwargs: Any) -> Any:
                with _recording(made, by, deps):
                    return await fn(*args, **kwargs)

            return task(**task_kwargs)(body_async)

        @functools.wraps(fn)
        def body(*args: Any, **kwargs: Any) -> Any:
            with _recording(made, by, deps):
                return fn(*args, **kwargs)

        return task(**task_kwargs)(body)

    return decorate


def add_asset_metadata(asset: str | Asset, metadata: Mapping[str, Any]) -> None:
    """Add ``metadata`` (JSON values) to the materialization of ``asset`` that the running
    task run records when it ends.

    Raises:
        ConfigurationError: not inside a task run that materializes ``asset``.
    """
    key = _asset(asset).key
    pending = _pending.get(id(task_run_context.get()))
    if pending is None or key not in pending:
        raise ConfigurationError(
            f"add_asset_metadata({key!r}, ...) was called outside a task run that "
            "materializes it; call it inside a function decorated with "
            f"@materialize({key!r})."
        )
    pending[key].update(metadata)


def list_assets() -> list[AssetMaterialization]:
    """Every asset materialized in the run store in force, by key, with its latest
    materialization."""
    latest: dict[str, Any] = {}
    for event in current_store().events(f"{_MATERIALIZED}.*"):
        latest[event.resource[RESOURCE_ID]] = event
    return [
        AssetMaterialization(
            key,
            e.event.endswith(".succeeded"),
            e.flow_run_id,
            e.task_run_id,
            tuple(r[RESOURCE_ID] for r in e.related if r.get("prefect.resource.role") == "asset"),
            e.payload,
            e.occurred,
        )
        for key, e in sorted(latest.items())
    ]


# task run context id -> asset key -> metadata added while it runs
_pending: dict[int, dict[str, dict[str, Any]]] = {}


class _recording:
    """Around a materializing body: collect metadata, then emit one event per asset."""

    def __init__(self, made: tuple[Asset, ...], by: str | None, deps: tuple[str, ...]) -> None:
        self.made, self.by, self.deps = made, by, deps
        self.ctx = id(task_run_context.get())

    def __enter__(self) -> None:
        _pending[self.ctx] = {a.key: {} for a in self.made}

    def __exit__(self, exc_type: object, *rest: object) -> None:
        metadata = _pending.pop(self.ctx, {})
        outcome = "failed" if exc_type is not None else "succeeded"
        deps = dict.fromkeys((*self.deps, *_upstream_assets()))
        for asset in self.made:
            resource = {RESOURCE_ID: asset.key}
            if self.by:
                resource["prefect.asset.materialized-by"] = self.by
            if asset.properties is not None and asset.properties.name:
                resource["prefect.resource.name"] = asset.properties.name
            related = [
                {RESOURCE_ID: d, "prefect.resource.role": "asset"} for d in deps if d != asset.key
            ]
            emit_event(
                f"{_MATERIALIZED}.{outcome}",
                resource,
                related=related,
                payload=metadata.get(asset.key),
            )


def _upstream_assets() -> list[str]:
    """The assets the upstream task runs of the running task run materialized."""
    ctx = task_run_context.get()
    upstream = getattr(ctx.run, "upstream_ids", ()) if ctx is not None else ()
    store = current_store()
    return [
        e.resource[RESOURCE_ID]
        for run_id in upstream
        for e in store.events(f"{_MATERIALIZED}.succeeded", run_id=run_id)
    ]


def _asset(value: object) -> Asset:
    if isinstance(value, Asset):
        return value
    if isinstance(value, str):
        return Asset(value)
    raise ConfigurationError(
        f"asset {value!r} is neither an asset key (a URI string) nor an Asset; pass e.g. "
        "'s3://bucket/data.csv'."
    )


def _check_key(key: object) -> None:
    if not isinstance(key, str) or len(key) > _MAX_KEY or not _KEY.fullmatch(key):
        raise ConfigurationError(
            f"asset key={key!r} is not a valid asset key: use a URI with a scheme, such as "
            "'s3://bucket/data.csv' or 'postgres://db/schema/table', without spaces or "
            f"quotes, at most {_MAX_KEY} characters."
        )
