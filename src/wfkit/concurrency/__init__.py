"""Concurrency and rate limits kept in the run store (Prefect's global concurrency limits,
with no server).

Use them through :mod:`wfkit.concurrency.sync` or :mod:`wfkit.concurrency.asyncio`
(``concurrency(...)`` and ``rate_limit(...)``); manage them with the functions here, which
the ``wf limits`` commands call. A limit named ``tag:<tag>`` caps the running task runs
carrying that tag (:func:`create_tag_limit`).
"""

from __future__ import annotations

from wfkit.concurrency._core import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
)
from wfkit.concurrency._tags import forget_tag_limits
from wfkit.context import current_store
from wfkit.stores import ConcurrencyLimit
from wfkit.stores._limits import TAG_PREFIX, check_limit_name

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencyLimit",
    "ConcurrencySlotAcquisitionError",
    "create_limit",
    "create_tag_limit",
    "delete_limit",
    "list_limits",
    "read_limit",
]


def create_limit(name: str, limit: int, slot_decay_per_second: float = 0.0) -> ConcurrencyLimit:
    """Create the concurrency limit ``name`` with ``limit`` slots in the run store in force
    (or change an existing one's size and decay: its holders keep their slots).

    Args:
        name: the limit's name.
        limit: how many slots it has (a whole number >= 0).
        slot_decay_per_second: how fast slots taken by ``rate_limit`` drain; 0 (the default)
            makes a limit only ``concurrency`` can use.

    Raises:
        ConfigurationError: a bad name, limit or decay.
    """
    store = current_store()
    forget_tag_limits(store)
    return store.create_limit(name, limit, slot_decay_per_second)


def create_tag_limit(tag: str, limit: int) -> ConcurrencyLimit:
    """Cap at ``limit`` the task runs carrying ``tag`` that run at once (the limit is named
    ``tag:<tag>``); the others wait in a ``Pending`` state named ``AwaitingConcurrencySlot``.

    Raises:
        ConfigurationError: a bad tag or limit.
    """
    return create_limit(f"{TAG_PREFIX}{check_limit_name(tag)}", limit)


def read_limit(name: str) -> ConcurrencyLimit | None:
    """The limit ``name`` in the run store in force; None if there is none."""
    return current_store().read_limit(name)


def list_limits() -> list[ConcurrencyLimit]:
    """Every limit in the run store in force, by name."""
    return current_store().concurrency_limits()


def delete_limit(name: str) -> bool:
    """Delete the limit ``name`` (its holders' slots go with it); whether there was one."""
    store = current_store()
    forget_tag_limits(store)
    return store.delete_limit(name)
