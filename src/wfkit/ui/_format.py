"""How the pages show times, durations, states and values: the Jinja filters and globals.

Everything here returns plain text; the templates escape it (autoescape is on for every
template), so a value from the store is never markup.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from wfkit.states import State

__all__ = [
    "FILTERS",
    "aware",
    "duration",
    "level_name",
    "moment",
    "pretty",
    "run_seconds",
    "state_class",
]


def aware(value: datetime) -> datetime:
    """``value`` with a timezone (the stores' naive times are UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def moment(value: datetime | None) -> str:
    """A time in UTC to the second (``2026-01-01 00:00:05Z``), or an empty string."""
    if value is None:
        return ""
    return aware(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(seconds: float | None) -> str:
    """``0.25s``, ``12.0s``, ``3m 05s``, ``2h 10m``; empty for None."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def run_seconds(run: Any, now: datetime | None = None) -> float | None:
    """How long a flow or task run has taken: start to end, or start to ``now`` while it
    runs; None if it never started."""
    if run.start_time is None:
        return None
    end = run.end_time
    if end is None:
        if run.state.is_final():
            return None
        end = now or datetime.now(UTC)
    return max(0.0, (aware(end) - aware(run.start_time)).total_seconds())


_CLASSES = {"Cached": "cached", "TimedOut": "failed", "AwaitingRetry": "waiting"}


def state_class(state: State | str) -> str:
    """The CSS class of a state's badge and bars: its name's for the few named states drawn
    apart (cached, retry waits), else its type's, lower case (``completed``, ``crashed``)."""
    if isinstance(state, str):
        return _CLASSES.get(state, state.lower())
    return _CLASSES.get(state.name, state.type.value.lower())


def level_name(level: int) -> str:
    """``INFO``, ``WARNING``...; ``Level 25`` for a level without a name."""
    return logging.getLevelName(level)


def pretty(value: Any) -> str:
    """A parameter or result as indented JSON where it is JSON, else its repr."""
    if isinstance(value, Mapping | list | tuple | str | int | float | bool) or value is None:
        try:
            return json.dumps(value, indent=2, sort_keys=True, default=repr, ensure_ascii=False)
        except (TypeError, ValueError):
            pass
    return repr(value)


FILTERS = {
    "moment": moment,
    "duration": duration,
    "state_class": state_class,
    "level_name": level_name,
    "pretty": pretty,
}
"""The Jinja filters the templates use, by name."""
