"""Concurrency limits kept in a run store: their records, argument checks, and the one rule
that says whether slots can be taken now, shared by the memory and SQLite stores.

A limit has ``limit`` slots. What occupies them:

- *leases*: slots taken by ``concurrency(...)`` and given back when its block ends. Each lease
  belongs to a holder (a process's thread or asyncio task) and, in a store shared by
  processes, to the process that took it: a process that dies does not keep its slots;
- *decaying slots*: slots taken by ``rate_limit(...)`` on a limit with
  ``slot_decay_per_second``; never given back, they drain at that rate.

Times are seconds since the Unix epoch, as the caller's clock tells them (a fake clock under
the test harness), so decay happens in virtual time there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from wfkit.exceptions import ConfigurationError

__all__ = [
    "TAG_PREFIX",
    "ConcurrencyLimit",
    "SlotGrant",
    "check_limit_name",
    "check_new_limit",
    "check_occupy",
    "decayed",
    "judge",
    "kept_endings",
]

#: Tag-based task concurrency limits are limits named ``tag:<tag>`` (as in Prefect 3).
TAG_PREFIX = "tag:"

_NAME = re.compile(r"[^\s/%?#][^/%?#]*")


class ConcurrencyLimit(NamedTuple):
    """A concurrency limit as a store keeps it.

    Attributes:
        name: its name (``tag:<tag>`` for a tag-based task limit).
        limit: how many slots it has.
        slot_decay_per_second: how fast slots taken by ``rate_limit`` drain (0: never; such a
            limit serves only ``concurrency``).
        active_slots: slots occupied: leases, and the draining slots as they were at the
            last ``rate_limit`` (a store has no clock to drain them by when it is read).
        created: when it was created (timezone-aware UTC).
    """

    name: str
    limit: int
    slot_decay_per_second: float
    active_slots: float
    created: datetime


class SlotGrant(NamedTuple):
    """What a store answers to a request for slots.

    Attributes:
        granted: whether the slots were taken (on every existing limit named, or none).
        lease_id: the lease to give back, when ``granted`` and leased.
        missing: the names that have no limit (nothing was taken for them).
        blocking: the first limit that had no room (when not granted).
        wait: seconds until ``blocking`` has room, when only time stands in the way
            (slots draining, leases given back later on another clock); None when leases
            held now do, and only their release helps.
        self_held: whether the requesting holder itself holds a lease on ``blocking``.
    """

    granted: bool
    lease_id: str | None = None
    missing: tuple[str, ...] = ()
    blocking: str | None = None
    wait: float | None = None
    self_held: bool = False


def check_limit_name(name: object) -> str:
    """``name`` if it is a usable limit name.

    Raises:
        ConfigurationError: it is not a non-empty string without '/', '%', '?', '#' or
            leading space.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"concurrency limit name={name!r} is not a usable name. Use a non-empty string "
            "without '/', '%', '?' or '#' that does not start with a space, e.g. 'database'."
        )
    return name


def check_new_limit(name: object, limit: object, slot_decay_per_second: object) -> float:
    """Check the arguments of a new limit; the decay as a float.

    Raises:
        ConfigurationError: a bad name, a limit that is not an int >= 0, or a decay that is
            not a finite number >= 0.
    """
    check_limit_name(name)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ConfigurationError(
            f"concurrency limit {name!r}: limit={limit!r} is not a whole number of slots >= 0."
        )
    decay = slot_decay_per_second
    if (
        not isinstance(decay, int | float)
        or isinstance(decay, bool)
        or not math.isfinite(decay)
        or decay < 0
    ):
        raise ConfigurationError(
            f"concurrency limit {name!r}: slot_decay_per_second={decay!r} is not a number of "
            "slots per second >= 0. Pass 0 for a limit that only concurrency() uses."
        )
    return float(decay)


def check_occupy(occupy: object) -> int:
    """``occupy`` if it is a whole number of slots >= 1.

    Raises:
        ConfigurationError: it is not.
    """
    if not isinstance(occupy, int) or isinstance(occupy, bool) or occupy < 1:
        raise ConfigurationError(
            f"occupy={occupy!r} is not a number of slots to take: pass a whole number >= 1."
        )
    return occupy


def decayed(slots: float, decay: float, since: float, now: float) -> float:
    """What remains of ``slots`` draining at ``decay`` per second from ``since`` to ``now``."""
    return max(0.0, slots - decay * max(0.0, now - since))


def judge(
    name: str,
    limit: int,
    decay: float,
    leased: int,
    draining: float,
    occupy: int,
    ending: Sequence[tuple[float, int]] = (),
) -> SlotGrant | None:
    """None if ``occupy`` more slots fit on the limit ``name`` now; otherwise a refusal
    naming it, with how long until they fit when only time stands in the way.

    ``leased`` slots are held until given back; ``draining`` slots drain at ``decay`` per
    second; ``ending`` are (seconds from now, slots) of leases given back *later* than now on
    the giver's clock: under a fake clock, runs on other timelines give slots back at
    virtual times ahead of the asker's, and the asker must wait until then to take them.
    """
    fixed = leased + occupy
    if fixed <= limit and not ending and draining + fixed <= limit:
        return None  # the common case, without sorting anything
    if fixed > limit:
        return SlotGrant(False, blocking=name)
    # Occupation falls over time (slots drain, leases end): find the first moment it fits.
    points = sorted({0.0, *(at for at, _ in ending)})
    for i, moment in enumerate(points):
        room = limit - fixed - sum(slots for at, slots in ending if at > moment)
        if room < 0:
            continue
        if draining - decay * moment <= room:
            return None if moment == 0 else SlotGrant(False, blocking=name, wait=moment)
        later = points[i + 1] if i + 1 < len(points) else math.inf
        if decay > 0 and (draining - room) / decay < later:
            return SlotGrant(False, blocking=name, wait=(draining - room) / decay)
    return SlotGrant(False, blocking=name)  # pragma: no cover - draining slots always drain


def kept_endings(limit: int, ending: Sequence[tuple[float, int]]) -> list[tuple[float, int]]:
    """The (given back at, slots) of given-back leases worth keeping for :func:`judge`: the
    latest ones, until they hold ``limit`` slots. An earlier one never matters: whenever it
    would still count, the later ones count too and fill the limit on their own."""
    kept, total = [], 0
    for at, slots in sorted(ending, reverse=True):
        if total >= limit:
            break
        kept.append((at, slots))
        total += slots
    return kept
