"""``@task`` and :class:`Task`: a function plus frozen, validated options; and the helpers
``exponential_backoff`` and ``task_input_hash``.

Calling a task runs it (see :mod:`wfkit._engine.calls`); nothing about the run lifecycle
lives here. ``Task[P, R]`` is generic over the function's parameters and return type, so that
type checkers check calls, ``submit``, ``map``, ``with_options`` and ``return_state=True``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import timedelta
from types import ModuleType
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Literal,
    Protocol,
    TypeAlias,
    Unpack,
    overload,
)

import wfkit._options as opt
from wfkit._decorated import Decorated, G, P, Q, R, T
from wfkit._engine.lifecycle import RunSpec
from wfkit._engine.naming import check_name_template
from wfkit.exceptions import ConfigurationError
from wfkit.states import State

if TYPE_CHECKING:  # (annotations only: importing these would add ~8 ms to ``import wfkit``,
    # measured with -X importtime: cache_policies 7 ms, futures 1.3 ms, of ~45 ms)
    from wfkit.cache_policies import CacheKeyContext, CachePolicy
    from wfkit.futures import WfFuture, WfFutureList

__all__ = [
    "Task",
    "TaskOptionKwargs",
    "TaskOptions",
    "TaskStateHook",
    "exponential_backoff",
    "task",
    "task_input_hash",
]

# ``on_completion``/``on_failure``/``on_running`` hooks: ``hook(task, task_run, state)``;
# task_run is a read-only snapshot of the run. What a hook returns is ignored.
TaskStateHook: TypeAlias = "Callable[[Task[..., Any], Any, State[Any]], object]"


class TaskOptionKwargs(opt.CommonOptionKwargs, total=False):
    """The keyword options of ``@task(...)`` and :meth:`Task.with_options`, with their types
    (see :func:`task` for their meaning; the keys are :class:`TaskOptions`' fields)."""

    tags: Iterable[str] | None
    task_run_name: opt.RunNameOption
    retry_delay_seconds: (
        float
        | timedelta
        | Sequence[float | timedelta]
        | Callable[[int], float | Iterable[float]]
        | None
    )
    retry_jitter_factor: float | None
    retry_condition_fn: Callable[[Task[..., Any], Any, State[Any]], bool | Awaitable[bool]] | None
    cache_policy: CachePolicy | None
    cache_key_fn: Callable[[CacheKeyContext, dict[str, Any]], str | None] | None
    cache_expiration: timedelta | float | None
    refresh_cache: bool | None
    persist_result: bool | None
    result_serializer: Literal["pickle", "json"] | None
    on_completion: Iterable[TaskStateHook] | None
    on_failure: Iterable[TaskStateHook] | None
    on_running: Iterable[TaskStateHook] | None


@dataclasses.dataclass(frozen=True, slots=True)
class TaskOptions:
    """The validated options of a task (see :func:`task` for their meaning)."""

    name: str
    description: str | None = None
    tags: tuple[str, ...] = ()
    version: str | None = None
    task_run_name: str | Callable[..., Any] | None = None
    retries: int = 0
    retry_delay_seconds: float | tuple[float, ...] | Callable[[int], Any] = 0.0
    retry_jitter_factor: float | None = None
    retry_condition_fn: Callable[..., Any] | None = None
    timeout_seconds: float | None = None
    log_prints: bool | None = None
    cache_policy: Any = None
    cache_key_fn: Callable[..., Any] | None = None
    cache_expiration: timedelta | None = None
    refresh_cache: bool | None = None
    persist_result: bool | None = None
    result_serializer: str | None = None
    on_completion: tuple[Callable[..., Any], ...] = ()
    on_failure: tuple[Callable[..., Any], ...] = ()
    on_running: tuple[Callable[..., Any], ...] = ()

    def effective_cache_policy(self) -> Any:
        """The policy that decides this task's cache key, or None: not cached. A
        ``cache_key_fn`` overrides ``cache_policy``; without either the task is not cached
        (wfkit's deliberate difference from Prefect: no surprise ``Cached`` states) unless
        it sets ``persist_result=True``, which means ``DEFAULT`` as in Prefect."""
        if self.persist_result is False:  # as in Prefect: nothing persisted, nothing cached
            return None
        if self.cache_key_fn is not None:
            return _cache_policies().CacheKeyFnPolicy(self.cache_key_fn)
        if self.cache_policy is None:
            # An explicit persist_result=True asks for Prefect's default caching.
            return _cache_policies().DEFAULT if self.persist_result else None
        if isinstance(self.cache_policy, _cache_policies().NoCache):
            return None
        return self.cache_policy


_HOOK_OPTIONS = ("on_completion", "on_failure", "on_running")

# The engine's entry points, bound on first use: the engine is ~9 ms of the ~45 ms of
# ``import wfkit`` (and submitting ~2 ms more), and only running a task needs it.
_call_task: Callable[..., Any] | None = None
_submit_task: Callable[..., Any] | None = None
_map_task: Callable[..., Any] | None = None


def _load_call_task() -> Callable[..., Any]:
    global _call_task
    from wfkit._engine.calls import call_task  # (lazy: the engine, see above)

    _call_task = call_task
    return call_task


def _load_submitting() -> tuple[Callable[..., Any], Callable[..., Any]]:
    global _submit_task, _map_task
    from wfkit._engine.submit import map_task, submit_task  # (lazy: the engine, see above)

    _submit_task, _map_task = submit_task, map_task
    return submit_task, map_task


def _cache_policies() -> ModuleType:
    """:mod:`wfkit.cache_policies`, for tasks that cache."""
    import wfkit.cache_policies  # (lazy: ~7 ms of ``import wfkit``; only caching needs it)

    return wfkit.cache_policies


def _no_delay(retry: int) -> float:
    return 0.0


class Task(Decorated[P, R]):
    """A function that runs as a task: every call is a recorded task run.

    Call it like the function (inside or outside a flow). ``task(..., return_state=True)``
    returns the final :class:`~wfkit.states.State` instead of the result.

    ``Task[P, R]`` has the parameters ``P`` and return type ``R`` of its function (for an
    ``async def`` returning ``int``, ``R`` is ``Coroutine[Any, Any, int]``).
    """

    kind = "task"

    def __init__(self, fn: Callable[P, R], **options: Unpack[TaskOptionKwargs]) -> None:
        super().__init__(fn)
        self.options = self._validate(options)

    def _validate(self, given: Mapping[str, Any]) -> TaskOptions:
        unknown = set(given) - {f.name for f in dataclasses.fields(TaskOptions)}
        if unknown:
            raise TypeError(
                f"@task got unknown option(s) {sorted(unknown)}; see help(wfkit.task) for the "
                "options this version supports."
            )
        name = given.get("name")
        name = self.fn.__name__ if name is None else name
        owner = self.owner_label(name if isinstance(name, str) else repr(name))
        opt.check_name(name, owner)
        values: dict[str, Any] = {
            "name": name,
            "description": opt.check_optional_str(
                given.get("description", inspect.getdoc(self.fn)), owner, "description"
            ),
            "tags": opt.check_tags(given.get("tags"), owner),
            "version": opt.check_optional_str(given.get("version"), owner, "version"),
            "task_run_name": opt.check_run_name(given.get("task_run_name"), owner, "task_run_name"),
            "retries": opt.check_retries(given.get("retries", 0), owner),
            "retry_delay_seconds": opt.check_task_delay(given.get("retry_delay_seconds"), owner),
            "retry_jitter_factor": opt.check_jitter(given.get("retry_jitter_factor"), owner),
            "retry_condition_fn": opt.check_optional_callable(
                given.get("retry_condition_fn"), owner, "retry_condition_fn"
            ),
            "timeout_seconds": opt.check_timeout(given.get("timeout_seconds"), owner),
            **_cache_options(given, owner),
            "log_prints": opt.check_bool(
                given.get("log_prints"), owner, "log_prints", optional=True
            ),
        }
        for hook in _HOOK_OPTIONS:
            values[hook] = opt.check_hooks(given.get(hook), owner, hook)
        if isinstance(values["task_run_name"], str):
            check_name_template(
                values["task_run_name"], self.signature, argument="task_run_name", owner=owner
            )
        self._given = dict(given)
        return TaskOptions(**values)

    @property
    def tags(self) -> tuple[str, ...]:
        return self.options.tags

    def with_options(self, **changes: Unpack[TaskOptionKwargs]) -> Task[P, R]:
        """A new Task with the same function and ``changes`` applied to the options."""
        return self._replaced(changes)

    @functools.cached_property
    def run_spec(self) -> RunSpec:
        """What every run of this task shares, worked out once: its retry settings (a
        callable ``retry_delay_seconds`` is called once, with ``retries``, as in Prefect),
        timeout and hooks."""
        options = self.options
        return RunSpec(
            kind="task",
            retries=options.retries,
            delay_for=self.retry_delays() if options.retries else _no_delay,
            jitter_factor=options.retry_jitter_factor,
            retry_condition=options.retry_condition_fn,
            timeout=options.timeout_seconds,
            hooks={h: getattr(options, h) for h in _HOOK_OPTIONS if getattr(options, h)},
        )

    @functools.cached_property
    def effective_cache_policy(self) -> Any:
        """The policy that computes this task's cache keys, or None (worked out once)."""
        return self.options.effective_cache_policy()

    def retry_delays(self) -> Callable[[int], float]:
        """A function from retry number (1-based) to its base delay in seconds."""
        return retry_delay_schedule(
            self.options.retry_delay_seconds, self.options.retries, self.name
        )

    # Calling. A call's arguments are checked against P; with ``return_state=`` or
    # ``wait_for=`` they cannot be (mypy allows no parameter between ``*args: P.args`` and
    # ``**kwargs: P.kwargs``), but its result type still is. These keywords are reserved
    # parameter names, so a call that uses one never matches the first overload.
    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    def __call__(
        self: Task[Q, Coroutine[Any, Any, T]],
        *args: Any,
        return_state: Literal[True],
        wait_for: Iterable[object] | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, State[T]]: ...
    @overload
    def __call__(  # a generator streams to its caller: return_state does not apply
        self: Task[Q, G],
        *args: Any,
        return_state: bool,
        wait_for: Iterable[object] | None = None,
        **kwargs: Any,
    ) -> G: ...
    @overload
    def __call__(
        self,
        *args: Any,
        return_state: Literal[True],
        wait_for: Iterable[object] | None = None,
        **kwargs: Any,
    ) -> State[R]: ...
    @overload
    def __call__(
        self,
        *args: Any,
        return_state: Literal[False] = False,
        wait_for: Iterable[object],
        **kwargs: Any,
    ) -> R: ...
    @overload
    def __call__(
        self,
        *args: Any,
        return_state: Literal[False],
        wait_for: Iterable[object] | None = None,
        **kwargs: Any,
    ) -> R: ...
    @overload
    def __call__(
        self: Task[Q, Coroutine[Any, Any, T]],
        *args: Any,
        return_state: bool,
        wait_for: Iterable[object] | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, T | State[T]]: ...
    @overload
    def __call__(
        self,
        *args: Any,
        return_state: bool,
        wait_for: Iterable[object] | None = None,
        **kwargs: Any,
    ) -> R | State[R]: ...
    def __call__(
        self, *args: Any, return_state: Any = False, wait_for: Any = None, **kwargs: Any
    ) -> Any:
        return (_call_task or _load_call_task())(self, args, kwargs, return_state, wait_for)

    # Submitting. At run time a future may stand for an argument (it is waited for); P
    # cannot say so, so a type checker rejects a future where the function takes a value
    # (unless the call has ``wait_for=``, whose arguments are not checked). A submitted async
    # task's future holds what its coroutine returns.
    @overload
    def submit(
        self: Task[Q, Coroutine[Any, Any, T]], *args: Q.args, **kwargs: Q.kwargs
    ) -> WfFuture[T]: ...
    @overload
    def submit(self, *args: P.args, **kwargs: P.kwargs) -> WfFuture[R]: ...
    @overload
    def submit(
        self: Task[Q, Coroutine[Any, Any, T]],
        *args: Any,
        wait_for: Iterable[object],
        **kwargs: Any,
    ) -> WfFuture[T]: ...
    @overload
    def submit(self, *args: Any, wait_for: Iterable[object], **kwargs: Any) -> WfFuture[R]: ...
    def submit(self, *args: Any, wait_for: Any = None, **kwargs: Any) -> Any:
        """Run the task on the flow's task runner; returns a :class:`~wfkit.futures.WfFuture`.

        Futures among the arguments are waited for and replaced by their results (their runs
        become this run's upstream); ``wait_for=[...]`` adds ordering without data.

        Raises:
            MissingContextError: called outside a flow (a RuntimeError).
        """
        return (_submit_task or _load_submitting()[0])(self, args, kwargs, wait_for)

    # Mapping: each argument is an iterable of the parameter's values, or ``unmapped(x)``;
    # ParamSpec cannot express that, so the arguments are not checked.
    @overload
    def map(
        self: Task[Q, Coroutine[Any, Any, T]],
        *args: Any,
        wait_for: Iterable[object] | None = None,
        **kwargs: Any,
    ) -> WfFutureList[T]: ...
    @overload
    def map(
        self, *args: Any, wait_for: Iterable[object] | None = None, **kwargs: Any
    ) -> WfFutureList[R]: ...
    def map(self, *args: Any, wait_for: Any = None, **kwargs: Any) -> Any:
        """Submit one run per position of the iterable arguments (equal lengths; wrap
        constants in ``unmapped``); returns a :class:`~wfkit.futures.WfFutureList`.

        Raises:
            MappingLengthMismatch: the iterables have different lengths.
            MappingMissingIterable: no argument is iterable.
        """
        return (_map_task or _load_submitting()[1])(self, args, kwargs, wait_for)

    # Binding: a task in a class body is a method. Type checkers pass @classmethod and
    # @staticmethod functions through as plain functions, so these overloads tell them apart
    # by the first parameter: ``type[T]`` is a classmethod's ``cls``, bound on any access;
    # another first parameter is ``self``, bound on access through an instance. (mypy
    # matches a Concatenate prefix by position only, not type, so it binds static methods'
    # first parameters and ``self`` on access through the class; pyright does not.)
    @overload
    def __get__(
        self: Task[Concatenate[type[T], Q], R], instance: T | None, owner: type[T]
    ) -> Task[Q, R]: ...
    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Task[P, R]: ...
    @overload
    def __get__(
        self: Task[Concatenate[T, Q], R], instance: T, owner: type | None = None
    ) -> Task[Q, R]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Task[P, R]: ...
    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self._bound_copy(instance, owner)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


def _cache_options(given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Validate the caching options (``cache_policy`` must be a CachePolicy, and so on)."""
    policy = given.get("cache_policy")
    if policy is not None and not isinstance(policy, _cache_policies().CachePolicy):
        raise ConfigurationError(
            f"cache_policy={policy!r} is invalid for {owner}: it must be a CachePolicy such as "
            "wfkit.cache_policies.INPUTS or DEFAULT (or use cache_key_fn=...)."
        )
    expiration = given.get("cache_expiration")
    if expiration is not None:
        # (a longer bound than a delay's: caching for years is fine, but now + expiration
        # must stay inside datetime's range)
        seconds = opt.check_seconds(expiration, owner, "cache_expiration", maximum=1e10)
        expiration = timedelta(seconds=seconds)
    serializer = given.get("result_serializer")
    if serializer is not None and serializer not in ("pickle", "json"):
        raise ConfigurationError(
            f"result_serializer={serializer!r} is invalid for {owner}: use 'pickle' (the "
            "default) or 'json'."
        )
    if given.get("persist_result") is False and (policy is not None or given.get("cache_key_fn")):
        logging.getLogger("wfkit").warning(
            "%s sets persist_result=False, so its cache_policy/cache_key_fn is ignored: a "
            "result that is not persisted cannot be restored (as in Prefect).",
            owner,
        )
    return {
        "cache_policy": policy,
        "cache_key_fn": opt.check_optional_callable(
            given.get("cache_key_fn"), owner, "cache_key_fn"
        ),
        "cache_expiration": expiration,
        "refresh_cache": opt.check_bool(
            given.get("refresh_cache"), owner, "refresh_cache", optional=True
        ),
        "persist_result": opt.check_bool(
            given.get("persist_result"), owner, "persist_result", optional=True
        ),
        "result_serializer": serializer,
    }


def retry_delay_schedule(
    setting: float | tuple[float, ...] | Callable[[int], Any], retries: int, name: str
) -> Callable[[int], float]:
    """Resolve ``retry_delay_seconds`` into ``delay(n)`` for retry ``n`` (1-based).

    A number is used for every retry; a list gives one delay per retry, its last value
    repeating; a callable is called once with ``retries``, when the first retry is due, and
    must return a number or such a list. What it returns is checked then: a bad value
    raises :class:`~wfkit.exceptions.ConfigurationError`, which fails that run.
    """
    if not callable(setting):
        return _fixed_schedule(setting)
    make = setting
    made: list[Callable[[int], float]] = []  # the schedule, once the callable has made it

    def delay(n: int) -> float:
        if not made:
            made.append(_fixed_schedule(_checked_delays(make(retries), name)))
        return made[0](n)

    return delay


def _checked_delays(produced: Any, name: str) -> float | tuple[float, ...]:
    """What a ``retry_delay_seconds`` callable returned, checked like the option itself."""
    owner, argument = f"@task {name!r}", "retry_delay_seconds(retries)"
    if opt._is_number(produced):
        return opt.check_seconds(produced, owner, argument)
    return opt.check_delay_list(produced, owner, argument)


def _fixed_schedule(setting: float | tuple[float, ...]) -> Callable[[int], float]:
    if isinstance(setting, tuple):
        delays = setting
        return lambda n: delays[min(n, len(delays)) - 1]
    constant = float(setting)
    return lambda n: constant


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str | None:
    """The legacy ``cache_key_fn``: a hash of the task and its arguments (None when an
    argument cannot be hashed). See :func:`wfkit.cache_policies.task_input_hash`."""
    return _cache_policies().task_input_hash(context, arguments)


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """A ``retry_delay_seconds`` callable: delays ``backoff_factor * 2**i`` for each retry.

    Example: ``@task(retries=3, retry_delay_seconds=exponential_backoff(10))`` waits
    10, 20 and 40 seconds.
    """
    if not opt._is_number(backoff_factor) or backoff_factor < 0:
        raise ConfigurationError(
            f"exponential_backoff(backoff_factor={backoff_factor!r}): it must be a number >= 0."
        )

    def retry_backoff_delays(retries: int) -> list[float]:
        return [float(backoff_factor) * 2**i for i in range(retries)]

    return retry_backoff_delays


class TaskDecorator(Protocol):
    """What ``@task(...)`` with options returns: a decorator making a :class:`Task`."""

    @overload
    def __call__(
        self, fn: Callable[Q, Coroutine[Any, Any, T]], /
    ) -> Task[Q, Coroutine[Any, Any, T]]: ...
    @overload
    def __call__(self, fn: Callable[Q, T], /) -> Task[Q, T]: ...


# (The first overloads name an async function's coroutine type ``Coroutine``, which pyright
# would otherwise infer as the narrower ``types.CoroutineType``.)
@overload
def task(fn: Callable[P, Coroutine[Any, Any, T]], /) -> Task[P, Coroutine[Any, Any, T]]: ...
@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(fn: None = None, /, **options: Unpack[TaskOptionKwargs]) -> TaskDecorator: ...
def task(fn: Any = None, /, **options: Any) -> Any:
    """Turn a function into a :class:`Task`. Use bare (``@task``) or with options.

    Args:
        name: the task's name (default: the function name, unchanged).
        description: default: the docstring.
        tags: tags for every run, unioned with enclosing ``with tags(...)`` blocks.
        version: a version string (default None).
        task_run_name: a format template over the parameters, or a callable with no
            arguments or with a ``parameters`` argument; default ``"{name}-{3 hex chars}"``.
        retries: how many times to retry a failed run (default 0).
        retry_delay_seconds: a number, a list (one per retry, the last repeats; at most 50)
            or a callable ``f(retries) -> list`` such as ``exponential_backoff(10)``, called
            when the first retry is due. Each delay is 0..1e7 s (about 116 days).
        retry_jitter_factor: randomise each delay within ``delay * (1 ± factor)``
            (0..100).
        retry_condition_fn: ``f(task, task_run, state) -> bool`` (sync or async); retry only
            when it returns true.
        timeout_seconds: fail the run as ``TimedOut`` after this long (0/None: never; at
            most 1e7 s).
        log_prints: send ``print`` inside the run to the run logger too (default: inherit).
        cache_policy: a :mod:`wfkit.cache_policies` policy (``INPUTS``, ``DEFAULT``, ...);
            without it or ``cache_key_fn`` the task is never cached.
        cache_key_fn: ``f(context, parameters) -> str | None``; overrides ``cache_policy``.
        cache_expiration: how long (timedelta or seconds, on the clock) a record stays valid.
        refresh_cache: recompute and overwrite the record even on a hit.
        persist_result: ``True`` without ``cache_policy``/``cache_key_fn`` caches with
            ``DEFAULT`` (inputs, task source, flow run), as in Prefect; ``False`` turns
            caching off (with a warning). Cached results are stored in the run store, other
            results are not persisted.
        result_serializer: ``"pickle"`` (default) or ``"json"``, for cache records.
        on_completion, on_failure, on_running: lists of ``hook(task, task_run, state)``.

    Raises:
        ConfigurationError: an option is invalid (the message names it).
    """
    if fn is not None:
        return Task(fn, **options)
    return lambda fn: Task(fn, **options)
