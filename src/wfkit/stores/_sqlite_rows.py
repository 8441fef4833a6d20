"""The SQLite store's row encoding: snapshots to rows, rows back to records."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from wfkit._json import reusable_encoder
from wfkit.states import State
from wfkit.stores._base import (
    STATE_TYPE_VALUES,
    CacheRecord,
    FlowRunSnapshot,
    TaskRunSnapshot,
    cache_value,
    run_times,
)

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, TaskRun

_R = TypeVar("_R", "FlowRun", "TaskRun")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_MICROSECOND = timedelta(microseconds=1)


_REPR_LIMIT = 200


def _flow_row(
    s: FlowRunSnapshot, owner: int, first_us: int | None, start_us: int | None
) -> tuple[Any, ...]:
    at = _to_us(s.state.timestamp)
    return (
        s.id, s.name, s.flow_name, _nullable(s.flow_version), _params_json(s.parameters),
        _list_json(s.tags), _nullable(s.parent_flow_run_id), _nullable(s.parent_task_run_id),
        s.root_flow_run_id, s.run_count, STATE_TYPE_VALUES[s.state.type], s.state.name, at,
        _nullable(start_us), first_us, at, s.host, s.pid, owner, _nullable(s.flow_path),
    )  # fmt: skip


def _task_row(s: TaskRunSnapshot, owner: int) -> tuple[Any, ...]:
    flow_run_id, cache_key = s.flow_run_id, s.cache_key
    return (
        s.id, s.name, s.task_name, flow_run_id if flow_run_id is not None else _NULL,
        _params_json(s.parameters), _list_json(s.tags),
        cache_key if cache_key is not None else _NULL, _list_json(s.upstream_ids), s.run_count,
        STATE_TYPE_VALUES[s.state.type], s.state.name, _to_us(s.state.timestamp), s.host, s.pid,
        owner,
    )  # fmt: skip


def _state_row(run_id: str, state: State) -> tuple[Any, ...]:
    message = state.message
    return (
        run_id, STATE_TYPE_VALUES[state.type], state.name, _to_us(state.timestamp),
        message if message is not None else _NULL,
    )  # fmt: skip


# NULL, for the columns that are NULL in most rows (a state's message, a task run's cache key
# and flow run id). SQLite stores a NaN as NULL; binding None itself costs ~0.5 us a value,
# since Python's sqlite3 first looks for an adapter for it (and formats the AttributeError
# that the lookup raises and swallows). Read back, these columns give None either way.
_NULL = math.nan


def _nullable(value: Any) -> Any:
    """``value``, or NULL bound the fast way (see ``_NULL``)."""
    return value if value is not None else _NULL


def _to_us(moment: datetime | None) -> int | None:
    if not isinstance(moment, datetime):
        return None
    if moment.tzinfo is None:  # the clock gives aware UTC; read a naive time as UTC
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def _from_us(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def _short_repr(value: object) -> str:
    try:
        text = repr(value)
    except RecursionError:  # (a value nested thousands of levels deep)
        text = f"<{type(value).__qualname__} nested too deeply to show>"
    except Exception:
        text = f"<unrepresentable {type(value).__qualname__}>"
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _params_json(params: Mapping[str, Any]) -> str:
    """Parameters as JSON; anything JSON cannot hold is stored as its short repr."""
    if not params:
        return "{}"
    if type(params) is not dict:  # the engine passes a read-only mappingproxy
        params = dict(params)
    try:
        return _to_json(params)
    except (TypeError, ValueError, RecursionError):  # non-string keys, circular values, ...
        pass
    safe = {}
    for key, value in params.items():
        try:
            _to_json(value)
        except (TypeError, ValueError, RecursionError):
            value = _short_repr(value)
        safe[str(key)] = value
    return _to_json(safe)


def _list_json(items: Iterable[Any]) -> str:
    return _to_json(list(items)) if items else "[]"


def _cache_row(
    key: str,
    value: bytes,
    serializer: str,
    expires_at: datetime | None,
    task_name: str | None,
    created_at: datetime,
) -> tuple[Any, ...]:
    """The parameters of ``_UPSERT_CACHE`` for one cache record."""
    value = cache_value(value, key)
    return (key, serializer, _to_us(expires_at), task_name, _to_us(created_at), value)


_CACHE_COLUMNS = "key, serializer, expires_us, task_name, created_us, value"
_UPSERT_CACHE = (
    f"INSERT INTO cache ({_CACHE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO "
    "UPDATE SET serializer = excluded.serializer, expires_us = excluded.expires_us, "
    "task_name = excluded.task_name, created_us = excluded.created_us, value = excluded.value"
)
_SELECT_CACHE = f"SELECT {_CACHE_COLUMNS} FROM cache"


def _cache_record(row: Sequence[Any]) -> CacheRecord:
    """A row of ``_SELECT_CACHE`` as a record."""
    key, serializer, expires_us, task_name, created_us, value = row
    created = _from_us(created_us) or _EPOCH
    return CacheRecord(key, bytes(value), serializer, _from_us(expires_us), task_name, created)


# records in -------------------------------------------------------------------------------
# JSON columns, and the type the record holds: the records are plain dataclasses that take
# what they are given, so JSON arrays become the tuples the fields declare here.
_JSON_FIELDS = (("parameters", dict), ("tags", tuple), ("upstream_ids", tuple))


def _record(cls: type[_R], columns: Sequence[str], row: Sequence[Any], states: list[State]) -> _R:
    fields = dict(zip(columns, row, strict=True))
    for key, kind in _JSON_FIELDS:
        if key in fields:
            fields[key] = kind(json.loads(fields[key]))
    history = tuple(states)  # never empty: a run's row and its states are written together
    start, end = run_times(history)
    return cls(**fields, state=history[-1], states=history, start_time=start, end_time=end)


# One encoder made once (json.dumps builds one per call: ~1.2 us of every run row).
_to_json = reusable_encoder(_short_repr, separators=(", ", ": "))


_FLOW_COLUMNS = (
    "id", "name", "flow_name", "flow_version", "parameters", "tags", "parent_flow_run_id",
    "parent_task_run_id", "root_flow_run_id", "run_count", "state_type", "state_name",
    "state_us", "start_us", "first_us", "heartbeat_us", "host", "pid", "owner", "flow_path",
)  # fmt: skip

_TASK_COLUMNS = (
    "id", "name", "task_name", "flow_run_id", "parameters", "tags", "cache_key",
    "upstream_ids", "run_count", "state_type", "state_name", "state_us", "host", "pid",
    "owner",
)  # fmt: skip

# What the records are built from (the other columns serve ordering and crash detection:
# ``owner`` is the owners row of the process that last wrote the run).
_FLOW_FIELDS = (*_FLOW_COLUMNS[:10], "host", "pid", "flow_path")

_TASK_FIELDS = (*_TASK_COLUMNS[:9], "host", "pid")

_KEEP_FIRST = frozenset({"start_us", "first_us"})  # set once, by the earliest batch
