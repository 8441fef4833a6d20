"""Task caching for one run: its key, the lookup, the write, and the per-key lock of
``isolation_level="SERIALIZABLE"``.

The lifecycle decides when each happens (it yields ``CacheKey``, ``Acquire``,
``CacheLookup`` and ``CacheWrite`` effects); the drivers call the methods here to carry
them out, the async driver in a worker thread.

Cache records live in the run store (``write_cache`` / ``read_cache``), so hits work across
flow runs and processes for policies without ``RUN_ID``. Expiry is measured on the clock.

Nothing read from the store is trusted: whoever can write a store file could otherwise make
wfkit unpickle what they like. A record's value is a MAC followed by the payload: an
HMAC-SHA256, keyed by the store's :meth:`~wfkit.stores.CacheStore.cache_secret`, over the
cache key, the serializer name and the payload. A hit needs a record whose serializer is the
task's own ``result_serializer`` (never the one the record names) and whose MAC checks; the
payload is deserialized only then. JSON payloads carry a MAC too: ``json.loads`` runs no code,
but a forged JSON record would still be a result the task never returned. The expiry and task
name are not covered: changing them can only make a genuine result live longer or shorter.
"""

from __future__ import annotations

import hmac
import json
import logging
import pickle
import threading
from datetime import timedelta
from typing import Any, Self

import wfkit._realtime as _realtime
from wfkit.cache_policies import CacheKeyContext, CacheKeyError, CachePolicy
from wfkit.logging import logger_for

__all__ = ["MAC_SIZE", "SERIALIZERS", "KeyLock", "TaskCache", "sign"]

SERIALIZERS = ("pickle", "json")
_locks_guard = threading.Lock()
# key -> [lock, number of runs holding or waiting for it]; an entry goes when unused.
_key_locks: dict[str, list[Any]] = {}
# key -> (secret, serializer, value) of the last record whose MAC checked. The stores hand
# back the very bytes object they keep, so a repeated hit on one record compares the tuple
# (identity first, then equality: never a false match) instead of computing an HMAC again,
# which costs ~25k instructions, a tenth of a whole cache hit.
_checked: dict[str, tuple[bytes, str, bytes]] = {}
_MAX_CHECKED = 1024
_MAX_CHECKED_VALUE = 64 * 2**10  # bytes; checking a bigger one costs little next to loading it


def _serialize(value: Any, serializer: str) -> bytes:
    if serializer == "json":
        return json.dumps(value).encode()
    return pickle.dumps(value, protocol=5)


MAC_SIZE = 32
"""Bytes of MAC before the payload in a cache record's value."""


def sign(secret: bytes, key: str, serializer: str, payload: bytes) -> bytes:
    """The value stored for ``payload`` under ``key``: its MAC, then the payload."""
    return _mac(secret, key, serializer, payload) + payload


def _mac(secret: bytes, key: str, serializer: str, payload: bytes) -> bytes:
    # The key's length goes first so that no (key, serializer, payload) triple can be read as
    # another one; the version lets a later format refuse these records.
    key_bytes = key.encode()
    header = b"wfkit-cache-1\0%d\0%s\0%s\0" % (len(key_bytes), key_bytes, serializer.encode())
    return hmac.digest(secret, header + payload, "sha256")


def _authentic(secret: bytes, key: str, serializer: str, value: bytes) -> bool:
    """Whether ``value`` (a MAC, then the payload) is what this store signed for ``key``."""
    if _checked.get(key) == (secret, serializer, value):
        return True
    mac = _mac(secret, key, serializer, value[MAC_SIZE:])
    if not hmac.compare_digest(value[:MAC_SIZE], mac):
        return False
    if len(value) <= _MAX_CHECKED_VALUE:  # not pinning big values the store let go
        if len(_checked) >= _MAX_CHECKED:
            _checked.clear()
        _checked[key] = (secret, serializer, value)
    return True


def _deserialize(data: bytes, serializer: str) -> Any:
    if serializer == "json":
        return json.loads(data)
    return pickle.loads(data)  # noqa: S301 - its MAC was checked


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
    _lock: list[Any] | None  # [key, KeyLock]

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

    def lock_for(self, key: str) -> KeyLock | None:
        """Under SERIALIZABLE, the key's lock (registered for this run; the run must then
        :meth:`release`): concurrent identical misses compute once, the others then find the
        record. None under READ_COMMITTED.

        The lock is this process's for the key, then, if the store is a
        :class:`~wfkit.stores.CacheLockStore`, the store's, which holds across processes and
        hosts."""
        if not self.serializable:
            return None
        with _locks_guard:
            entry = _key_locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        lock = KeyLock(entry[0], self.runtime.store, key, self)
        self._lock = [key, lock]
        return lock

    def release(self) -> None:
        """Give back what the run took of the key's lock, and forget the key's entry if no
        other run uses it."""
        held, self._lock = self._lock, None
        if held is None:
            return
        key, lock = held
        lock.release()
        with _locks_guard:
            entry = _key_locks.get(key)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del _key_locks[key]

    def lookup(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` for a live record, else ``(False, None)``; an expired record is
        a miss, and so (with a warning naming the key) is one that cannot be read, was written
        with another serializer than the task's, or fails its MAC check. Nothing is
        deserialized before the MAC checks."""
        runtime = self.runtime
        try:
            store = runtime.store
            # The secret first: a store that makes a new one deletes the records signed with
            # the lost one (and says so once), so none of them is read and warned about.
            secret = store.cache_secret()
            record = store.read_cache(key)
            if record is None:
                return False, None
        except Exception as exc:
            self.logger.warning(
                "Reading the cache record %r failed (%s); treating it as a miss.", key, exc
            )
            return False, None
        expires_at = record.expires_at
        if expires_at is not None and expires_at <= runtime.clock.now():
            return False, None
        serializer, value = self.serializer, record.value
        if record.serializer != serializer:
            self.logger.warning(
                "The cache record %r was written with serializer %r, but this task reads "
                "results with %r; treating it as a miss.",
                key,
                record.serializer,
                serializer,
            )
            return False, None
        if not _authentic(secret, key, serializer, value):
            self.logger.warning(
                "The cache record %r fails its integrity check (its MAC is missing, wrong, or "
                "made with another store's key), so it was not deserialized; treating it as a "
                "miss. If others can write the store, make it yours alone (chmod 600).",
                key,
            )
            return False, None
        payload = value[MAC_SIZE:]
        try:
            if serializer == "pickle":  # the default, without a call
                return True, pickle.loads(payload)  # noqa: S301 - its MAC was checked
            return True, _deserialize(payload, serializer)
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
        store = self.runtime.store
        try:
            data = sign(store.cache_secret(), key, self.serializer, data)
            store.write_cache(key, data, self.serializer, expires, self.task.name, now)
        except Exception as exc:
            self.logger.warning("Writing the cache record %r failed (%s); not cached.", key, exc)


class KeyLock:
    """One run's lock on a SERIALIZABLE cache key: this process's lock first (the threads of
    a process queue there, none holding a store connection while it waits), then the store's
    (:class:`~wfkit.stores.CacheLockStore`) if it has one. ``acquire`` and ``release`` as a
    ``threading.Lock``'s; ``release`` gives back what is held, all or part."""

    __slots__ = (
        "_local", "_shared", "_has_local", "_has_shared", "_key", "_cache", "_next_try", "_pause"
    )  # fmt: skip

    def __init__(self, local: threading.Lock, store: Any, key: str, cache: TaskCache) -> None:
        self._local, self._key, self._cache = local, key, cache
        make = getattr(store, "cache_lock", None)
        self._shared: Any = make(key) if make is not None else None
        self._has_local = self._has_shared = False
        self._next_try, self._pause = 0.0, 0.0

    def acquire(self, blocking: bool = True) -> bool:
        """Take both locks (waiting, or not: then False if either is taken). Once this
        process's is held it stays held across calls, so that a caller polling with
        ``blocking=False`` (the async driver) waits its turn in the store's only; and polls the
        store with growing pauses (5 ms to 0.2 s), as each poll is a round trip."""
        if not self._has_local:
            if not self._local.acquire(blocking):
                return False
            self._has_local = True
        shared = self._shared
        if shared is None or self._has_shared:
            return True
        if not blocking and _realtime.monotonic() < self._next_try:
            return False
        try:
            self._has_shared = shared.acquire(blocking)
        except Exception as exc:  # (the store's lock is lost; this process's still holds)
            self._shared = None
            self._cache.logger.warning(
                "Taking the store's lock on the cache key %r failed (%s); only this process "
                "waits for it, so another process may compute the same result.",
                self._key,
                exc,
            )
            return True
        if not self._has_shared:
            self._pause = min(max(2 * self._pause, 0.005), 0.2)
            self._next_try = _realtime.monotonic() + self._pause
        return self._has_shared

    def release(self) -> None:
        """Give back what is held: the store's lock, then this process's."""
        try:
            if self._has_shared:
                self._has_shared = False
                self._shared.release()
        finally:
            if self._has_local:
                self._has_local = False
                self._local.release()
