"""The artifacts section of a flow run's page: what each artifact shows, as plain values the
template escapes (nothing from the store is ever markup).

- markdown (and any text): the text itself, in a ``<pre>``: markdown is not rendered, so a
  ``<script>`` in it is shown, never run;
- a table: its rows as a simple HTML table (dict rows by their keys, list rows by position);
- a link or an image: a link only when its URL is ``http(s)://`` (a ``javascript:`` URL is
  shown as text); an image is linked, not loaded;
- progress: the percentage, with a ``<progress>`` bar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from wfkit.stores import ArtifactRecord

__all__ = ["ArtifactView", "artifact_views"]

# A link artifact made with link_text is stored as "[text](url)" (as in Prefect).
_LABELLED = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<url>.*)\)", re.DOTALL)
_WEB = re.compile(r"https?://\S+", re.IGNORECASE)


class ArtifactView(NamedTuple):
    """One artifact as the page shows it (``kind``: text, table, link or progress)."""

    artifact: ArtifactRecord
    kind: str
    text: str = ""
    url: str = ""
    href: str | None = None
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    percent: float = 0.0


def artifact_views(found: Sequence[ArtifactRecord]) -> list[ArtifactView]:
    """The views of ``found``, in their order."""
    return [_view(a) for a in found]


def _view(artifact: ArtifactRecord) -> ArtifactView:
    data = artifact.data
    if artifact.type == "table" and isinstance(data, list) and data:
        headers, rows = _grid(data)
        return ArtifactView(artifact, "table", headers=headers, rows=rows)
    if artifact.type == "progress" and isinstance(data, int | float):
        return ArtifactView(artifact, "progress", text=f"{data:g}%", percent=float(data))
    if artifact.type in ("link", "image") and isinstance(data, str):
        labelled = _LABELLED.fullmatch(data.strip())
        url = labelled["url"] if labelled else data.strip()
        text = labelled["text"] if labelled and labelled["text"] else url
        href = url if _WEB.fullmatch(url) else None
        return ArtifactView(artifact, "link", text=text, url=url, href=href)
    return ArtifactView(artifact, "text", text=data if isinstance(data, str) else _cell(data))


def _grid(rows: list[Any]) -> tuple[list[str], list[list[str]]]:
    if all(isinstance(row, dict) for row in rows):
        headers = list(dict.fromkeys(k for row in rows for k in row))
        return headers, [[_cell(row.get(h)) for h in headers] for row in rows]
    width = max((len(row) for row in rows if isinstance(row, list)), default=0)
    cells = [[_cell(v) for v in row] if isinstance(row, list) else [_cell(row)] for row in rows]
    return [str(i) for i in range(width)], cells


def _cell(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)
