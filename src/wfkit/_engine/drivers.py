"""Drivers: carry out the effects the lifecycle yields, by calling (sync) or awaiting (async).

There is one driver per calling convention -- a plain function, a coroutine function, a
generator function and an async generator function. Each is a loop that resumes the
lifecycle, runs the body when asked (:class:`~wfkit._engine.lifecycle.Invoke`), and hands
every other effect to :func:`_carry_out` (blocking) or :func:`_carry_out_async` (awaiting,
so an async run never blocks its event loop on a store or a lock). Every decision lives in
:mod:`wfkit._engine.lifecycle`.

The invariant every driver keeps: once it has started, a run reaches a final state. What the
user's code raises becomes a state through the lifecycle; when wfkit itself fails (the
lifecycle raises, publishing a state or logging fails), the driver records the run
``Crashed``, with the traceback in its message, and the error goes on to the caller
(:func:`_crash`).
"""

from __future__ import annotations

import inspect
import sys
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any

from wfkit._engine.asyncutils import resolve_sync
from wfkit._engine.lifecycle import (
    Acquire,
    CacheKey,
    CacheLookup,
    CacheWrite,
    CallUser,
    Effect,
    Invoke,
    Log,
    Now,
    Outcome,
    Resolve,
    RunPlan,
    Sleep,
    TakeSlots,
)
from wfkit._engine.signals import ctrl_c_under_asyncio
from wfkit._engine.timelines import deadline_passed
from wfkit._engine.timeouts import call_async_with_timeout, call_with_timeout
from wfkit._realtime import asyncio_sleep as real_asyncio_sleep
from wfkit.clock import Clock
from wfkit.concurrency._tags import take_slots_async, take_slots_sync
from wfkit.logging import base_logger, log_for_run
from wfkit.states import Crashed, State

__all__ = ["FinalState", "drive_async", "drive_async_gen", "drive_sync", "drive_sync_gen"]

Steps = Generator[Effect, Any, State]
Reply = tuple[Any, BaseException | None]  # (the value to send, or the error to throw)
_NO_REPLY: Reply = (None, None)
_base_loggers = {"flow": base_logger("flow"), "task": base_logger("task")}


def _advance(steps: Steps, send: Any, throw: BaseException | None) -> Any:
    """Resume the lifecycle: its next effect (StopIteration carries the final state)."""
    return steps.throw(throw) if throw is not None else steps.send(send)


def _failed(exc: BaseException, streamed: bool, clock: Clock) -> Outcome:
    """The outcome of an attempt that raised ``exc``."""
    return Outcome(None, exc, streamed, deadline_passed(clock))


# -- effects other than Invoke -------------------------------------------------------------
def _carry_out(effect: Any, plan: RunPlan, clock: Clock) -> Reply:
    """Carry out any effect but Invoke, blocking."""
    kind = type(effect)
    try:  # (the most frequent first: a caching task's every call asks for a key and a lookup)
        if kind is CacheKey:
            return plan.cache.key(), None
        if kind is CacheLookup:
            return plan.cache.lookup(effect.key), None
        if kind is CacheWrite:
            plan.cache.write(effect.key, effect.value)
        elif kind is CallUser:
            return resolve_sync(effect.fn(*effect.args)), None
        elif kind is Resolve:
            return effect.upstream.wait_sync(), None
        elif kind is Log:
            _log(effect, plan)
        elif kind is Sleep:
            clock.sleep(effect.seconds)
        elif kind is Now:
            return clock.now(), None
        elif kind is Acquire:
            plan.cache.lock_for(effect.key).acquire()
        elif kind is TakeSlots:
            return take_slots_sync(plan.slots, effect.wait), None
        else:  # pragma: no cover - the lifecycle yields only the effects above
            raise TypeError(f"unknown lifecycle effect {effect!r}")
    except BaseException as exc:  # thrown into the lifecycle, which decides what it means
        return None, exc
    return _NO_REPLY


async def _carry_out_async(effect: Any, plan: RunPlan, clock: Clock) -> Reply:
    """Carry out any effect but Invoke, awaiting: what could block (a store, a lock, a
    sync hook) does not block the event loop."""
    kind = type(effect)
    try:
        if kind is Sleep:
            await clock.asleep(effect.seconds)
        elif kind is CallUser:
            value = effect.fn(*effect.args)
            return (await value if inspect.isawaitable(value) else value), None
        elif kind is Resolve:
            return await effect.upstream.wait_async(), None
        elif kind is Acquire:
            await _acquire_async(plan.cache.lock_for(effect.key))
        elif kind is TakeSlots:
            return await take_slots_async(plan.slots, effect.wait), None
        elif kind in (CacheKey, CacheLookup, CacheWrite):  # store I/O: in a worker thread
            # (asyncio is loaded, this being a coroutine; wfkit does not import it at module
            # level: ~40 ms of ``import wfkit``)
            to_thread = sys.modules["asyncio"].to_thread
            return await to_thread(_carry_out_or_raise, effect, plan, clock), None
        else:
            return _carry_out(effect, plan, clock)
    except BaseException as exc:
        return None, exc
    return _NO_REPLY


def _carry_out_or_raise(effect: Any, plan: RunPlan, clock: Clock) -> Any:
    value, error = _carry_out(effect, plan, clock)
    if error is not None:
        raise error
    return value


def _log(effect: Log, plan: RunPlan) -> None:
    # Ask the base logger first: most runs never log, and a run logger is made on first use.
    if _base_loggers[plan.spec.kind].isEnabledFor(effect.level):
        log_for_run(plan.context, effect.level, effect.message, effect.args, effect.exc_info)


async def _acquire_async(lock: Any) -> None:
    """Take a thread lock without blocking the event loop (other runs on it may hold it)."""
    pause = real_asyncio_sleep()
    while not lock.acquire(blocking=False):
        await pause(0.002)


# -- the drivers ---------------------------------------------------------------------------
def drive_sync(steps: Steps, plan: RunPlan, body: Callable[[], Any], clock: Clock) -> State:
    """Run a plain function's lifecycle to its final state."""
    run = plan.run
    logs_to = _base_loggers[plan.spec.kind]
    effect: Any
    send: Any = None
    throw: BaseException | None = None
    try:
        while True:
            try:  # (_advance, inlined: this loop runs for every task call)
                effect = steps.throw(throw) if throw is not None else steps.send(send)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            send, throw = None, None
            kind = type(effect)
            if kind is State:
                try:
                    run.set_state(effect)
                except BaseException as exc:  # publishing failed: the run did not reach it
                    _crash(plan, exc, publishing=True)
                    raise
            elif kind is Log:  # (here, not in _carry_out: every run's last effect is a Log,
                # mostly at a level nobody listens to)
                if logs_to.isEnabledFor(effect.level):
                    _log(effect, plan)
            elif kind is Invoke:
                try:
                    if effect.timeout is None:
                        send = Outcome._make((body(), None, False, False))
                    else:
                        value = call_with_timeout(body, effect.timeout, clock, effect.make_error)
                        send = Outcome._make((value, None, False, False))
                except BaseException as exc:  # every outcome, interrupts included, is a state
                    send = _failed(exc, False, clock)
            else:
                send, throw = _carry_out(effect, plan, clock)
    except BaseException as exc:
        _crash(plan, exc)
        raise
    finally:
        _release(plan)


async def drive_async(steps: Steps, plan: RunPlan, body: Callable[[], Any], clock: Clock) -> State:
    """Run a coroutine function's lifecycle to its final state."""
    send: Any = None
    throw: BaseException | None = None
    try:
        while True:
            try:
                effect = _advance(steps, send, throw)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            send, throw = None, None
            if type(effect) is State:
                _enter(plan, effect)
            elif type(effect) is Invoke:
                try:
                    value = await call_async_with_timeout(
                        body, effect.timeout, clock, effect.make_error
                    )
                    send = Outcome(value)
                except BaseException as exc:
                    if ctrl_c_under_asyncio(exc):  # what it is: an interrupt (run Crashed)
                        exc = KeyboardInterrupt()
                    send = _failed(exc, False, clock)
            else:
                send, throw = await _carry_out_async(effect, plan, clock)
    except BaseException as exc:
        _crash(plan, exc)
        raise
    finally:
        _release(plan)


def drive_sync_gen(
    steps: Steps, plan: RunPlan, body: Callable[[], Iterator[Any]], clock: Clock
) -> Generator[Any, None, State]:
    """Run a generator function's lifecycle, streaming each yielded value to the consumer.

    The timeout covers the time spent inside the generator (not the consumer's). If the
    consumer stops early, the user generator is closed and the run completes.
    """
    send: Any = None
    throw: BaseException | None = None
    try:
        while True:
            try:
                effect = _advance(steps, send, throw)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            send, throw = None, None
            if type(effect) is State:
                _enter(plan, effect)
            elif type(effect) is Invoke:
                # (The attempt is written out here, not delegated with ``yield from``: closing
                # a delegating generator closes the delegate and then raises GeneratorExit
                # here, and the attempt's outcome would be lost.)
                streamed = False
                deadline = clock.monotonic() + effect.timeout if effect.timeout else None
                gen: Any = None
                try:
                    gen = body()
                    while True:
                        remaining = _remaining(deadline, clock)
                        try:
                            value = call_with_timeout(
                                gen.__next__, remaining, clock, effect.make_error
                            )
                        except StopIteration as stop:
                            send = Outcome(stop.value, streamed=streamed)
                            break
                        streamed = True
                        yield value
                except GeneratorExit:  # the consumer stopped early: the run completes
                    gen.close()
                    send = Outcome(None, streamed=True)
                except BaseException as exc:
                    send = _failed(exc, streamed, clock)
            else:
                send, throw = _carry_out(effect, plan, clock)
    except BaseException as exc:
        _crash(plan, exc)
        raise
    finally:
        _release(plan)


def _enter(plan: RunPlan, state: State) -> None:
    """The run enters ``state``; if publishing it fails, the run never did: it is Crashed.
    (drive_sync has this inline: every task call enters two states.)"""
    try:
        plan.run.set_state(state)
    except BaseException as exc:
        _crash(plan, exc, publishing=True)
        raise


def _remaining(deadline: float | None, clock: Clock) -> float | None:
    """Seconds left before a streaming body's ``deadline`` (None: no timeout)."""
    return None if deadline is None else max(deadline - clock.monotonic(), 1e-6)


class FinalState:
    """The last item an async generator driver yields: the run's final state (an async
    generator cannot return a value)."""

    __slots__ = ("state",)

    def __init__(self, state: State) -> None:
        self.state = state


async def drive_async_gen(
    steps: Steps, plan: RunPlan, body: Callable[[], AsyncGenerator[Any, None]], clock: Clock
) -> AsyncIterator[Any]:
    """Run an async generator function's lifecycle, streaming each value to the consumer;
    the last item is a :class:`FinalState`."""
    send: Any = None
    throw: BaseException | None = None
    closing = False  # after GeneratorExit an async generator may await but never yield
    try:
        while True:
            try:
                effect = _advance(steps, send, throw)
            except StopIteration as stop:
                if not closing:
                    yield FinalState(stop.value)
                return
            send, throw = None, None
            if type(effect) is State:
                _enter(plan, effect)
            elif type(effect) is Invoke:
                streamed = False
                deadline = clock.monotonic() + effect.timeout if effect.timeout else None
                gen = body()
                try:
                    while True:
                        remaining = _remaining(deadline, clock)
                        try:
                            value = await call_async_with_timeout(
                                gen.__anext__, remaining, clock, effect.make_error
                            )
                        except StopAsyncIteration:
                            send = Outcome(None, streamed=streamed)
                            break
                        streamed = True
                        yield value
                except GeneratorExit:
                    closing = True
                    await gen.aclose()
                    send = Outcome(None, streamed=True)
                except BaseException as exc:
                    send = _failed(exc, streamed, clock)
            else:
                send, throw = await _carry_out_async(effect, plan, clock)
    except BaseException as exc:
        _crash(plan, exc)
        raise
    finally:
        _release(plan)


def _crash(plan: RunPlan, error: BaseException, publishing: bool = False) -> None:
    """``error`` escaped the lifecycle or the driver: record the run ``Crashed``, with the
    traceback in the message, unless it already reached a final state (``publishing``: the
    error came while publishing the run's latest state, which it therefore did not reach).
    The caller re-raises ``error``."""
    run = plan.run
    if not publishing and run.state is not None and run.state.is_final():
        return  # e.g. the last log line failed, or a crash already recorded: it stands
    label = "Flow run" if plan.spec.kind == "flow" else "Task run"
    # An interrupt (KeyboardInterrupt, SystemExit) is not wfkit's own failure.
    where = "inside wfkit" if isinstance(error, Exception) else "by an interrupt"
    trace = "".join(traceback.format_exception(error)).rstrip()
    crashed = Crashed(
        exception=error,
        message=f"{label} crashed {where}: {type(error).__name__}: {error}\n{trace}",
    )
    try:
        run.set_state(crashed)
    except Exception:  # publishing failed again (a broken store): the error that caused
        # the crash is the one to report; the run's own state is Crashed all the same
        run.state = crashed


def _release(plan: RunPlan) -> None:
    """The run has ended: give back the cache key's lock and the tag limits' slots, if it
    took them."""
    if plan.cache is not None:
        plan.cache.release()
    if plan.slots is not None:
        plan.slots.release()
