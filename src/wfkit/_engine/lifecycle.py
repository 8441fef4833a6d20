"""The run lifecycle, written once for flows and tasks, sync and async.

:func:`lifecycle` is a generator that makes every decision of a run (what state comes
next, whether to retry, how long to wait, whether the cache has the result, which hooks
fire, what is logged) and performs no I/O of its own: it *yields effects*, and a driver
(:mod:`wfkit._engine.drivers`) carries them out, by calling or by awaiting. A unit test
drives it by hand (``tests/unit/test_lifecycle.py``), with no store, clock or thread.

Effects, and what the driver sends back:

- a :class:`~wfkit.states.State` -- the run enters it: the driver stamps it with the clock's
  time and publishes it (the plugin hooks; the store writer is one); sends ``None``.
- :class:`Invoke` -- run the body once under the timeout; send an :class:`Outcome`.
- :class:`Sleep` -- wait on the clock; send ``None`` (or throw what interrupted the wait).
- :class:`Now` -- send the clock's current time.
- :class:`CallUser` -- call a user callable (awaiting it if it returns an awaitable); send its
  result, or throw its exception.
- :class:`Resolve` -- wait for upstream futures (blocking or awaiting); send ``None`` or the
  upstream error.
- :class:`Log` -- log a line on the run's logger; send ``None``.
- :class:`CacheKey` -- compute the run's cache key; send it (``None``: not cached), or throw
  the error (a :class:`~wfkit.cache_policies.CacheKeyError` naming the argument) that fails
  the run.
- :class:`Acquire` -- take the cache key's lock (SERIALIZABLE isolation; the driver releases
  it when the run ends); send ``None``.
- :class:`CacheLookup` -- read the key's record; send ``(hit, value)``.
- :class:`CacheWrite` -- write the result under the key; send ``None``.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from wfkit._engine.timeouts import DeadlineExceeded
from wfkit.exceptions import FlowRunTimeoutError, TaskRunTimeoutError
from wfkit.states import (
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
    "CacheKey",
    "CacheLookup",
    "CacheWrite",
    "CallUser",
    "Effect",
    "Invoke",
    "Log",
    "Now",
    "Outcome",
    "Resolve",
    "ReturnedStates",
    "RunPlan",
    "RunSpec",
    "Sleep",
    "TakeSlots",
    "lifecycle",
]

# The state types as globals: an Enum class attribute is read through its metaclass, about
# ten times slower than a global, and every run reads these a few times.
_RUNNING = StateType.RUNNING
_COMPLETED = StateType.COMPLETED
_FAILED = StateType.FAILED
_PENDING = StateType.PENDING


class Invoke(NamedTuple):
    """Run the body once; ``timeout`` in seconds (None: none), ``make_error`` makes the
    run's timeout error when the deadline passes."""

    timeout: float | None
    make_error: Callable[[], BaseException]


class Sleep(NamedTuple):
    seconds: float


class Now(NamedTuple):
    """Ask for the clock's current time."""


class CallUser(NamedTuple):
    fn: Callable[..., Any]
    args: tuple[Any, ...]


class Resolve(NamedTuple):
    """Wait for the upstream futures and replace them by their values; the driver sends
    back ``None``, or the UpstreamTaskError saying which upstream did not complete."""

    upstream: Any


class Log(NamedTuple):
    """A line for the run's logger (``exc_info``: an exception whose traceback to add)."""

    level: int
    message: str
    args: tuple[Any, ...] = ()
    exc_info: BaseException | None = None


class CacheKey(NamedTuple):
    """Compute the run's cache key."""


class Acquire(NamedTuple):
    """Take the lock of cache key ``key`` (held until the run ends)."""

    key: str


class TakeSlots(NamedTuple):
    """Take a slot on each of the run's tag limits (``plan.slots``). With ``wait=False``,
    try once and send back whether they were taken; with ``wait=True``, wait until they
    are (a ConcurrencySlotAcquisitionError is thrown in if they never can be)."""

    wait: bool


class CacheLookup(NamedTuple):
    key: str


class CacheWrite(NamedTuple):
    key: str
    value: Any


class Outcome(NamedTuple):
    """What one attempt of the body produced."""

    value: Any = None
    exception: BaseException | None = None
    streamed: bool = False  # a generator already handed values out: it cannot be retried
    # An enclosing run's (virtual) deadline passed during the attempt: retrying is pointless.
    enclosing_deadline_passed: bool = False


class ReturnedStates(NamedTuple):
    """What a flow body hands the lifecycle when it returned a list, tuple or set made
    entirely of states and futures: ``states`` (each future's final state) decide the flow's
    final state, ``value`` is what the caller gets (completed futures replaced by their
    results)."""

    value: Any
    states: tuple[State, ...]


Effect = (
    (State | Invoke | Sleep | Now | CallUser | Resolve | Log | CacheKey | Acquire | CacheLookup)
    | CacheWrite
    | TakeSlots
)


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

    run: Any  # FlowRunLive | TaskRunLive (name, run_count, cache_key, snapshot())
    owner: Any  # the Flow or Task, passed to hooks
    spec: RunSpec
    context: Any  # the run's FlowRunContext | TaskRunContext (its logger is made on demand)
    pre_failure: BaseException | None = None  # fail before running (invalid parameters)
    upstream: Any = None  # an inputs.Upstream to wait for before running
    cache: Any = None  # a caching.TaskCache when the task caches
    slots: Any = None  # a slots.TagSlots when the task has tags with concurrency limits


_HOOK_FOR_TYPE = {
    StateType.COMPLETED: "on_completion",
    StateType.FAILED: "on_failure",
    StateType.CRASHED: "on_crashed",
    StateType.CANCELLED: "on_cancellation",
}
_FINISHED = "Finished in state %s"
# The final log line of a run that completed (or was Cached) with no message, made once:
# most runs log one of these.
_LOG_COMPLETED = {
    (kind, name): Log(logging.INFO, _FINISHED, (text,))
    for kind in ("flow", "task")
    for name, text in (("Completed", "Completed()"), ("Cached", "Cached(type=COMPLETED)"))
}
_CACHE_KEY = CacheKey()
_TRY_SLOTS, _WAIT_FOR_SLOTS = TakeSlots(wait=False), TakeSlots(wait=True)
_STATE_COLLECTIONS = (list, tuple, set)  # what a flow may return its states in (as in Prefect)
_INVOKE_UNTIMED: Invoke  # defined below _never_times_out


def lifecycle(plan: RunPlan, rng: Any) -> Generator[Effect, Any, State]:
    """Drive one run (already Pending) to its final state, or to NotReady when an upstream
    did not complete; returns that state. ``rng`` draws the retry jitter."""
    if plan.upstream is None and plan.pre_failure is None and plan.slots is None:
        # Most runs: no generator around the attempts (or the cache's), which every effect
        # would resume too.
        return _attempts(plan, rng) if plan.cache is None else _cached(plan, rng)
    return _prepared(plan, rng)


def _prepared(plan: RunPlan, rng: Any) -> Generator[Effect, Any, State]:
    """Wait for the upstream runs, fail early, or consult the cache, then run the body."""
    if plan.upstream is not None:
        try:
            problem = yield Resolve(plan.upstream)
        except Exception as exc:  # resolving itself failed: the run cannot start either
            problem = exc
        if problem is not None:
            not_ready = NotReady(exception=problem, message=str(problem))
            yield not_ready
            return not_ready
    if plan.pre_failure is not None:
        return (yield from _fail(plan, plan.pre_failure))
    if plan.slots is not None:
        try:
            if not (yield _TRY_SLOTS):
                yield State(_PENDING, "AwaitingConcurrencySlot")
                yield _WAIT_FOR_SLOTS
        except Exception as exc:  # the limit can never grant one (a limit of 0, say)
            return (yield from _fail(plan, exc))
    if plan.cache is not None:
        return (yield from _cached(plan, rng))
    return (yield from _attempts(plan, rng))


def _fail(plan: RunPlan, exc: BaseException) -> Generator[Effect, Any, State]:
    """Fail the run without running its body."""
    final = Failed(exception=exc, message=str(exc))
    yield final
    yield from _fire_hooks(plan, final)
    return final


def _cached(plan: RunPlan, rng: Any) -> Generator[Effect, Any, State]:
    """A caching task's run: a hit completes it as Cached without running the body; a miss
    runs it and writes its result."""
    run, cache = plan.run, plan.cache
    try:
        key = yield _CACHE_KEY
    except Exception as exc:  # an argument that cannot be hashed: the call fails clearly
        return (yield from _fail(plan, exc))
    if key is None:  # the policy gave no key: nothing to look up or write
        return (yield from _attempts(plan, rng))
    run.cache_key = key
    if cache.serializable:
        yield Acquire(key)
    if not cache.refresh:
        hit, value = yield CacheLookup(key)
        if hit:
            run.run_count += 1
            yield State(_RUNNING, "Running")
            final = State(_COMPLETED, "Cached", data=value)  # (Cached(), one call less)
            yield final
            yield _log_final(plan, final)
            yield from _fire_hooks(plan, final)
            return final
    final = yield from _attempts(plan, rng)
    if final.type is _COMPLETED:
        yield CacheWrite(key, final.data)
    return final


def _attempts(plan: RunPlan, rng: Any) -> Generator[Effect, Any, State]:
    """Run the body, retrying as configured; returns the final state."""
    run, spec = plan.run, plan.spec
    timeouts = _TimeoutErrors(plan) if spec.timeout else None
    invoke = Invoke(spec.timeout, timeouts.make) if timeouts is not None else _INVOKE_UNTIMED
    on_running = "on_running" in spec.hooks
    while True:
        run.run_count += 1
        # (State(...) itself for the first attempt, the common case: one call less)
        running = State(_RUNNING, "Running") if run.run_count == 1 else Retrying()
        yield running
        if on_running:
            yield from _fire_hooks(plan, running, "on_running")
        outcome: Outcome = yield invoke
        state = _state_from_outcome(plan, outcome, timeouts)
        if (
            state.type is _FAILED
            and not outcome.streamed
            and not outcome.enclosing_deadline_passed
            and run.run_count <= spec.retries
            and (yield from _should_retry(plan, state))
        ):
            try:
                delay = _jittered(spec.delay_for(run.run_count), spec.jitter_factor, rng)
            except Exception as exc:  # a retry_delay_seconds callable raised or gave a bad
                # delay: the run fails, saying why it was not retried
                state = Failed(exception=exc, message=f"{state.message}; not retried: {exc}")
            else:
                yield Log(
                    logging.INFO,
                    "%s - Retry %d/%d will start %s second(s) from now",
                    (state.message, run.run_count, spec.retries, f"{delay:g}"),
                )
                now = yield Now()
                yield AwaitingRetry(
                    scheduled_time=now + timedelta(seconds=delay), message=state.message
                )
                run.handed_back = None  # (a State this attempt returned is not the outcome)
                try:
                    yield Sleep(delay)
                    continue
                except BaseException as exc:  # an enclosing deadline or an interrupt
                    state = _state_from_outcome(plan, Outcome(exception=exc), timeouts)
        yield state
        yield _log_final(plan, state)
        if spec.hooks:
            yield from _fire_hooks(plan, state)
        return state


def _state_from_outcome(plan: RunPlan, outcome: Outcome, timeouts: _TimeoutErrors | None) -> State:
    exc = outcome.exception
    if exc is None:
        return _state_from_value(plan, outcome.value)
    if timeouts is not None and timeouts.issued(exc):
        return TimedOut(exception=exc, message=str(exc))
    label = "Flow run" if plan.spec.kind == "flow" else "Task run"
    if isinstance(exc, Exception):
        return Failed(
            exception=exc,
            message=f"{label} encountered an exception: {type(exc).__name__}: {exc}",
        )
    if _is_cancellation(exc):
        return Cancelled(exception=exc, message=f"{label} was cancelled.")
    if isinstance(exc, DeadlineExceeded):
        return Crashed(
            exception=exc, message=f"{label} was interrupted by an enclosing run's timeout."
        )
    return Crashed(
        exception=exc, message=f"{label} crashed: {type(exc).__name__}: {exc}".rstrip(": ")
    )


def _state_from_value(plan: RunPlan, value: Any) -> State:
    """The final state of a body that returned ``value``."""
    kind = plan.spec.kind
    if isinstance(value, State):  # a body may return a state to set its own outcome
        if kind == "task":  # the caller gets the State itself, as in Prefect
            plan.run.handed_back = (value,)
        if value.is_final():
            return value.copy()
        label = "Flow run" if kind == "flow" else "Task run"
        return Failed(
            exception=value.exception,
            message=f"{label} returned a {value.name} state, which is not final: "
            f"{value.message or 'no message'}",
        )
    if kind == "flow":
        if type(value) is ReturnedStates:
            return _aggregate(plan, value.states, value.value)
        if (
            isinstance(value, _STATE_COLLECTIONS)
            and value
            and all(isinstance(s, State) for s in value)
        ):
            return _aggregate(plan, tuple(value), value)
    return State(_COMPLETED, "Completed", data=value)


def _aggregate(plan: RunPlan, states: tuple[State, ...], value: Any) -> State:
    """A flow returned a collection made entirely of states (Prefect's rule): Completed if
    every one completed, else Cancelled or Failed, with a message counting them. The caller
    gets the collection either way (it is not an error to return failed states)."""
    plan.run.handed_back = (value,)
    total = len(states)
    counts = {t: sum(1 for s in states if s.type is t) for t in (_COMPLETED, _FAILED)}
    cancelled = sum(1 for s in states if s.type is StateType.CANCELLED)
    failed = counts[_FAILED] + sum(1 for s in states if s.type is StateType.CRASHED)
    if counts[_COMPLETED] == total:
        return State(_COMPLETED, "Completed", message="All states completed.", data=value)
    if cancelled:
        return Cancelled(message=f"{cancelled}/{total} states cancelled.", data=value)
    if failed:
        return Failed(message=f"{failed}/{total} states failed.", data=value)
    unfinished = sum(1 for s in states if not s.is_final())
    return Failed(message=f"{unfinished}/{total} states are not final.", data=value)


def _is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is asyncio's CancelledError. (Looked up in ``sys.modules``: if asyncio
    was never imported nothing can be cancelled by it, and importing it costs ~40 ms.)"""
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


def _should_retry(plan: RunPlan, state: State) -> Generator[Effect, Any, bool]:
    condition = plan.spec.retry_condition
    if condition is None:
        return True
    try:
        verdict = yield CallUser(condition, (plan.owner, plan.run.snapshot(), state))
    except Exception as exc:
        yield Log(logging.ERROR, "retry_condition_fn %r raised; not retrying", (condition,), exc)
        return False
    return bool(verdict)


def _jittered(delay: float, factor: float | None, rng: Any) -> float:
    """``delay`` with ``retry_jitter_factor`` applied. Up to 1, uniform within
    ``delay * (1 ± factor)`` (the mean is the delay); above 1 that range would reach below
    0, and clamping it there would pile the draws up at 0 s and raise the mean, so larger
    factors use Prefect's clamped exponential distribution instead."""
    if not factor:
        return delay
    if factor <= 1.0:
        return delay * (1.0 + rng.uniform(-factor, factor))
    return _clamped_exponential(delay, factor, rng)


def _clamped_exponential(mean: float, factor: float, rng: Any) -> float:
    """A draw from the exponential distribution of mean ``mean``, kept between a lower bound
    and ``mean * (1 + factor)``. The lower bound (in units of the mean, ``-log2(1 - 2**-k)``
    for ``k = 1 + factor``) balances the probability mass on either side of the median, as
    Prefect's ``clamped_poisson_interval`` does, so the mean stays close to ``mean`` (within
    ~2% for every factor) and no draw falls to 0 s unless the factor is huge (k >= 50)."""
    if mean <= 0.0:
        return 0.0
    k = 1.0 + factor
    low = -math.log2(1.0 - 2.0**-k) if k < 50.0 else 0.0
    # Inverse transform sampling over the exponential's CDF between the two bounds.
    u = rng.uniform(1.0 - math.exp(-low), 1.0 - math.exp(-k))
    return -math.log(max(1.0 - u, 1e-10)) * mean


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
        except Exception as exc:
            yield Log(
                logging.ERROR,
                "%s hook %r raised; the run's state is unchanged",
                (name, getattr(hook, "__name__", hook)),
                exc,
            )


def _log_final(plan: RunPlan, state: State) -> Log:
    """The run's last log line: its final state, without its result (which may be large or
    sensitive); an error with the traceback unless it completed."""
    kind = plan.spec.kind
    if state.type is _COMPLETED:
        made = _LOG_COMPLETED.get((kind, state.name))
        if made is not None and not state.message:
            return made
        return Log(_LOG_COMPLETED[kind, "Completed"].level, _FINISHED, (_summary(state),))
    return Log(logging.ERROR, _FINISHED, (_summary(state),), state.exception)


def _summary(state: State) -> str:
    """``Completed()`` / ``Failed('message')`` / ``TimedOut('message', type=FAILED)``: the
    name, the message, and the type when the name is not the type's (as Prefect logs it)."""
    shown = [repr(state.message)] if state.message else []
    if state.name.upper() != state.type.value:
        shown.append(f"type={state.type.value}")
    return f"{state.name}({', '.join(shown)})"


def _never_times_out() -> BaseException:  # pragma: no cover - a run without a timeout
    raise AssertionError("a run without timeout_seconds asked for its timeout error")


_INVOKE_UNTIMED = Invoke(None, _never_times_out)


class _TimeoutErrors:
    """Makes this run's timeout errors, and recognises them (a timeout raised by a nested
    run and left uncaught is a plain failure of this run, not its own timeout)."""

    __slots__ = ("plan", "_issued")

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self._issued: list[BaseException] = []

    def make(self) -> BaseException:
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
