"""Taking slots on concurrency limits, written once for the sync and async faces.

:func:`acquiring` decides and performs no waiting itself: it asks the store for slots and,
while there is no room, yields a :class:`Wait` that the face carries out (``time.sleep`` or
``await``), then asks again. How long to wait:

- when only slots taken by ``rate_limit`` stand in the way, exactly until enough of them
  have drained (on the run's clock, so under the test harness in virtual time);
- when leases stand in the way, a short poll. Under a fake clock the poll is in real time and
  moves no clock: another thread's run must give its slots back first.
  A lease the waiter itself holds is never given back while it waits: it then waits out its
  timeout in virtual time at once.
- a lease given back at a virtual time ahead of the waiter's (a run on another timeline)
  counts until that time: the store says how long, and the waiter sleeps that long on its
  clock, so in virtual time no more runs hold a limit than it has slots.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Generator, Sequence
from typing import NamedTuple

from wfkit.clock import Clock, FakeClock
from wfkit.context import current_clock, current_store
from wfkit.exceptions import ConfigurationError, WfkitError
from wfkit.stores import RunStore, SlotGrant
from wfkit.stores._limits import check_limit_name, check_occupy

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "Slots",
    "Wait",
    "acquiring",
    "check_names",
    "holder_name",
]

_log = logging.getLogger("wfkit.concurrency")

#: Seconds between two looks at a limit whose leases block (real time, or the run's clock).
POLL = 0.1
_FAKE_POLL = 0.001  # real seconds between looks under a fake clock


class ConcurrencySlotAcquisitionError(WfkitError):
    """Slots cannot be taken: a limit is missing (with ``strict=True``), or smaller than
    what is asked of it."""


class AcquireConcurrencySlotTimeoutError(WfkitError, TimeoutError):
    """``timeout_seconds`` passed while waiting for slots (names the limit)."""


class Wait(NamedTuple):
    """What the face does before asking again: sleep ``seconds`` on the run's clock, or (with
    ``real``) in real time, moving no clock."""

    seconds: float
    real: bool = False


class Slots(NamedTuple):
    """Slots taken: the store, the lease to give back (None for ``rate_limit``), the clock."""

    store: RunStore
    lease_id: str | None
    clock: Clock

    def release(self) -> None:
        """Give the lease's slots back (nothing for draining slots)."""
        if self.lease_id is not None:
            self.store.release_slots(self.lease_id, self.clock.now().timestamp())


def check_names(names: object) -> tuple[str, ...]:
    """``names`` (one name or a list of them) as a tuple of distinct names.

    Raises:
        ConfigurationError: it is neither, or a name is not usable.
    """
    if isinstance(names, str):
        return (check_limit_name(names),)
    if not isinstance(names, list | tuple) or not names:
        raise ConfigurationError(
            f"names={names!r} is not a limit name or a non-empty list of them; pass for "
            "example 'database' or ['database', 'api']."
        )
    return tuple(dict.fromkeys(check_limit_name(n) for n in names))


def holder_name(task_id: int = 0) -> str:
    """Who takes the slots: this process's thread (and asyncio task, when given)."""
    return f"{os.getpid()}:{threading.get_ident()}:{task_id}"


def acquiring(
    names: object,
    occupy: object,
    timeout_seconds: float | None,
    strict: bool,
    holder: str,
    lease: bool,
    *,
    warn: bool = True,
) -> Generator[Wait, None, Slots]:
    """Take ``occupy`` slots on each limit in ``names`` from the store in force, yielding
    the waits in between; the slots taken.

    ``warn=False`` takes a missing limit silently (a tag limit deleted meanwhile).

    Raises:
        ConfigurationError: bad names, occupy or timeout.
        ConcurrencySlotAcquisitionError: as its docstring says.
        AcquireConcurrencySlotTimeoutError: ``timeout_seconds`` passed first.
    """
    wanted, count = check_names(names), check_occupy(occupy)
    timeout = _check_timeout(timeout_seconds)
    store, clock = current_store(), current_clock()
    _check_limits(store, wanted, count, strict, lease, warn)
    fake = isinstance(clock, FakeClock)
    start = clock.now().timestamp()
    while True:
        now = clock.now().timestamp()
        grant = store.acquire_slots(wanted, count, now, holder, lease)
        if grant.granted:
            return Slots(store, grant.lease_id, clock)
        left = None if timeout is None else start + timeout - now
        if timeout is not None and left is not None and left <= 0:
            raise _timed_out(wanted, timeout)
        yield _next_wait(grant, left, fake)


def _next_wait(grant: SlotGrant, left: float | None, fake: bool) -> Wait:
    if grant.wait is not None:
        return Wait(grant.wait if left is None else min(grant.wait, left))
    if not fake:
        return Wait(POLL if left is None else min(POLL, left))
    if grant.self_held:  # nobody else will give it back
        if left is None:
            raise ConcurrencySlotAcquisitionError(
                f"This thread waits for a slot on the concurrency limit {grant.blocking!r} "
                "that it holds itself, with no timeout: it would wait forever. Leave the "
                "outer concurrency() block first, or pass timeout_seconds."
            )
        return Wait(left)
    return Wait(_FAKE_POLL, real=True)


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
        raise ConfigurationError(
            f"timeout_seconds={timeout!r} is not a number of seconds >= 0; pass None to wait "
            "as long as it takes."
        )
    return float(timeout)


def _check_limits(
    store: RunStore, names: Sequence[str], occupy: int, strict: bool, lease: bool, warn: bool
) -> None:
    for name in names:
        found = store.read_limit(name)
        if found is None:
            if strict:
                raise ConcurrencySlotAcquisitionError(
                    f"There is no concurrency limit named {name!r} in the run store "
                    f"{store.url!r}, and strict=True. Create it first, e.g. "
                    f"wfkit.concurrency.create_limit({name!r}, limit=5), or drop strict=True "
                    "to run without it."
                )
            if warn:
                _log.warning(
                    "Concurrency limit %r does not exist in the run store %r: running "
                    "without it. Create it with wfkit.concurrency.create_limit(%r, limit=N).",
                    name,
                    store.url,
                    name,
                )
        elif occupy > found.limit:
            raise ConcurrencySlotAcquisitionError(
                f"occupy={occupy!r} is more than the {found.limit} slots of the concurrency "
                f"limit {name!r}: it could never be granted. Ask for at most {found.limit}, "
                "or make the limit larger."
            )
        elif not lease and found.slot_decay_per_second <= 0:
            raise ConfigurationError(
                f"rate_limit() needs a limit whose slots drain, but {name!r} has "
                "slot_decay_per_second=0. Create it with a decay, e.g. "
                f"create_limit({name!r}, limit={found.limit}, slot_decay_per_second=1.0)."
            )


def _timed_out(names: Sequence[str], timeout: float) -> AcquireConcurrencySlotTimeoutError:
    return AcquireConcurrencySlotTimeoutError(
        f"Timed out after {timeout:g} s waiting for a slot on the concurrency limit(s) "
        f"{', '.join(map(repr, names))}. Raise timeout_seconds, make the limit larger, or "
        "look for the holders that keep their slots."
    )
