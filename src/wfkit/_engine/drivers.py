"""Drivers: carry out the effects the lifecycle yields, by calling (sync) or awaiting (async).

There is one driver per calling convention -- a plain function, a coroutine function, a
generator function and an async generator function -- and each is a loop of a few lines.
Every decision lives in :mod:`wfkit._engine.lifecycle`.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any

from wfkit._engine.asyncutils import resolve_sync
from wfkit._engine.lifecycle import Acquire, CallUser, Effect, Invoke, Outcome, Resolve, Sleep
from wfkit._engine.timeouts import call_async_with_timeout, call_with_timeout
from wfkit.clock import Clock
from wfkit.states import State

__all__ = ["FinalState", "drive_async", "drive_async_gen", "drive_sync", "drive_sync_gen"]

Steps = Generator[Effect, Any, State]
_new_tuple = tuple.__new__


def _advance(steps: Steps, send: Any, throw: BaseException | None) -> Effect | State:
    """Resume the lifecycle; return its next effect, or its final state."""
    try:
        return steps.throw(throw) if throw is not None else steps.send(send)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def _call_user(effect: CallUser) -> tuple[Any, BaseException | None]:
    try:
        return resolve_sync(effect.fn(*effect.args)), None
    except Exception as exc:
        return None, exc


def _other_effect(effect: Effect, clock: Clock) -> tuple[Any, BaseException | None]:
    """Carry out any effect but Invoke, blocking; returns (value to send, error to throw)."""
    try:
        if type(effect) is Sleep:
            clock.sleep(effect.seconds)
            return None, None
        if type(effect) is Resolve:
            return effect.upstream.wait_sync(), None
        if type(effect) is Acquire:
            effect.lock.acquire()
            return None, None
    except BaseException as exc:  # thrown into the lifecycle, which decides what it means
        return None, exc
    return _call_user(effect)  # type: ignore[arg-type]


async def _other_effect_async(effect: Effect, clock: Clock) -> tuple[Any, BaseException | None]:
    """Carry out any effect but Invoke, awaiting; returns (value to send, error to throw)."""
    try:
        if type(effect) is Sleep:
            await clock.asleep(effect.seconds)
            return None, None
        if type(effect) is Resolve:
            return await effect.upstream.wait_async(), None
        if type(effect) is Acquire:
            await _acquire_async(effect.lock)
            return None, None
    except BaseException as exc:
        return None, exc
    return await _acall_user(effect)  # type: ignore[arg-type]


async def _acquire_async(lock: Any) -> None:
    """Take a thread lock without blocking the event loop (other runs on it may hold it)."""
    from wfkit.clock import real_asyncio_sleep

    pause = real_asyncio_sleep()
    while not lock.acquire(blocking=False):
        await pause(0.002)


async def _acall_user(effect: CallUser) -> tuple[Any, BaseException | None]:
    try:
        value = effect.fn(*effect.args)
        return (await value if inspect.isawaitable(value) else value), None
    except Exception as exc:
        return None, exc


def drive_sync(steps: Steps, body: Callable[[], Any], clock: Clock) -> State:
    """Run a plain function's lifecycle to its final state."""
    send: Any = None
    throw: BaseException | None = None
    while True:
        try:  # (_advance, inlined: this loop runs for every task call)
            effect = steps.throw(throw) if throw is not None else steps.send(send)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        send, throw = None, None
        if type(effect) is Invoke:
            try:
                if effect.timeout is None:  # (Outcome(body()), without its Python __new__)
                    send = _new_tuple(Outcome, (body(), None, False))
                else:
                    send = Outcome(
                        call_with_timeout(body, effect.timeout, clock, effect.make_error)
                    )
            except BaseException as exc:  # every outcome, interrupts included, is a state
                send = Outcome(exception=exc)
        else:
            send, throw = _other_effect(effect, clock)


async def drive_async(steps: Steps, body: Callable[[], Any], clock: Clock) -> State:
    """Run a coroutine function's lifecycle to its final state."""
    send: Any = None
    throw: BaseException | None = None
    while True:
        effect = _advance(steps, send, throw)
        send, throw = None, None
        if isinstance(effect, State):
            return effect
        if type(effect) is Invoke:
            try:
                send = Outcome(
                    await call_async_with_timeout(body, effect.timeout, clock, effect.make_error)
                )
            except BaseException as exc:
                send = Outcome(exception=exc)
        else:
            send, throw = await _other_effect_async(effect, clock)


def drive_sync_gen(
    steps: Steps, body: Callable[[], Iterator[Any]], clock: Clock
) -> Generator[Any, None, State]:
    """Run a generator function's lifecycle, streaming each yielded value to the consumer.

    The timeout covers the time spent inside the generator (not the consumer's). If the
    consumer stops early, the user generator is closed and the run completes.
    """
    send: Any = None
    throw: BaseException | None = None
    while True:
        effect = _advance(steps, send, throw)
        send, throw = None, None
        if isinstance(effect, State):
            return effect
        if type(effect) is Invoke:
            streamed = False
            deadline = clock.monotonic() + effect.timeout if effect.timeout else None
            gen: Any = None
            try:
                gen = body()
                while True:
                    remaining = (
                        None if deadline is None else max(deadline - clock.monotonic(), 1e-6)
                    )
                    try:
                        value = call_with_timeout(gen.__next__, remaining, clock, effect.make_error)
                    except StopIteration as stop:
                        send = Outcome(stop.value, streamed=streamed)
                        break
                    streamed = True
                    yield value
            except GeneratorExit:  # the consumer stopped early: the run completes
                gen.close()
                send = Outcome(None, streamed=True)
            except BaseException as exc:
                send = Outcome(exception=exc, streamed=streamed)
        else:
            send, throw = _other_effect(effect, clock)


class FinalState:
    """The last item an async generator driver yields: the run's final state (an async
    generator cannot return a value)."""

    __slots__ = ("state",)

    def __init__(self, state: State) -> None:
        self.state = state


async def drive_async_gen(
    steps: Steps, body: Callable[[], AsyncGenerator[Any, None]], clock: Clock
) -> AsyncIterator[Any]:
    """Run an async generator function's lifecycle, streaming each value to the consumer;
    the last item is a :class:`FinalState`."""
    send: Any = None
    throw: BaseException | None = None
    closing = False  # after GeneratorExit an async generator may await but never yield
    while True:
        effect = _advance(steps, send, throw)
        send, throw = None, None
        if isinstance(effect, State):
            if not closing:
                yield FinalState(effect)
            return
        if type(effect) is Invoke:
            streamed = False
            deadline = clock.monotonic() + effect.timeout if effect.timeout else None
            gen = body()
            try:
                while True:
                    remaining = (
                        None if deadline is None else max(deadline - clock.monotonic(), 1e-6)
                    )
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
                send = Outcome(exception=exc, streamed=streamed)
        else:
            send, throw = await _other_effect_async(effect, clock)
