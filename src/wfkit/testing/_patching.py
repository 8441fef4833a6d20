"""What the test harness patches while it is in force, and restores after.

- **Sleeps**: ``time.sleep`` / ``asyncio.sleep`` sleep on the fake clock. The patches are
  process-wide attributes but act only where a harness is in force *and* a run is executing
  (the run context is a contextvar, so other threads and code outside runs keep real
  sleeps). They are installed while at least one harness holds them and removed when the
  last one releases them. Code that did ``from time import sleep`` before keeps the real
  function. Worker processes of a harness's process pool install them too.
- **Wall time**: freezegun freezes ``datetime.now()``, ``time.time()``... at the fake
  clock's time, moving with it.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import wfkit._realtime as _realtime
from wfkit.clock import FakeClock
from wfkit.context import current_runtime, flow_run_context, task_run_context

__all__ = ["frozen_wall_time", "virtual_sleeps", "warm_up_freezing"]

_lock = threading.Lock()
_open_harnesses = 0


def _virtual_clock() -> FakeClock | None:
    if flow_run_context.get() is None and task_run_context.get() is None:
        return None
    rt = current_runtime()
    return rt.clock if rt.harness is not None and isinstance(rt.clock, FakeClock) else None


@functools.wraps(_realtime.sleep)
def _sleep(seconds: float) -> None:
    clock = _virtual_clock()
    if clock is None:
        _realtime.sleep(seconds)
    else:
        clock.sleep(seconds)


_real_asyncio_sleep = asyncio.sleep


@functools.wraps(_real_asyncio_sleep)
async def _asleep(delay: float, result: Any = None) -> Any:
    clock = _virtual_clock()
    if clock is None or delay <= 0:
        return await _real_asyncio_sleep(delay, result)
    await clock.asleep(delay)
    return result


@contextmanager
def virtual_sleeps() -> Iterator[None]:
    """Install the sleep patches for the duration of the block (reference-counted)."""
    global _open_harnesses
    with _lock:
        if _open_harnesses == 0:
            time.sleep = _sleep  # type: ignore[assignment]
            asyncio.sleep = _asleep  # type: ignore[assignment]
        _open_harnesses += 1
    try:
        yield
    finally:
        with _lock:
            _open_harnesses -= 1
            if _open_harnesses == 0:
                time.sleep = _realtime.sleep  # type: ignore[assignment]
                asyncio.sleep = _real_asyncio_sleep


# Code whose timing must stay real under a frozen wall clock: pytest's own test durations,
# and the cluster clients of the Dask and Ray runners (their event loops, heartbeats and
# connection timeouts run in threads of the flow's process and stall on a frozen clock).
# (wfkit._realtime: its functions stay real where they are called through the module;
# freezegun replaces them wherever another module bound them by name)
_REAL_TIME_MODULES = ["_pytest.timing", "distributed", "tornado", "dask", "ray", "wfkit._realtime"]

_modules_primed = 0  # len(sys.modules) when freezegun's cache was last primed


@contextmanager
def frozen_wall_time(clock: FakeClock) -> Iterator[None]:
    """Freeze ``datetime.now()``, ``time.time()``, ``date.today()``... at the clock's time,
    moving with it."""
    # Nothing needs importing before time is frozen: the run records are plain dataclasses,
    # and wfkit first imports pydantic (which keeps the datetime class it sees then) with the
    # real classes, through wfkit._pydantic.
    freezer = _freezer(clock.now())
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
    freezer = _freezer(_WARM_UP_TIME)
    freezer.start()
    freezer.stop()


_WARM_UP_TIME = "2000-01-01T00:00:00+00:00"


def _freezer(at: Any) -> Any:
    """A freezegun freezer of wall time at ``at`` that does not tick, not yet started."""
    from freezegun import freeze_time  # (lazy: an optional extra, ~26 ms; only freeze=True)

    freezer = freeze_time(at, tick=False, real_asyncio=True, ignore=_REAL_TIME_MODULES)
    _prime_freezegun_cache()
    return freezer


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
