"""Frozen wall time for the test harness (freezegun), kept in step with the fake clock.

The sleep patches live in :mod:`wfkit._engine.virtual_time`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from wfkit._engine.virtual_time import virtual_sleeps
from wfkit.clock import FakeClock

__all__ = ["frozen_wall_time", "virtual_sleeps", "warm_up_freezing"]

# Code whose timing must stay real under a frozen wall clock: pytest's own test durations.
_REAL_TIME_MODULES = ["_pytest.timing"]

_modules_primed = 0  # len(sys.modules) when freezegun's cache was last primed


@contextmanager
def frozen_wall_time(clock: FakeClock) -> Iterator[None]:
    """Freeze ``datetime.now()``, ``time.time()``, ``date.today()``... at the clock's time,
    moving with it."""
    from freezegun import freeze_time

    # Nothing needs importing before time is frozen: the run records are plain dataclasses,
    # and wfkit first imports pydantic (which keeps the datetime class it sees then) with the
    # real classes, through wfkit._pydantic.
    freezer = freeze_time(clock.now(), tick=False, real_asyncio=True, ignore=_REAL_TIME_MODULES)
    _prime_freezegun_cache()
    factory = freezer.start()

    def follow(now: Any) -> None:
        factory.move_to(now)

    clock.add_listener(follow)
    try:
        yield
    finally:
        clock.remove_listener(follow)
        freezer.stop()


def warm_up_freezing() -> None:
    """Import freezegun and fill its cache of the loaded modules' time attributes (with a
    throwaway freeze, started and stopped at once), which the first freeze would do."""
    from freezegun import freeze_time

    freezer = freeze_time(_WARM_UP_TIME, tick=False, real_asyncio=True, ignore=_REAL_TIME_MODULES)
    _prime_freezegun_cache()
    freezer.start()
    freezer.stop()


_WARM_UP_TIME = "2000-01-01T00:00:00+00:00"


def _prime_freezegun_cache() -> None:
    """Spare freezegun from loading what lazily loading modules only promise.

    To find the real time functions and classes bound in loaded modules, freezegun reads
    every attribute ``dir()`` lists for every module, once, and caches the answer per module.
    For a module that loads attributes on first access (a module ``__getattr__``:
    ``concurrent.futures``, ``unittest``, ``dateutil``...) that imports them all
    (multiprocessing, tarfile...: tens of modules and milliseconds no test asked for). For
    such modules, the cache is filled here from the listed attributes already loaded:
    freezegun's own answer, without the imports (an attribute that a module would only make
    on access is not patched). This uses freezegun's private cache; without it, freezegun
    scans as it always does.
    """
    global _modules_primed
    if len(sys.modules) == _modules_primed:
        return
    api = sys.modules.get("freezegun.api")
    cache = getattr(api, "_GLOBAL_MODULES_CACHE", None)
    key_of = getattr(api, "_get_module_attributes_hash", None)
    real_ids = getattr(api, "_real_time_object_ids", None)
    if not (isinstance(cache, dict) and callable(key_of) and isinstance(real_ids, set)):
        return
    for name, module in list(sys.modules.items()):
        if not isinstance(module, ModuleType) or "__getattr__" not in vars(module):
            continue
        key = key_of(module)
        if cache.get(name, ("",))[0] != key:
            listed, attributes = set(dir(module)), vars(module)
            found = [
                (k, v) for k, v in list(attributes.items()) if k in listed and id(v) in real_ids
            ]
            cache[name] = (key, found)
    _modules_primed = len(sys.modules)
