"""The run lifecycle, written once for flows and tasks, sync and async.

:func:`lifecycle` is a generator that makes every decision of a run (what state comes
next, whether to retry, how long to wait, which hooks fire) and performs no I/O of its
own: it *yields effects* and a driver (:mod:`wfkit._engine.drivers`) carries them out, by
calling or awaiting. State changes are published synchronously from here (they are cheap,
ordered, and identical for both drivers).

Effects and what the driver sends back:

- :class:`Invoke` -- run the body once under the timeout; send an :class:`Outcome`.
- :class:`Sleep` -- wait on the clock; send ``None``.
- :class:`CallUser` -- call a user callable (awaiting it if it returns an awaitable); send its
  result, or throw its exception into the generator.
- :class:`Resolve` -- wait for upstream futures (blocking or awaiting); send ``None`` or the
  upstream error.
- :class:`Acquire` -- take a lock (a SERIALIZABLE cache key's); send ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from wfkit.clock import virtual_deadline
from wfkit.logging import base_logger
from wfkit.states import (  # (_COMPLETED...: see wfkit.states)
    _COMPLETED,
    _FAILED,
    _RUNNING,
    AwaitingRetry,
    Cancelled,
    Crashed,
    Failed,
    NotReady,
    Retrying,
    State,
    StateType,
    TimedOut,
)

__all__ = [
    "Acquire",
    "CallUser",
    "Invoke",
    "Outcome",
    "Resolve",
    "RunPlan",
    "RunSpec",
    "Sleep",
    "lifecycle",
]


class Invoke(NamedTuple):
    timeout: float | None
    make_error: Callable[[], BaseException]


class Sleep(NamedTuple):
    seconds: float


class CallUser(NamedTuple):
    fn: Callable[..., Any]
    args: tuple[Any, ...]


class Acquire(NamedTuple):
    """Take a lock (blocking, or awaiting without blocking the event loop); send ``None``."""

    lock: Any


class Resolve(NamedTuple):
    """Wait for the upstream futures and replace them by their values; the driver sends
    back ``None``, or the UpstreamTaskError saying which upstream did not complete."""

    upstream: Any


class Outcome(NamedTuple):
    """What one attempt of the body produced."""

    value: Any = None
    exception: BaseException | None = None
    streamed: bool = False  # a generator already handed values out: it cannot be retried


Effect = Invoke | Sleep | CallUser | Resolve | Acquire


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What every run of one flow or task shares; worked out once per Flow/Task (slotted:
    every run reads it several times)."""

    kind: str  # "flow" | "task"
    retries: int
    delay_for: Callable[[int], float]  # retry number (1-based) -> base delay in seconds
    jitter_factor: float | None
    retry_condition: Callable[..., Any] | None
    timeout: float | None
    hooks: Mapping[str, Sequence[Callable[..., Any]]]  # only the hooks that are set


class RunPlan(NamedTuple):
    """Everything the lifecycle needs to know about one run, resolved by the caller."""

    run: Any  # FlowRunLive | TaskRunLive
    owner: Any  # the Flow or Task, passed to hooks
    spec: RunSpec
    context: Any  # the run's FlowRunContext | TaskRunContext (its logger is made on demand)
    pre_failure: BaseException | None = None  # fail before running (invalid parameters)
    upstream: Any = None  # an inputs.Upstream to wait for before running
    cache: Any = None  # a caching.TaskCache when the task caches

    @property
    def logger(self) -> logging.LoggerAdapter[Any]:
        return self.context.logger  # type: ignore[no-any-return]


_base_loggers = {"flow": base_logger("flow"), "task": base_logger("task")}
_HOOK_FOR_TYPE = {
    StateType.COMPLETED: "on_completion",
    StateType.FAILED: "on_failure",
    StateType.CRASHED: "on_crashed",
    StateType.CANCELLED: "on_cancellation",
}


def lifecycle(plan: RunPlan, rng: Any) -> Generator[Effect, Any, State]:
    """Drive one run (already Pending) to its final state, or to NotReady when an upstream
    did not complete; returns that state."""
    if plan.upstream is None and plan.pre_failure is None and plan.cache is None:
        return _attempts(plan, rng)  # most runs: no generator around the attempts
    return _prepared(plan, rng)


def _prepared(plan: RunPlan, rng: Any) -> Generator[Effect, Any, State]:
    """Wait for the upstream runs, fail early, or consult the cache, then run the body."""
    run = plan.run
    if plan.upstream is not None:
        try:
            problem = yield Resolve(plan.upstream)
        except Exception as exc:  # resolving itself failed: the run cannot start either
            problem = exc
        if problem is not None:
            return run.set_state(NotReady(exception=problem, message=str(problem)))
    if plan.pre_failure is not None:
        return (yield from _fail(plan, plan.pre_failure))
    if plan.cache is not None:
        return (yield from _cached(plan, rng))
    return (yield from _attempts(plan, rng))


def _fail(plan: RunPlan, exc: BaseException) -> Generator[Effect, Any, State]:
    """Fail the run without running its body."""
    final = plan.run.set_state(Failed(exception=exc, message=str(exc)))
    yield from _fire_hooks(plan, final)
    return final


def _cached(plan: RunPlan, rng: Any) -> Generator[Effect, Any, State]:
    """A caching task's run: a hit completes it as Cached without running the body; a miss
    runs it and writes its result."""
    run, cache = plan.run, plan.cache
    try:
        key = run.cache_key = cache.key()
    except Exception as exc:  # an argument that cannot be hashed: the call fails clearly
        return (yield from _fail(plan, exc))
    try:
        if key is None:  # the policy declined to give a key: nothing to look up or write
            return (yield from _attempts(plan, rng))
        lock = cache.lock_for(key)
        if lock is not None:
            yield Acquire(lock)
            cache.mark_held()
        if not cache.refresh:
            hit, value = cache.lookup(key)
            if hit:
                run.run_count += 1
                run.set_state(State(_RUNNING, "Running"))  # (Running(), Cached())
                final = run.set_state(State(_COMPLETED, "Cached", data=value))
                _log_final(plan, final)
                yield from _fire_hooks(plan, final)
                return final
        final = yield from _attempts(plan, rng)
        if final.is_completed():
            cache.write(key, final.data)
        return final
    finally:
        cache.release()


def _never_times_out() -> BaseException:  # pragma: no cover - a run without a timeout
    raise AssertionError("a run without timeout_seconds asked for its timeout error")


_INVOKE_UNTIMED = Invoke(None, _never_times_out)


def _attempts(plan: RunPlan, rng: Any) -> Generator[Effect, Any, State]:
    """Run the body, retrying as configured; returns the final state."""
    run, spec = plan.run, plan.spec
    timeouts = _TimeoutErrors(plan) if spec.timeout else None
    invoke = Invoke(spec.timeout, timeouts.make) if timeouts is not None else _INVOKE_UNTIMED
    on_running = "on_running" in spec.hooks
    while True:
        run.run_count += 1
        running = run.set_state(  # (State(...) itself: the common case, one call less)
            State(_RUNNING, "Running") if run.run_count == 1 else Retrying()
        )
        if on_running:
            yield from _fire_hooks(plan, running, "on_running")
        outcome: Outcome = yield invoke
        state = _state_from_outcome(plan, outcome, timeouts)
        if state.type is _FAILED and not outcome.streamed and run.run_count <= spec.retries:
            if (yield from _should_retry(plan, state)):
                delay = _jittered(spec.delay_for(run.run_count), spec.jitter_factor, rng)
                plan.logger.info(
                    "%s - Retry %d/%d will start %s second(s) from now",
                    state.message,
                    run.run_count,
                    spec.retries,
                    f"{delay:g}",
                )
                wake = run.clock.now() + timedelta(seconds=delay)
                run.set_state(AwaitingRetry(scheduled_time=wake, message=state.message))
                try:
                    yield Sleep(delay)
                except BaseException as exc:  # an enclosing deadline or an interrupt
                    state = _state_from_outcome(plan, Outcome(exception=exc), timeouts)
                else:
                    continue
        final = run.set_state(state)
        _log_final(plan, final)
        if spec.hooks:
            yield from _fire_hooks(plan, final)
        return final


def _state_from_outcome(plan: RunPlan, outcome: Outcome, timeouts: _TimeoutErrors | None) -> State:
    exc = outcome.exception
    kind = plan.spec.kind
    if exc is None:
        value = outcome.value
        if isinstance(value, State):  # a body may return a state to set its own outcome
            if value.is_final():
                return value.copy()
            label = "Flow run" if kind == "flow" else "Task run"
            return Failed(
                exception=value.exception,
                message=f"{label} returned a {value.name} state, which is not final: "
                f"{value.message or 'no message'}",
            )
        if kind == "flow":
            unfinished = _not_completed(value)
            if unfinished:
                return Failed(
                    data=value,
                    message=f"{len(unfinished)} of the states the flow returned did not complete: "
                    + ", ".join(s.name for s in unfinished[:5]),
                )
        return State(_COMPLETED, "Completed", data=value)
    if timeouts is not None and timeouts.issued(exc):
        return TimedOut(exception=exc, message=str(exc))
    label = "Flow run" if kind == "flow" else "Task run"
    if not isinstance(exc, Exception):
        import asyncio

        from wfkit._engine.timeouts import DeadlineExceeded

        if isinstance(exc, asyncio.CancelledError):
            return Cancelled(exception=exc, message=f"{label} was cancelled.")
        if isinstance(exc, DeadlineExceeded):
            return Crashed(
                exception=exc, message=f"{label} was interrupted by an enclosing run's timeout."
            )
        return Crashed(
            exception=exc,
            message=f"{label} crashed: {type(exc).__name__}: {exc}".rstrip(": "),
        )
    return Failed(
        exception=exc,
        message=f"{label} encountered an exception: {type(exc).__name__}: {exc}",
    )


def _not_completed(value: Any) -> list[State]:
    """The states in a returned collection (lists, tuples, sets, dict values, at any depth)
    that did not complete; a flow that returns them has failed."""
    if isinstance(value, State):
        return [] if value.is_completed() else [value]
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple, set, frozenset)):
        return []
    found: list[State] = []
    for item in value:
        found.extend(_not_completed(item))
    return found


def _should_retry(plan: RunPlan, state: State) -> Generator[Effect, Any, bool]:
    enclosing = virtual_deadline.get()
    if enclosing is not None and enclosing.fired:  # an enclosing run timed out: stop here
        return False
    condition = plan.spec.retry_condition
    if condition is None:
        return True
    try:
        verdict = yield CallUser(condition, (plan.owner, plan.run.snapshot(), state))
    except Exception:
        plan.logger.exception("retry_condition_fn %r raised; not retrying", condition)
        return False
    return bool(verdict)


def _jittered(delay: float, factor: float | None, rng: Any) -> float:
    if not factor:
        return delay
    return max(0.0, delay * (1.0 + rng.uniform(-factor, factor)))


def _fire_hooks(
    plan: RunPlan, state: State, which: str | None = None
) -> Generator[Effect, Any, None]:
    name = which or _HOOK_FOR_TYPE.get(state.type)
    hooks = plan.spec.hooks.get(name, ()) if name else ()
    if not hooks:
        return
    snapshot = plan.run.snapshot()
    for hook in hooks:
        try:
            yield CallUser(hook, (plan.owner, snapshot, state))
        except Exception:
            plan.logger.exception(
                "%s hook %r raised; the run's state is unchanged",
                name,
                getattr(hook, "__name__", hook),
            )


def _log_final(plan: RunPlan, state: State) -> None:
    kind = plan.spec.kind
    if state.type is _COMPLETED:
        level = logging.INFO if kind == "flow" else logging.DEBUG
        if _base_loggers[kind].isEnabledFor(level):  # no run logger is made for nothing
            plan.logger.log(level, "Finished in state %s", _summary(state))
        return
    exc = state.exception
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    plan.logger.error("Finished in state %s", _summary(state), exc_info=exc_info)


def _summary(state: State) -> str:
    """``Completed()`` / ``Failed('message')``: the state without its result, which may be
    large or sensitive and does not belong in logs."""
    return f"{state.name}({state.message!r})" if state.message else f"{state.name}()"


class _TimeoutErrors:
    """Makes this run's timeout errors, and recognises them (a timeout raised by a nested
    run and left uncaught is a plain failure of this run, not its own timeout)."""

    __slots__ = ("plan", "_issued")

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self._issued: list[BaseException] = []

    def make(self) -> BaseException:
        from wfkit.exceptions import FlowRunTimeoutError, TaskRunTimeoutError

        plan = self.plan
        kind, timeout = plan.spec.kind, plan.spec.timeout
        error_type = FlowRunTimeoutError if kind == "flow" else TaskRunTimeoutError
        err = error_type(
            f"{kind.title()} run {plan.run.name!r} exceeded its timeout of "
            f"{timeout:g} second(s) (timeout_seconds={timeout:g})."
        )
        self._issued.append(err)
        return err

    def issued(self, exc: BaseException) -> bool:
        return any(exc is e for e in self._issued)
