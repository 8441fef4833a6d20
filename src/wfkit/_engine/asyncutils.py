"""Running a maybe-async user callable from sync code, and awaiting blocking work."""

from __future__ import annotations

import contextvars
import inspect
import sys
import threading
from collections.abc import Callable
from typing import Any

from wfkit._engine.signals import is_cancellation

__all__ = ["resolve_sync", "wait_in_daemon_thread"]


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


async def wait_in_daemon_thread(
    fn: Callable[..., None], *args: Any, on_cancel: Callable[[BaseException], None]
) -> None:
    """Await ``fn(*args)``, which blocks (waiting for task runs), run in a daemon thread so
    that the event loop goes on. If the awaiting task is cancelled meanwhile (Ctrl-C under
    ``asyncio.run``), ``on_cancel(error)`` runs and the cancellation goes on at once: the
    thread is not asyncio's executor, whose shutdown would wait for it."""
    # (asyncio is loaded: this is a coroutine)
    loop = sys.modules["asyncio"].get_running_loop()
    done = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if not done.done():
            done.set_result(None) if error is None else done.set_exception(error)

    def work() -> None:
        error: BaseException | None = None
        try:
            fn(*args)
        except BaseException as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(settle, error)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass

    threading.Thread(target=work, name="wfkit-flow-wait", daemon=True).start()
    try:
        await done
    except BaseException as exc:
        if is_cancellation(exc):
            on_cancel(exc)
        raise
