"""The :class:`~wfkit.stores.LimitStore` members of the stores that keep limits in SQL tables
(SQLite, PostgreSQL), written once.

Each store names the module that runs its SQL (:mod:`wfkit.stores._sqlite_limits` or
:mod:`wfkit.stores._pg_limits`: the same five functions, each taking a connection) and
carries them out through its writer's ``call``, which owns the connection and turns a
database error into a :class:`~wfkit.exceptions.StoreError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar

from wfkit.stores._limits import ConcurrencyLimit, SlotGrant, check_limit_name, check_new_limit

__all__ = ["LimitsInTables"]


class LimitsInTables:
    """Mixin: ``create_limit`` ... ``release_slots`` through ``_limit_sql`` and ``_w``."""

    _limit_sql: ClassVar[ModuleType]  # create, read, delete, acquire, release
    _w: Any  # the store's writer: call(action, doing), owner, progress

    def _check_writable(self, doing: str) -> None:
        raise NotImplementedError  # pragma: no cover - every store defines it

    def create_limit(
        self, name: str, limit: int, slot_decay_per_second: float = 0.0
    ) -> ConcurrencyLimit:
        """Create the limit ``name`` or change its size and decay; the limit as it is now."""
        decay = check_new_limit(name, limit, slot_decay_per_second)
        self._check_writable("create a concurrency limit")
        sql = self._limit_sql
        return self._w.call(
            lambda c: sql.create(c, name, limit, decay), "create a concurrency limit"
        )

    def read_limit(self, name: str) -> ConcurrencyLimit | None:
        """The limit ``name``; None if there is none."""
        check_limit_name(name)
        sql = self._limit_sql
        found: list[ConcurrencyLimit] = self._w.call(lambda c: sql.read(c, name), "read a limit")
        return found[0] if found else None

    def concurrency_limits(self) -> list[ConcurrencyLimit]:
        """Every limit, by name."""
        return self._w.call(self._limit_sql.read, "read the concurrency limits")

    def delete_limit(self, name: str) -> bool:
        """Delete the limit ``name`` and its leases; whether there was one."""
        check_limit_name(name)
        self._check_writable("delete a concurrency limit")
        sql = self._limit_sql
        return bool(self._w.call(lambda c: sql.delete(c, name), "delete a concurrency limit"))

    def acquire_slots(
        self, names: Sequence[str], occupy: int, now: float, holder: str, lease: bool
    ) -> SlotGrant:
        """Take ``occupy`` slots on every existing limit in ``names``, or none, in one
        transaction; leases are this process's and end with it."""
        self._check_writable("take concurrency slots")
        request = (names, occupy, now, holder, lease)
        sql, w = self._limit_sql, self._w
        return w.call(
            # (w.owner read inside: the connection's first use registers the owner)
            lambda c: sql.acquire(c, w.owner, w.progress, request),
            "take concurrency slots",
        )

    def release_slots(self, lease_id: str, now: float) -> None:
        """Give back the slots of lease ``lease_id``."""
        sql = self._limit_sql
        self._w.call(lambda c: sql.release(c, lease_id, now), "give back concurrency slots")
