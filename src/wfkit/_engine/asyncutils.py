"""Running a maybe-async user callable from sync code."""

from __future__ import annotations

import contextvars
import inspect
import threading
from typing import Any

__all__ = ["resolve_sync"]


def resolve_sync(value: Any) -> Any:
    """Return ``value``, or the result of awaiting it if it is awaitable.

    Used by the sync driver for user callables (hooks, ``retry_condition_fn``) that are
    ``async def``. With no event loop running in this thread the coroutine runs on a new
    loop here; with one running (a sync task called from an async flow) it runs on a new
    loop in a helper thread, so the running loop is never re-entered.
    """
    if not inspect.isawaitable(value):
        return value
    import asyncio  # (lazy: ~12 ms of a first sync run, which needs it only here)

    coro = value if inspect.iscoroutine(value) else _await(value)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}
    context = contextvars.copy_context()  # the helper thread sees the run's context

    def target() -> None:
        try:
            box["value"] = context.run(asyncio.run, coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="wfkit-await-helper")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def _await(awaitable: Any) -> Any:
    return await awaitable
