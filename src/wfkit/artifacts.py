"""Artifacts: markdown, tables, links, images and progress bars that runs publish, kept in
the run store with the run that created them (as Prefect's artifacts, with no server).

Each ``create_*`` function returns the new artifact's id. Inside a task run or a flow run,
the artifact belongs to that run; outside any run, to none. Several artifacts may share a
key (lowercase letters, digits and dashes): each is a version, and :meth:`Artifact.get`
returns the latest.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from wfkit._run_ids import current_run_ids
from wfkit.context import current_clock, current_store
from wfkit.exceptions import ConfigurationError
from wfkit.stores import ArtifactRecord

__all__ = [
    "Artifact",
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "list_artifacts",
    "read_artifact",
    "update_progress_artifact",
]

_KEY = re.compile(r"[a-z0-9-]+")


class Artifact:
    """Reading artifacts back: ``Artifact.get("my-key")`` is the latest version of a key."""

    @staticmethod
    def get(key: str) -> ArtifactRecord | None:
        """The latest artifact with ``key`` in the run store in force; None if there is none.

        Raises:
            ConfigurationError: ``key`` is not a valid artifact key.
        """
        versions = current_store().artifacts(key=_check_key(key))
        return versions[-1] if versions else None

    @staticmethod
    def versions(key: str) -> list[ArtifactRecord]:
        """Every artifact with ``key``, oldest first."""
        return current_store().artifacts(key=_check_key(key))


def list_artifacts(key: str | None = None, run_id: str | None = None) -> list[ArtifactRecord]:
    """Artifacts in the run store in force, oldest first: every version of ``key``, those of
    one flow run (its task runs' too) or task run, or all.

    Raises:
        ConfigurationError: ``key`` is not a valid artifact key.
    """
    return current_store().artifacts(key=None if key is None else _check_key(key), run_id=run_id)


def read_artifact(artifact_id: uuid.UUID | str) -> ArtifactRecord | None:
    """The artifact with this id in the run store in force; None if there is none."""
    return current_store().artifact(str(artifact_id))


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish ``markdown`` (text) as an artifact; its id.

    Raises:
        ConfigurationError: a bad key, or ``markdown`` is not a string.
    """
    return _create("markdown", _check_text("markdown", markdown), key, description)


def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """Publish a link (shown as ``link_text`` when given) as an artifact; its id.

    Raises:
        ConfigurationError: a bad key, link or link text.
    """
    link = _check_text("link", link)
    if link_text is not None:
        link = f"[{_check_text('link_text', link_text)}]({link})"
    return _create("link", link, key, description)


def create_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish the image at ``image_url`` as an artifact; its id.

    Raises:
        ConfigurationError: a bad key or URL.
    """
    return _create("image", _check_text("image_url", image_url), key, description)


def create_table_artifact(
    table: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """Publish a table as an artifact; its id. The table is a list of rows (dicts by column,
    or lists of equal length) or a dict of columns (lists of equal length); NaN becomes None.

    Raises:
        ConfigurationError: a bad key, a table of another shape, ragged rows or columns, or
            a value JSON cannot hold.
    """
    return _create("table", _rows(table), key, description)


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish a progress bar at ``progress`` percent; its id (to update it with
    :func:`update_progress_artifact`).

    Raises:
        ConfigurationError: a bad key, or ``progress`` is not a number from 0 to 100.
    """
    return _create("progress", _check_progress(progress), key, description)


def update_progress_artifact(
    artifact_id: uuid.UUID | str, progress: float, description: str | None = None
) -> uuid.UUID:
    """Move the progress artifact ``artifact_id`` to ``progress`` percent (and replace its
    description, when given); its id.

    Raises:
        ConfigurationError: ``progress`` is not a number from 0 to 100, or there is no
            progress artifact with that id.
    """
    value = _check_progress(progress)
    store = current_store()
    found = store.artifact(str(artifact_id))
    if found is None or found.type != "progress":
        raise ConfigurationError(
            f"artifact_id={artifact_id!r} names no progress artifact in the run store "
            f"{store.url!r}; pass the id create_progress_artifact() returned."
        )
    store.record_artifact(
        found._replace(
            data=value,
            description=found.description if description is None else description,
            updated=current_clock().now(),
        )
    )
    return uuid.UUID(found.id)


def _create(kind: str, data: Any, key: str | None, description: str | None) -> uuid.UUID:
    if key is not None:
        _check_key(key)
    if description is not None:
        _check_text("description", description)
    flow_run_id, task_run_id = current_run_ids()
    new_id, now = uuid.uuid4(), current_clock().now()
    current_store().record_artifact(
        ArtifactRecord(
            str(new_id), key, kind, data, description, flow_run_id, task_run_id, now, now
        )
    )
    return new_id


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ConfigurationError(
            f"artifact key={key!r} is not valid: a key holds only lowercase letters, digits "
            "and dashes, e.g. 'daily-report'."
        )
    return key


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{name}={value!r} is not a string; pass text.")
    return value


def _check_progress(progress: object) -> float:
    if (
        not isinstance(progress, int | float)
        or isinstance(progress, bool)
        or not 0 <= progress <= 100
    ):
        raise ConfigurationError(
            f"progress={progress!r} is not a percentage: pass a number from 0 to 100."
        )
    return float(progress)


def _rows(table: object) -> list[Any]:
    """The table as JSON-ready rows (see :func:`create_table_artifact`)."""
    rows: list[Any]
    if isinstance(table, Mapping):
        columns = list(table.values())
        lengths = {len(column) for column in columns if _is_list(column)}
        if len(lengths) > 1 or not all(_is_list(c) for c in columns):
            raise ConfigurationError(
                f"table={table!r} is a dict whose values are not columns of one length "
                f"(lengths {sorted(lengths)}); give every column the same number of values."
            )
        names = [str(name) for name in table]
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    elif isinstance(table, Sequence) and _is_list(table):
        if all(isinstance(row, Mapping) for row in table):
            rows = [{str(k): v for k, v in row.items()} for row in table]
        elif all(_is_list(row) for row in table):
            lengths = {len(row) for row in table}
            if len(lengths) > 1:
                raise ConfigurationError(
                    f"table rows have different lengths {sorted(lengths)}; give every row "
                    f"the same number of cells (table={table!r})."
                )
            rows = [list(row) for row in table]
        else:
            raise _not_a_table(table)
    else:
        raise _not_a_table(table)
    return [_json_ready(row) for row in rows]


def _not_a_table(table: object) -> ConfigurationError:
    return ConfigurationError(
        f"table={table!r} is not a table: pass a list of dicts, a list of lists, or a dict "
        "of lists."
    )


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _json_ready(value: Any) -> Any:
    """``value`` with NaN as None, checked to be what JSON holds."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if _is_list(value):
        return [_json_ready(v) for v in value]
    raise ConfigurationError(
        f"table cell {value!r} is not a value an artifact can hold: use strings, numbers, "
        "booleans or None (convert it with str() first)."
    )
