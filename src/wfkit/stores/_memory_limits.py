"""Concurrency limits of the ``memory://`` store: plain dicts under one lock (the reference
implementation of :class:`~wfkit.stores._protocols.LimitStore`). Leases live as long as the
process, which is as long as the store."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from wfkit.stores._limits import (
    ConcurrencyLimit,
    SlotGrant,
    check_limit_name,
    check_new_limit,
    decayed,
    judge,
    kept_endings,
)

__all__ = ["MemoryLimits"]


class _Limit:
    __slots__ = ("created", "decay", "draining", "ending", "limit", "updated")

    def __init__(self, limit: int, decay: float, created: datetime) -> None:
        self.limit, self.decay, self.created = limit, decay, created
        self.draining = 0.0  # slots taken by rate_limit, as they were at `updated`
        self.updated = 0.0
        self.ending: list[tuple[float, int]] = []  # (given back at, slots), see judge()


class MemoryLimits:
    """The limit methods of :class:`~wfkit.stores.memory.MemoryStore`."""

    def __init__(self) -> None:
        self._limits_lock = threading.Lock()
        self._limits: dict[str, _Limit] = {}
        # lease id -> (limit names, slots, holder)
        self._leases: dict[str, tuple[tuple[str, ...], int, str]] = {}

    def create_limit(
        self, name: str, limit: int, slot_decay_per_second: float = 0.0
    ) -> ConcurrencyLimit:
        """Create the limit ``name`` or change its size and decay (its holders keep their
        slots); the limit as it is now."""
        decay = check_new_limit(name, limit, slot_decay_per_second)
        with self._limits_lock:
            kept = self._limits.get(name)
            if kept is None:
                kept = self._limits[name] = _Limit(limit, decay, datetime.now(UTC))
            kept.limit, kept.decay = limit, decay
            return self._record(name, kept, kept.updated)

    def read_limit(self, name: str) -> ConcurrencyLimit | None:
        """The limit ``name``; None if there is none."""
        check_limit_name(name)
        with self._limits_lock:
            kept = self._limits.get(name)
            return None if kept is None else self._record(name, kept, kept.updated)

    def concurrency_limits(self) -> list[ConcurrencyLimit]:
        """Every limit, by name."""
        with self._limits_lock:
            return [self._record(n, k, k.updated) for n, k in sorted(self._limits.items())]

    def delete_limit(self, name: str) -> bool:
        """Delete the limit ``name`` (its leases end with it); whether there was one."""
        check_limit_name(name)
        with self._limits_lock:
            for lease_id, (names, slots, holder) in list(self._leases.items()):
                if name in names:
                    self._leases[lease_id] = (tuple(n for n in names if n != name), slots, holder)
            return self._limits.pop(name, None) is not None

    def acquire_slots(
        self, names: Sequence[str], occupy: int, now: float, holder: str, lease: bool
    ) -> SlotGrant:
        """Take ``occupy`` slots on every existing limit in ``names``, or none."""
        with self._limits_lock:
            found = [(n, self._limits[n]) for n in names if n in self._limits]
            missing = tuple(n for n in names if n not in self._limits)
            for name, kept in found:
                refusal = judge(
                    name,
                    kept.limit,
                    kept.decay,
                    self._leased(name),
                    decayed(kept.draining, kept.decay, kept.updated, now),
                    occupy,
                    [(at - now, slots) for at, slots in kept.ending if at > now],
                )
                if refusal is not None:
                    return refusal._replace(
                        missing=missing,
                        self_held=any(
                            h == holder and name in ns for ns, _, h in self._leases.values()
                        ),
                    )
            lease_id = None
            if lease:
                lease_id = secrets.token_hex(8)
                self._leases[lease_id] = (tuple(n for n, _ in found), occupy, holder)
            else:
                for _, kept in found:
                    kept.draining = decayed(kept.draining, kept.decay, kept.updated, now) + occupy
                    kept.updated = now
            return SlotGrant(True, lease_id, missing)

    def release_slots(self, lease_id: str, now: float) -> None:
        """Give back the slots of lease ``lease_id`` at ``now`` (nothing if it is gone)."""
        with self._limits_lock:
            names, slots, _ = self._leases.pop(lease_id, ((), 0, ""))
            for name in names:
                kept = self._limits.get(name)
                if kept is not None:
                    kept.ending = kept_endings(kept.limit, [*kept.ending, (now, slots)])

    def _leased(self, name: str) -> int:
        return sum(slots for names, slots, _ in self._leases.values() if name in names)

    def _record(self, name: str, kept: _Limit, now: float) -> ConcurrencyLimit:
        active = self._leased(name) + decayed(kept.draining, kept.decay, kept.updated, now)
        return ConcurrencyLimit(name, kept.limit, kept.decay, active, kept.created)
