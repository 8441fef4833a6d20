"""Real time, for the few places that must not follow a fake clock.

Everything the engine times goes through a :class:`wfkit.clock.Clock`. A handful of things
are about the machine, not the run: how long a store buffer has waited, how long a thread
pool yields the GIL, real interruption of a body that overruns its timeout. They use the
functions here, captured when wfkit is imported, so that the test harness's patches of
``time.sleep`` / ``asyncio.sleep`` (which make user code sleep on the fake clock) never
reach them.

Call them through this module (``import wfkit._realtime as _realtime``, then
``_realtime.monotonic()``), not bound by name: freezegun, which the harness uses to freeze
wall time, replaces ``time.monotonic``, ``time.time_ns``... wherever a loaded module bound
them, and this module is on its ignore list (``wfkit.testing._patching``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["asyncio_sleep", "monotonic", "sleep", "time_ns"]

sleep: Callable[[float], None] = time.sleep
monotonic: Callable[[], float] = time.monotonic
# Wall time, for what lives outside any run's clock (an owner's heartbeat); captured here, so
# the test harness's frozen wall time (freezegun) does not reach it.
time_ns: Callable[[], int] = time.time_ns


def asyncio_sleep() -> Callable[..., Awaitable[Any]]:
    """``asyncio.sleep`` as it was before any patching (a patch keeps the original as
    ``__wrapped__``; read at call time because asyncio may be patched after import).

    Only code already running under asyncio calls this, so asyncio is loaded; looking it up
    in ``sys.modules`` keeps ``import wfkit`` from importing asyncio (~40 ms)."""
    asyncio_sleep = sys.modules["asyncio"].sleep
    return getattr(asyncio_sleep, "__wrapped__", asyncio_sleep)  # type: ignore[no-any-return]
