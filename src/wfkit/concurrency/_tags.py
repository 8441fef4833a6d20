"""Tag-based task concurrency: the slots a task run takes on the limits named ``tag:<tag>``
for its tags, before it runs, and gives back when it ends.

Which tags have a limit is kept per store for a second (real time): a task run with tags
asks the store at most that often, and one without tags never does, so the per-task path
costs nothing when no tag limit exists. Creating or deleting a limit through
:mod:`wfkit.concurrency` forgets what was kept, so this process sees it at once; another
process sees it within the second.
"""

from __future__ import annotations

import weakref
from collections.abc import Generator
from typing import Any

import wfkit._realtime as _realtime
from wfkit.concurrency import asyncio as _aio
from wfkit.concurrency import sync as _sync
from wfkit.concurrency._core import Slots, Wait, acquiring, holder_name
from wfkit.stores._limits import TAG_PREFIX

__all__ = ["TagSlots", "forget_tag_limits", "tag_slots", "take_slots_async", "take_slots_sync"]

_KEEP_FOR = 1.0  # real seconds a store's set of tag limits is trusted
# store -> (real monotonic time it is trusted until, the names of its tag limits)
_known: weakref.WeakKeyDictionary[Any, tuple[float, frozenset[str]]] = weakref.WeakKeyDictionary()


class TagSlots:
    """The tag limits of one task run, and the slots it took on them (``held``)."""

    __slots__ = ("held", "names", "pending", "steps")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.held: Slots | None = None
        self.steps: Generator[Wait, None, Slots] | None = None
        self.pending: Wait | None = None  # the wait the first try ended on

    def try_take(self, holder: str) -> Wait | None:
        """Try once: None if the slots were taken, else the first wait before trying again
        (``self.steps`` then goes on)."""
        self.steps = acquiring(self.names, 1, None, False, holder, True, warn=False)
        try:
            return next(self.steps)
        except StopIteration as done:
            self.held = done.value
            return None

    def release(self) -> None:
        """Give the slots back (the run ended); nothing if none were taken."""
        held, self.held = self.held, None
        if held is not None:
            held.release()


def tag_slots(store: Any, tags: tuple[str, ...]) -> TagSlots | None:
    """The tag limits a task run with ``tags`` must take a slot on; None if there are none."""
    kept = _known.get(store)
    if kept is None or _realtime.monotonic() > kept[0]:
        names = frozenset(
            lim.name for lim in store.concurrency_limits() if lim.name.startswith(TAG_PREFIX)
        )
        kept = _known[store] = (_realtime.monotonic() + _KEEP_FOR, names)
    if not kept[1]:
        return None
    limited = tuple(f"{TAG_PREFIX}{t}" for t in tags if f"{TAG_PREFIX}{t}" in kept[1])
    return TagSlots(limited) if limited else None


def forget_tag_limits(store: Any) -> None:
    """Forget which tag limits ``store`` has (they were just changed)."""
    _known.pop(store, None)


def take_slots_sync(slots: TagSlots, wait: bool) -> bool:
    """Carry out :class:`~wfkit._engine.lifecycle.TakeSlots` by blocking: whether taken."""
    if not wait:
        slots.pending = slots.try_take(holder_name())
        return slots.pending is None
    assert slots.steps is not None and slots.pending is not None  # tried once before
    slots.held = _sync.drive_waits(slots.steps, slots.pending)
    return True


async def take_slots_async(slots: TagSlots, wait: bool) -> bool:
    """Carry out :class:`~wfkit._engine.lifecycle.TakeSlots` by awaiting: whether taken."""
    if not wait:
        slots.pending = slots.try_take(_aio.holder())
        return slots.pending is None
    assert slots.steps is not None and slots.pending is not None  # tried once before
    slots.held = await _aio.drive_waits(slots.steps, slots.pending)
    return True
