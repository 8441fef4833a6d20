"""Task caching for one run: its key, the lookup, the write, and the per-key lock of
``isolation_level="SERIALIZABLE"``.

The lifecycle decides when each happens (it yields ``CacheKey``, ``Acquire``,
``CacheLookup`` and ``CacheWrite`` effects); the drivers call the methods here to carry
them out, the async driver in a worker thread.

Cache records live in the run store (``write_cache`` / ``read_cache``), so hits work across
flow runs and processes for policies without ``RUN_ID``. Expiry is measured on the clock.
"""

from __future__ import annotations

import json
import logging
import pickle
import threading
from datetime import timedelta
from typing import Any, Self

from wfkit.cache_policies import CacheKeyContext, CacheKeyError, CachePolicy
from wfkit.logging import logger_for

__all__ = ["SERIALIZERS", "TaskCache"]

SERIALIZERS = ("pickle", "json")
_locks_guard = threading.Lock()
# key -> [lock, number of runs holding or waiting for it]; an entry goes when unused.
_key_locks: dict[str, list[Any]] = {}


def _serialize(value: Any, serializer: str) -> bytes:
    if serializer == "json":
        return json.dumps(value).encode()
    return pickle.dumps(value, protocol=5)


def _deserialize(data: bytes, serializer: str) -> Any:
    if serializer == "json":
        return json.loads(data)
    if serializer == "pickle":
        return pickle.loads(data)  # noqa: S301 - records this store wrote
    raise ValueError(f"unknown serializer {serializer!r} (this wfkit knows {SERIALIZERS})")


class TaskCache:
    """The cache side of one task run; build it with :meth:`for_run`."""

    __slots__ = (
        "policy",
        "expiration",
        "refresh",
        "serializable",
        "serializer",
        "task",
        "run",
        "runtime",
        "_context",
        "flow_parameters",
        "bound",
        "_lock",
    )
    policy: CachePolicy
    expiration: timedelta | None
    refresh: bool
    serializable: bool  # isolation_level="SERIALIZABLE": misses of one key compute once
    serializer: str
    task: Any
    run: Any
    runtime: Any
    _context: Any  # the run context, whose logger is made on first use
    flow_parameters: dict[str, Any] | None
    bound: Any
    _lock: list[Any] | None  # [key, lock, acquired]

    @classmethod
    def for_run(cls, task: Any, policy: CachePolicy, ctx: Any, flow_ctx: Any, bound: Any) -> Self:
        """The cache side of the task run whose context is ``ctx`` (a ``TaskRunContext``),
        inside the flow run ``flow_ctx`` (None outside a flow).

        Every cache hit takes this path: no keyword arguments, and the run's logger is made
        only if a warning needs it.
        """
        self = cls.__new__(cls)
        options = task.options
        self.policy, self.task, self.bound, self._context = policy, task, bound, ctx
        self.expiration, self.refresh = options.cache_expiration, bool(options.refresh_cache)
        self.serializable = policy.isolation_level == "SERIALIZABLE"
        self.serializer = options.result_serializer or "pickle"
        self.run, self.runtime, self._lock = ctx.run, ctx.runtime, None
        self.flow_parameters = dict(flow_ctx.run.parameters) if flow_ctx else None
        return self

    @property
    def logger(self) -> logging.LoggerAdapter[Any]:
        """The run's logger, for warnings."""
        return logger_for(self._context)

    def key(self) -> str | None:
        """The run's cache key; None (run uncached, with a warning) when a ``cache_key_fn``
        raises.

        Raises:
            CacheKeyError: an argument cannot be hashed (the message names it).
        """
        run, task = self.run, self.task
        ctx = CacheKeyContext(task.name, task.fn, run.id, run.flow_run_id, self.flow_parameters)
        try:
            key = self.policy.compute_key(ctx, dict(self.bound.arguments), self.flow_parameters)
        except CacheKeyError:
            raise
        except Exception as exc:
            self.logger.warning(
                "Computing the cache key failed (%s: %s); the task runs without caching.",
                type(exc).__name__,
                exc,
            )
            return None
        return key

    def lock_for(self, key: str) -> threading.Lock | None:
        """Under SERIALIZABLE, the key's lock (registered for this run; the run must then
        :meth:`release`): concurrent identical misses compute once, the others then find the
        record. None under READ_COMMITTED."""
        if not self.serializable:
            return None
        with _locks_guard:
            entry = _key_locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        self._lock = [key, entry[0], False]  # type: ignore[assignment]
        return entry[0]  # type: ignore[no-any-return]

    def mark_held(self) -> None:
        """The lock from :meth:`lock_for` was acquired (release it in :meth:`release`)."""
        self._lock[2] = True  # type: ignore[index]

    def release(self) -> None:
        held, self._lock = self._lock, None
        if held is None:
            return
        key, lock, acquired = held  # type: ignore[misc]
        if acquired:
            lock.release()
        with _locks_guard:
            entry = _key_locks.get(key)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del _key_locks[key]

    def lookup(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` for a live record, else ``(False, None)``; an expired, unreadable
        or corrupt record is a miss (with a warning for the last two)."""
        runtime = self.runtime
        try:
            record = runtime.store.read_cache(key)
        except Exception as exc:
            self.logger.warning(
                "Reading the cache record %r failed (%s); treating it as a miss.", key, exc
            )
            return False, None
        if record is None:
            return False, None
        expires_at = record.expires_at
        if expires_at is not None and expires_at <= runtime.clock.now():
            return False, None
        try:
            if record.serializer == "pickle":  # the default, without a call
                return True, pickle.loads(record.value)  # noqa: S301 - records wfkit wrote
            return True, _deserialize(record.value, record.serializer)
        except Exception as exc:
            self.logger.warning(
                "The cache record %r cannot be read back (%s: %s); treating it as a miss.",
                key,
                type(exc).__name__,
                exc,
            )
            return False, None

    def write(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``; a value that cannot be serialized is not cached
        (the run keeps its result) and a warning says why."""
        try:
            data = _serialize(value, self.serializer)
        except Exception as exc:
            self.logger.warning(
                "The result of task run %r cannot be serialized with %r (%s: %s); it is "
                "returned but not cached.",
                self.run.name,
                self.serializer,
                type(exc).__name__,
                exc,
            )
            return
        now = self.runtime.clock.now()
        expires = now + self.expiration if self.expiration is not None else None
        try:
            self.runtime.store.write_cache(key, data, self.serializer, expires, self.task.name, now)
        except Exception as exc:
            self.logger.warning("Writing the cache record %r failed (%s); not cached.", key, exc)
