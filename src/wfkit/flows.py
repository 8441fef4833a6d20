"""``@flow`` and :class:`Flow`: a function plus frozen, validated options.

Calling a flow runs it (see :mod:`wfkit._engine.calls`); nothing about the run lifecycle
lives here. ``Flow[P, R]`` is generic over the function's parameters and return type, so that
type checkers check calls, ``with_options`` and ``return_state=True``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import timedelta
from typing import (
    Any,
    Concatenate,
    Literal,
    Protocol,
    TypeAlias,
    Unpack,
    overload,
)

import wfkit._options as opt
from wfkit._decorated import Decorated, G, H, P, Q, R, T
from wfkit._engine.lifecycle import RunSpec
from wfkit._engine.naming import check_name_template
from wfkit._engine.parameters import ParameterValidator, parameter_schema
from wfkit.states import State
from wfkit.task_runners import TaskRunner, ThreadPoolTaskRunner, resolve_task_runner

__all__ = ["Flow", "FlowDecorator", "FlowOptionKwargs", "FlowOptions", "FlowStateHook", "flow"]

# The state hooks (``on_completion``, ...): ``hook(flow, flow_run, state)``; flow_run is a
# read-only snapshot of the run. What a hook returns is ignored.
FlowStateHook: TypeAlias = "Callable[[Flow[..., Any], Any, State[Any]], object]"


class FlowOptionKwargs(opt.CommonOptionKwargs, total=False):
    """The keyword options of ``@flow(...)`` and :meth:`Flow.with_options`, with their types
    (see :func:`flow` for their meaning; the keys are :class:`FlowOptions`' fields)."""

    flow_run_name: opt.RunNameOption
    retry_delay_seconds: float | timedelta | None
    validate_parameters: bool
    task_runner: TaskRunner | type[TaskRunner] | None
    on_completion: Iterable[FlowStateHook] | None
    on_failure: Iterable[FlowStateHook] | None
    on_cancellation: Iterable[FlowStateHook] | None
    on_crashed: Iterable[FlowStateHook] | None
    on_running: Iterable[FlowStateHook] | None


_call_flow: Callable[..., Any] | None = None  # the engine's entry point, bound on first use


def _load_call_flow() -> Callable[..., Any]:
    global _call_flow
    # (lazy: the engine is ~9 ms of the ~45 ms of `import wfkit`; only running needs it)
    from wfkit._engine.calls import call_flow

    _call_flow = call_flow
    return call_flow


@dataclasses.dataclass(frozen=True, slots=True)
class FlowOptions:
    """The validated options of a flow (see :func:`flow` for their meaning)."""

    name: str
    description: str | None = None
    version: str | None = None
    flow_run_name: str | Callable[..., Any] | None = None
    retries: int = 0
    retry_delay_seconds: float = 0.0
    timeout_seconds: float | None = None
    validate_parameters: bool = True
    log_prints: bool | None = None
    task_runner: Any = None
    on_completion: tuple[Callable[..., Any], ...] = ()
    on_failure: tuple[Callable[..., Any], ...] = ()
    on_cancellation: tuple[Callable[..., Any], ...] = ()
    on_crashed: tuple[Callable[..., Any], ...] = ()
    on_running: tuple[Callable[..., Any], ...] = ()


_HOOK_OPTIONS = ("on_completion", "on_failure", "on_cancellation", "on_crashed", "on_running")


class Flow(Decorated[P, R]):
    """A function that runs as a flow: every call is a recorded flow run.

    Call it like the function. ``flow(..., return_state=True)`` returns the final
    :class:`~wfkit.states.State` instead of the result and never raises the flow's error.

    ``Flow[P, R]`` has the parameters ``P`` and return type ``R`` of its function (for an
    ``async def`` returning ``int``, ``R`` is ``Coroutine[Any, Any, int]``).
    """

    kind = "flow"

    def __init__(self, fn: Callable[P, R], **options: Unpack[FlowOptionKwargs]) -> None:
        super().__init__(fn)
        self.options = self._validate(options)
        self._validator = ParameterValidator(self.fn, self.signature)

    def _validate(self, given: Mapping[str, Any]) -> FlowOptions:
        unknown = set(given) - {f.name for f in dataclasses.fields(FlowOptions)}
        if unknown:
            raise TypeError(
                f"@flow got unknown option(s) {sorted(unknown)}; see help(wfkit.flow) for the "
                "options this version supports."
            )
        name = given.get("name")
        name = self.fn.__name__.replace("_", "-") if name is None else name
        owner = self.owner_label(name if isinstance(name, str) else repr(name))
        opt.check_name(name, owner)
        values: dict[str, Any] = {
            "name": name,
            "description": opt.check_optional_str(
                given.get("description", inspect.getdoc(self.fn)), owner, "description"
            ),
            "version": opt.check_optional_str(
                given["version"] if "version" in given else self.source_file_md5(), owner, "version"
            ),
            "flow_run_name": opt.check_run_name(given.get("flow_run_name"), owner, "flow_run_name"),
            "retries": opt.check_retries(given.get("retries", 0), owner),
            "retry_delay_seconds": opt.check_seconds(
                given.get("retry_delay_seconds") or 0, owner, "retry_delay_seconds"
            ),
            "timeout_seconds": opt.check_timeout(given.get("timeout_seconds"), owner),
            "validate_parameters": opt.check_bool(
                given.get("validate_parameters", True), owner, "validate_parameters"
            ),
            "log_prints": opt.check_bool(
                given.get("log_prints"), owner, "log_prints", optional=True
            ),
            "task_runner": resolve_task_runner(
                given.get("task_runner") or ThreadPoolTaskRunner, owner
            ),
        }
        for hook in _HOOK_OPTIONS:
            values[hook] = opt.check_hooks(given.get(hook), owner, hook)
        if isinstance(values["flow_run_name"], str):
            check_name_template(
                values["flow_run_name"], self.signature, argument="flow_run_name", owner=owner
            )
        self._given = dict(given)
        return FlowOptions(**values)

    @property
    def version(self) -> str | None:
        return self.options.version

    @functools.cached_property
    def run_spec(self) -> RunSpec:
        """What every run of this flow shares: retry settings, timeout and hooks."""
        options = self.options
        delay = options.retry_delay_seconds
        return RunSpec(
            kind="flow",
            retries=options.retries,
            delay_for=lambda retry: delay,
            jitter_factor=None,
            retry_condition=None,
            timeout=options.timeout_seconds,
            hooks={h: getattr(options, h) for h in _HOOK_OPTIONS if getattr(options, h)},
        )

    def with_options(self, **changes: Unpack[FlowOptionKwargs]) -> Flow[P, R]:
        """A new Flow with the same function and ``changes`` applied to the options."""
        return self._replaced(changes)

    @property
    def parameters(self) -> Any:
        """The JSON schema of the flow's parameters, from its signature and type hints, as
        Prefect's ``ParameterSchema`` (a pydantic model: ``title``, ``type``,
        ``properties``, ``required``, ``definitions``; ``model_dump()``,
        ``model_json_schema()``)."""
        return parameter_schema(self.fn, self.signature, self.skips_first_parameter)

    # More decorators for hooks (see Decorated.on_completion): flows also have these.
    def on_cancellation(self, hook: H) -> H:
        """Decorator: also call ``hook(flow, flow_run, state)`` when a run is cancelled."""
        return self._add_hook("on_cancellation", hook)

    def on_crashed(self, hook: H) -> H:
        """Decorator: also call ``hook(flow, flow_run, state)`` when a run crashes."""
        return self._add_hook("on_crashed", hook)

    # Calling (see Task.__call__: with ``return_state=`` the arguments are not checked).
    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    def __call__(
        self: Flow[Q, Coroutine[Any, Any, T]],
        *args: Any,
        return_state: Literal[True],
        **kwargs: Any,
    ) -> Coroutine[Any, Any, State[T]]: ...
    @overload
    def __call__(  # a generator streams to its caller: return_state does not apply
        self: Flow[Q, G], *args: Any, return_state: bool, **kwargs: Any
    ) -> G: ...
    @overload
    def __call__(self, *args: Any, return_state: Literal[True], **kwargs: Any) -> State[R]: ...
    @overload
    def __call__(self, *args: Any, return_state: Literal[False], **kwargs: Any) -> R: ...
    @overload
    def __call__(
        self: Flow[Q, Coroutine[Any, Any, T]], *args: Any, return_state: bool, **kwargs: Any
    ) -> Coroutine[Any, Any, T | State[T]]: ...
    @overload
    def __call__(self, *args: Any, return_state: bool, **kwargs: Any) -> R | State[R]: ...
    def __call__(self, *args: Any, return_state: Any = False, **kwargs: Any) -> Any:
        return (_call_flow or _load_call_flow())(self, args, kwargs, return_state=return_state)

    # Binding (see Task.__get__).
    @overload
    def __get__(
        self: Flow[Concatenate[type[T], Q], R], instance: T | None, owner: type[T]
    ) -> Flow[Q, R]: ...
    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Flow[P, R]: ...
    @overload
    def __get__(
        self: Flow[Concatenate[T, Q], R], instance: T, owner: type | None = None
    ) -> Flow[Q, R]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Flow[P, R]: ...
    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self._bound_copy(instance, owner)

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


class FlowDecorator(Protocol):
    """What ``@flow(...)`` with options returns: a decorator making a :class:`Flow`."""

    @overload
    def __call__(
        self, fn: Callable[Q, Coroutine[Any, Any, T]], /
    ) -> Flow[Q, Coroutine[Any, Any, T]]: ...
    @overload
    def __call__(self, fn: Callable[Q, T], /) -> Flow[Q, T]: ...


# (The overloads are those of wfkit.tasks.task, for the same reasons.)
@overload
def flow(fn: Callable[P, Coroutine[Any, Any, T]], /) -> Flow[P, Coroutine[Any, Any, T]]: ...
@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...
@overload
def flow(fn: None = None, /, **options: Unpack[FlowOptionKwargs]) -> FlowDecorator: ...
def flow(fn: Any = None, /, **options: Any) -> Any:
    """Turn a function into a :class:`Flow`. Use bare (``@flow``) or with options.

    Args:
        name: the flow's name (default: the function name with ``_`` replaced by ``-``).
        description: default: the docstring.
        version: default: the MD5 of the source file (None without a file).
        flow_run_name: a format template over the parameters (``"etl-{day:%A}"``) or a
            callable with no arguments returning a string; default: a random slug.
        retries: how many times to retry a failed run (default 0).
        retry_delay_seconds: seconds to wait before each retry (default 0; at most 1e7 s),
            on the clock.
        timeout_seconds: fail the run as ``TimedOut`` after this long (0/None: never; at
            most 1e7 s).
        validate_parameters: validate and coerce arguments from the type hints (pydantic).
        log_prints: send ``print`` inside the run to the run logger too.
        task_runner: where ``task.submit``/``task.map`` run (an instance or a class; default
            ``ThreadPoolTaskRunner()``); each flow run uses its own copy.
        on_completion, on_failure, on_cancellation, on_crashed, on_running: lists of
            ``hook(flow, flow_run, state)`` called on those states; a hook that raises is
            logged and never changes the run.

    Raises:
        ConfigurationError: an option is invalid (the message names it).
        ReservedArgumentError: the function has a parameter named ``return_state`` or
            ``wait_for``.
    """
    if fn is not None:
        return Flow(fn, **options)
    return lambda fn: Flow(fn, **options)
