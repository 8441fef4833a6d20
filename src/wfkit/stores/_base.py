"""The values the engine hands to a store, and the helpers the built-in stores share.

The engine never talks to a store directly: it emits state changes and log entries through
the plugin hooks (:mod:`wfkit.hookspecs`), and the built-in store-writer plugin passes them to
the current store's ``record_*`` methods. Snapshots are immutable named tuples so that hooks
can keep them, and so that building one per state change stays cheap. They are public as
``wfkit.stores.FlowRunSnapshot`` and so on; the helpers below them are for the stores of this
package only.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from wfkit.exceptions import ConfigurationError
from wfkit.states import State, StateType

__all__ = [
    "CacheRecord",
    "FlowRunSnapshot",
    "LogEntry",
    "STATE_TYPE_VALUES",
    "TaskRunSnapshot",
    "aware",
    "cache_value",
    "check_batch_size",
    "check_ids",
    "check_limit",
    "check_moment",
    "check_states",
    "check_tags",
    "owner_gone_message",
    "run_times",
    "state_matches",
    "states_match",
]


class FlowRunSnapshot(NamedTuple):
    """A flow run as it is at one state change; ``state`` is the state it just entered."""

    id: str
    name: str
    flow_name: str
    flow_version: str | None
    parameters: Mapping[str, Any]
    tags: tuple[str, ...]
    parent_flow_run_id: str | None
    parent_task_run_id: str | None
    root_flow_run_id: str
    run_count: int
    state: State
    host: str
    pid: int
    flow_path: str | None = None
    """Where the flow function is found, ``module:qualname`` (``wf runs retry`` imports it)."""


class TaskRunSnapshot(NamedTuple):
    """A task run as it is at one state change; ``state`` is the state it just entered."""

    id: str
    name: str
    task_name: str
    flow_run_id: str | None
    parameters: Mapping[str, Any]
    tags: tuple[str, ...]
    cache_key: str | None
    upstream_ids: tuple[str, ...]
    run_count: int
    state: State
    host: str
    pid: int


class LogEntry(NamedTuple):
    """One log line emitted inside a run."""

    flow_run_id: str | None
    task_run_id: str | None
    level: int
    logger: str
    message: str
    timestamp: datetime


class CacheRecord(NamedTuple):
    """One cached task result: the serialized value stored under a cache key.

    Attributes:
        key: the cache key (see :mod:`wfkit.cache_policies`).
        value: the signed, serialized result (a MAC, then the payload: see
            :mod:`wfkit._engine.caching`).
        serializer: the name of the serializer that wrote ``value`` (``"pickle"``, ``"json"``).
        expires_at: when the record stops being restorable; None: never.
        task_name: the task that wrote it, for listings.
        created_at: when it was written (on the engine's clock).
    """

    key: str
    value: bytes
    serializer: str
    expires_at: datetime | None
    task_name: str | None
    created_at: datetime


# -- helpers for the stores of this package --------------------------------------------------
def check_limit(limit: int | None, name: str = "limit") -> int | None:
    """Validate a ``limit`` argument (or another one, called ``name``): None (no limit) or a
    whole number >= 0.

    Raises:
        ConfigurationError: anything else.
    """
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ConfigurationError(
            f"{name}={limit!r} is invalid: pass None for all runs, or a whole number >= 0 "
            "for the most recent N."
        )
    return limit


def check_batch_size(batch_size: int) -> int:
    """Validate a ``batch_size`` argument: a whole number >= 1.

    Raises:
        ConfigurationError: anything else.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigurationError(
            f"batch_size={batch_size!r} is invalid: pass a whole number >= 1 (runs deleted "
            "per transaction)."
        )
    return batch_size


def check_tags(tags: Collection[str] | None) -> tuple[str, ...] | None:
    """Validate a ``tags`` filter: None (any tags) or a collection of tag names.

    Raises:
        ConfigurationError: a single string (which would be read as its letters), or
            anything that is not a collection of strings.
    """
    return (
        None
        if tags is None
        else _strings(
            "tags",
            tags,
            "tag names, for example ['nightly'], for the runs carrying all of "
            "them; or None for runs with any tags",
        )
    )


def check_ids(flow_run_ids: Collection[str]) -> list[str]:
    """Validate a ``flow_run_ids`` argument: a collection of run ids (not one string).

    Raises:
        ConfigurationError: anything else.
    """
    return list(_strings("flow_run_ids", flow_run_ids, "flow run ids"))


def check_states(states: Collection[str] | None) -> tuple[str, ...] | None:
    """Validate a ``states`` filter: None (any state) or a collection of state names/types.

    Raises:
        ConfigurationError: a single string, or anything that is not a collection of strings.
    """
    return (
        None
        if states is None
        else _strings(
            "states",
            states,
            "state names or types, for example ['Completed', 'failed'], or None for any state",
        )
    )


def _strings(name: str, values: object, what: str) -> tuple[str, ...]:
    """``values`` as a tuple, if it is a collection of strings (one string is not)."""
    if not isinstance(values, str | bytes) and isinstance(values, Collection):
        wanted = tuple(values)
        if all(isinstance(value, str) for value in wanted):
            return wanted
    raise ConfigurationError(f"{name}={values!r} is invalid: pass a list of {what}.")


def states_match(state: State, wanted: Collection[str] | None) -> bool:
    """Whether ``state`` matches any of the state names or types in ``wanted`` (None: any)."""
    return wanted is None or any(state_matches(state, w) for w in wanted)


def check_moment(name: str, moment: datetime | None) -> datetime | None:
    """Validate a ``since``/``until`` filter named ``name``: None, or a datetime (a naive
    one is read as UTC, as the stores read naive times); returned timezone-aware.

    Raises:
        ConfigurationError: ``moment`` is not a datetime.
    """
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        raise ConfigurationError(
            f"{name}={moment!r} is invalid: pass a datetime (timezone-aware; a naive one is "
            "read as UTC), or None for no bound."
        )
    return aware(moment)


def cache_value(value: bytes, key: str) -> bytes:
    """``value`` as bytes, for a cache record; a bytes-like value is copied, others refused.

    Raises:
        TypeError: ``value`` is not bytes-like.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(
        f"The value of cache record {key!r} must be bytes (a serialized result), got "
        f"{type(value).__qualname__}; serialize it first."
    )


def aware(moment: datetime) -> datetime:
    """``moment`` with a timezone: a naive time is read as UTC, as the SQLite store does.

    Raises:
        TypeError: ``moment`` is not a datetime.
    """
    if not isinstance(moment, datetime):
        raise TypeError(f"Expected a datetime, got {moment!r}.")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# A state type's value, by type: what the SQLite store writes. (``type.value`` runs the
# enum's Python property, and ``str(type)`` makes a new string: it writes three per task run.)
STATE_TYPE_VALUES: dict[StateType, str] = {t: t.value for t in StateType}


def state_matches(state: State, wanted: str | None) -> bool:
    """Whether ``state`` matches a filter given as a state name or type, case-insensitively."""
    if wanted is None:
        return True
    w = wanted.casefold()
    return state.name.casefold() == w or state.type.value.casefold() == w


def run_times(states: Sequence[State]) -> tuple[datetime | None, datetime | None]:
    """(start_time, end_time) of a history: first running state, and the final state."""
    running = StateType.RUNNING
    start = next((s.timestamp for s in states if s.type is running), None)
    end = states[-1].timestamp if states and states[-1].is_final() else None
    return start, end


def owner_gone_message(host: str | None, pid: int | None, why: str, last_beat: datetime) -> str:
    """The message of the ``Crashed`` state a run gets when the process recording it
    (``host``, ``pid``) is gone for the reason ``why``; ``last_beat``: its last heartbeat."""
    beat = last_beat.astimezone(UTC).isoformat(timespec="seconds")
    return (
        f"The process that was running this (host {host!r}, pid {pid}) {why}; it was "
        f"probably killed. Its last heartbeat was at {beat}."
    )
