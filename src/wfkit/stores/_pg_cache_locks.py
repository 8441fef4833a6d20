"""SERIALIZABLE cache locks on PostgreSQL: session-level advisory locks, so that identical
misses on every host that shares the database compute once.

A lock is ``pg_advisory_lock(CACHE_LOCK_CLASS, <32 bits of the key's hash>)``. A session lock
lives as long as the session holds it, so a held lock keeps its connection: not one of the
store's pool (four connections, which the flushes need), but one of its own, kept idle for
the next lock once given back. A lock ends with its session whatever happens to the process:

- released on every path the engine takes (a hit, a failure, a timeout: the driver's
  ``finally``);
- a process that dies has its socket closed by the kernel, and the server ends the session;
- a host that vanishes (power, network): the session's TCP keepalives (set below, about 30 s)
  end it on the server.

The wait for a lock is the server's (``pg_advisory_lock``): no polling, and the holder's
release wakes the next waiter at once. The lock connection's own ``statement_timeout`` is 0,
as a wait is as long as the holder's task.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from wfkit.exceptions import StoreError
from wfkit.stores._pg_schema import CACHE_LOCK_CLASS, PgUrl, connect

__all__ = ["PgCacheLock", "PgCacheLocks"]

_KEEP_IDLE = 4  # lock connections kept for the next locks, per store
#: The lock connection's session: waits as long as the holder's task runs, and is not ended
#: while idle holding a lock (``idle_session_timeout``, PostgreSQL 14+, is set apart below);
#: the server probes a silent client after 10 s, then every 5 s, and gives up after 4 probes.
_SESSION = (
    "SET statement_timeout = 0",
    "SET lock_timeout = 0",
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 4",
)


def lock_id(key: str) -> int:
    """The second half of ``key``'s advisory lock: 32 bits of its SHA-256, signed (int4)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)


class PgCacheLocks:
    """The cache locks of one store, and the idle connections they reuse."""

    def __init__(self, url: PgUrl) -> None:
        self.url = url
        self._guard = threading.Lock()
        self._idle: list[Any] = []
        self._pid = os.getpid()

    def lock(self, key: str) -> PgCacheLock:
        """A new, unheld lock on ``key``."""
        return PgCacheLock(self, key)

    def take_connection(self) -> Any:
        """An idle lock connection, or a new one.

        Raises:
            StoreError: the server cannot be reached.
        """
        with self._guard:
            self._forget_if_forked()
            if self._idle:
                return self._idle.pop()
        conn = connect(self.url)
        try:
            for statement in _SESSION:
                conn.execute(statement)
            if conn.info.server_version >= 140000:
                conn.execute("SET idle_session_timeout = 0")
        except BaseException:
            conn.close()
            raise
        return conn

    def give_back(self, conn: Any) -> None:
        """Keep ``conn`` (holding no lock) for the next lock, or close it."""
        with self._guard:
            self._forget_if_forked()
            if len(self._idle) < _KEEP_IDLE and not conn.closed:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections (held locks end with their runs)."""
        with self._guard:
            self._forget_if_forked()
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _forget_if_forked(self) -> None:
        # A forked child shares the parent's sockets: closing them would send the server a
        # goodbye on the parent's sessions (and free its locks). The child leaves them be.
        if os.getpid() != self._pid:
            self._idle, self._pid = [], os.getpid()


class PgCacheLock:
    """One task run's advisory lock on a cache key (a :class:`~wfkit.stores.CacheLock`)."""

    def __init__(self, locks: PgCacheLocks, key: str) -> None:
        self._locks = locks
        self._args = (CACHE_LOCK_CLASS, lock_id(key))
        self._conn: Any = None  # while held

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock, waiting on the server (``blocking``), or try once.

        Raises:
            StoreError: the server cannot be reached, or it ended the wait (a deadlock
                between nested SERIALIZABLE tasks of two processes, say).
        """
        if self._conn is not None:
            return True
        conn = self._locks.take_connection()
        try:
            if blocking:
                conn.execute("SELECT pg_advisory_lock(%s, %s)", self._args)
                held = True
            else:
                row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", self._args).fetchone()
                held = bool(row[0])
        except BaseException as exc:
            conn.close()  # (its session, and any lock it got, end with it)
            if isinstance(exc, Exception):
                raise _error(exc, self._locks.url) from exc
            raise
        if held:
            self._conn = conn
        else:
            self._locks.give_back(conn)
        return held

    def release(self) -> None:
        """Give the lock back; a connection that fails to is closed, which ends the lock."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", self._args)
        except Exception:
            conn.close()
            return
        self._locks.give_back(conn)


def _error(exc: Exception, url: PgUrl) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return StoreError(
        f"Could not take a cache lock in the PostgreSQL run store ({url.where()}): {reason}"
    )
