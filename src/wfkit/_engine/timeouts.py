"""Enforcing ``timeout_seconds``.

How a deadline is enforced depends on the clock and on where the body runs:

- **Fake (virtual) clock**: the deadline is installed on the clock
  (:meth:`wfkit.clock.FakeClock.deadline`). A sleep that would pass it moves time to the
  deadline and raises the timeout there, so a body that sleeps 5 s under a 1 s timeout
  ends TimedOut at virtual t=1 s with no real wait. A body that moved the clock past the
  deadline some other way is also TimedOut when it returns.
- **Real clock, sync body on the main thread**: a ``SIGALRM`` interval timer raises inside
  the body at the deadline. This interrupts ``time.sleep`` and most blocking calls that
  Python can interrupt (within a few milliseconds). Nested timeouts share one timer.
- **Real clock, sync body on any other thread**: the body runs in a helper thread (with the
  caller's context) while the caller waits up to the deadline. At the deadline the caller is
  released and the run is TimedOut. The helper thread cannot be killed: wfkit asks Python to
  raise an exception in it at its next bytecode (``PyThreadState_SetAsyncExc``), which ends it
  as soon as the blocking call it is in returns; its result, if any, is discarded.
- **Real clock, async body**: ``asyncio.timeout`` cancels the body at the deadline. A
  coroutine that blocks the event loop with sync code cannot be cancelled until it yields.
"""

from __future__ import annotations

import contextvars
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import wfkit._realtime as _realtime
from wfkit.clock import Clock, FakeClock

__all__ = ["DeadlineExceeded", "call_async_with_timeout", "call_with_timeout"]


class DeadlineExceeded(BaseException):
    """Raised inside a body whose deadline passed (a BaseException so ``except Exception``
    in user code does not swallow it)."""


def call_with_timeout(
    fn: Callable[[], Any],
    timeout: float | None,
    clock: Clock,
    make_error: Callable[[], BaseException],
) -> Any:
    """Call ``fn()``; raise ``make_error()`` if it runs past ``timeout`` seconds."""
    if not timeout:
        return fn()
    if isinstance(clock, FakeClock):
        with clock.deadline(timeout, make_error()):
            return fn()
    if _alarm_usable():
        return _call_with_alarm(fn, timeout, make_error)
    return _call_in_watched_thread(fn, timeout, make_error)


async def call_async_with_timeout(
    fn: Callable[[], Awaitable[Any]],
    timeout: float | None,
    clock: Clock,
    make_error: Callable[[], BaseException],
) -> Any:
    """Await ``fn()``; raise ``make_error()`` if it runs past ``timeout`` seconds."""
    if not timeout:
        return await fn()
    if isinstance(clock, FakeClock):
        with clock.deadline(timeout, make_error()):
            return await fn()
    asyncio = sys.modules["asyncio"]  # (loaded: we are in a coroutine)
    try:
        async with asyncio.timeout(timeout) as scope:
            return await fn()
    except TimeoutError:
        if scope.expired():
            raise make_error() from None
        raise


# -- real clock, main thread: SIGALRM -----------------------------------------------------
class _AlarmScope:
    __slots__ = ("at", "fired", "in_body")

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False
        self.in_body = True


_alarm_scopes: list[_AlarmScope] = []
_previous_handler: Any = None


def _alarm_usable() -> bool:
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        return False
    if _alarm_scopes:
        return True
    # Do not fight another SIGALRM user (pytest-timeout's signal method, for instance).
    return signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)


def _on_alarm(signum: int, frame: Any) -> None:
    now = _realtime.monotonic()
    for scope in _alarm_scopes:  # outermost first: the outermost expired scope wins
        if scope.in_body and not scope.fired and now >= scope.at - 0.0005:
            scope.fired = True
            raise DeadlineExceeded(scope)
    _arm()


def _arm() -> None:
    pending = [s.at for s in _alarm_scopes if not s.fired]
    if pending:
        signal.setitimer(signal.ITIMER_REAL, max(min(pending) - _realtime.monotonic(), 0.0001))
    else:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _call_with_alarm(
    fn: Callable[[], Any], timeout: float, make_error: Callable[[], BaseException]
) -> Any:
    global _previous_handler
    scope = _AlarmScope(_realtime.monotonic() + timeout)
    if not _alarm_scopes:
        _previous_handler = signal.signal(signal.SIGALRM, _on_alarm)
    _alarm_scopes.append(scope)
    _arm()
    try:
        try:
            result = fn()
        finally:
            scope.in_body = False
            _alarm_scopes.remove(scope)
            _arm()
            if not _alarm_scopes:
                signal.signal(signal.SIGALRM, _previous_handler or signal.SIG_DFL)
    except DeadlineExceeded as exc:
        if exc.args and exc.args[0] is scope:
            raise make_error() from None
        raise
    if scope.fired:  # the alarm hit between the body's return and the clean-up
        raise make_error()
    return result


# -- real clock, other threads: a watched helper thread -----------------------------------
def _call_in_watched_thread(
    fn: Callable[[], Any], timeout: float, make_error: Callable[[], BaseException]
) -> Any:
    context = contextvars.copy_context()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = context.run(fn)
        except BaseException as exc:  # handed to the waiting caller
            box["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=target, name="wfkit-timeout-body", daemon=True)
    worker.start()
    if not done.wait(timeout):
        _raise_in_thread(worker, DeadlineExceeded)
        raise make_error()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _raise_in_thread(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    import ctypes  # (loaded only when a timeout must interrupt a thread: a few ms)

    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)
        )
