"""The runs page's filters, read from the query string: what was asked for, and a sentence
for each value that could not be used (shown above the table; that filter is then left out,
so a bad bookmark still shows runs, never an error page)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from wfkit.states import StateType

__all__ = ["LOG_LEVELS", "STATE_NAMES", "RunFilters", "parse_level", "parse_run_filters"]

STATE_NAMES = (
    "Scheduled",
    "Pending",
    "Running",
    "AwaitingRetry",
    "Retrying",
    "Completed",
    "Cached",
    "Failed",
    "TimedOut",
    "Crashed",
    "Cancelling",
    "Cancelled",
    "Paused",
)
"""The state names the state filter offers (it also takes a state type: ``failed``)."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class RunFilters:
    """What the runs page shows: every field is a filter of the query string, None (or
    empty) when not given or not usable; ``errors`` says why a given value was not used."""

    flow: str | None = None
    state: str | None = None
    tags: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    limit: int = DEFAULT_LIMIT
    before: datetime | None = None
    raw: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()

    def url(self, **changes: Any) -> str:
        """The runs page's URL with these filters, ``changes`` applied (None drops one);
        ``before`` (the page) is dropped unless given, since other filters start over."""
        params: dict[str, Any] = {k: v for k, v in self.raw.items() if k not in ("before", "tag")}
        tags: Sequence[str] = self.tags
        for key, value in changes.items():
            if key == "tag":
                tags = value or ()
            elif value is None:
                params.pop(key, None)
            else:
                params[key] = value
        pairs = [(k, v) for k, v in params.items() if v != ""] + [("tag", t) for t in tags]
        return "/" + (f"?{urlencode(pairs)}" if pairs else "")


def parse_run_filters(query: Any, now: datetime | None = None) -> RunFilters:
    """The filters of a runs-page query string (a Starlette ``QueryParams``, or any mapping
    with ``getlist``)."""
    now = now or datetime.now(UTC)
    errors: list[str] = []
    raw = {key: str(query.get(key)) for key in query if key != "tag"}
    tags = tuple(t.strip() for v in query.getlist("tag") for t in v.split(",") if t.strip())
    state = _text(query.get("state"))
    if state is not None and not _is_state(state):
        errors.append(
            f"state={state!r} is not a state: use one of {', '.join(STATE_NAMES)}, or a state "
            "type such as failed."
        )
        state = None
    return RunFilters(
        flow=_text(query.get("flow")),
        state=state,
        tags=tags,
        since=_moment("since", query.get("since"), now, errors),
        until=_moment("until", query.get("until"), now, errors),
        text=_text(query.get("q")),
        limit=_limit(query.get("limit"), errors),
        before=_moment("before", query.get("before"), now, errors),
        raw=raw,
        errors=tuple(errors),
    )


def parse_level(value: str | None) -> tuple[int, str | None]:
    """A log level from a query string (a name in any case, or a number) and the error to
    show if it is not one (the level is then 0: every line)."""
    text = (value or "").strip().upper()
    if not text:
        return 0, None
    if text.isdigit():
        return int(text), None
    if text in LOG_LEVELS:
        return int(getattr(logging, text)), None
    return 0, f"level={value!r} is not a log level: use one of {', '.join(LOG_LEVELS)}."


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _is_state(value: str) -> bool:
    folded = value.casefold()
    return folded in {n.casefold() for n in STATE_NAMES} or folded in {
        t.value.casefold() for t in StateType
    }


def _limit(value: str | None, errors: list[str]) -> int:
    if value is None or not value.strip():
        return DEFAULT_LIMIT
    text = value.strip()
    if text.isdigit() and 1 <= int(text) <= MAX_LIMIT:
        return int(text)
    errors.append(
        f"limit={value!r} is not a page size: give a whole number from 1 to {MAX_LIMIT} "
        f"(showing {DEFAULT_LIMIT})."
    )
    return DEFAULT_LIMIT


def _moment(name: str, value: str | None, now: datetime, errors: list[str]) -> datetime | None:
    """An ISO time (naive: UTC) or an age (``2h``: that long before ``now``)."""
    text = _text(value)
    if text is None:
        return None
    age = _AGE.match(text)
    if age is not None:
        return now - timedelta(seconds=float(age[1]) * _SECONDS[age[2].lower()])
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        errors.append(
            f"{name}={value!r} is not a time: give an ISO time such as 2026-01-31 or "
            "2026-01-31T14:00 (UTC), or an age such as 30m, 2h, 3d or 1w."
        )
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)
