"""Decorator options: their static types, and their validation at decoration time with
messages that name the option.

The types are :class:`CommonOptionKwargs` (what ``@flow(...)`` and ``@task(...)`` share; each
module extends it) and :data:`RunNameOption`: type checkers read them, the checks below
enforce them at run time.

These checks are a handful of type and range tests, written out here rather than with
pydantic so that decorating a function does not import pydantic (a script with ``@flow``
starts in tens of milliseconds). Each returns the normalised value or raises
:class:`~wfkit.exceptions.ConfigurationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from numbers import Real
from typing import Any, Protocol, TypeAlias, TypedDict

from wfkit.exceptions import ConfigurationError

MAX_DELAYS = 50
# The longest timeout or retry delay accepted: 10**7 s, about 116 days. Past ~9.2e9 s
# (``threading.TIMEOUT_MAX``) a lock or event wait raises OverflowError, and a fixed deadline
# that far out is almost always a unit mistake (milliseconds given as seconds); "no timeout"
# is written None or 0. A bound well inside every limit also leaves room for the jitter.
MAX_SECONDS = 1e7
# The largest retry_jitter_factor: a delay is drawn in ``delay * (1 +- factor)``; beyond a
# few times the delay the "jitter" is noise, and 1e308 made the product infinite.
MAX_JITTER_FACTOR = 100.0


class RunNameFromParameters(Protocol):
    """A run-name callable that receives the run's parameters: ``f(parameters=...) -> str``."""

    def __call__(self, *, parameters: dict[str, Any]) -> str: ...


# ``flow_run_name``/``task_run_name``: a format template over the parameters, or a callable
# with no arguments or with a ``parameters`` argument (see check_run_name).
RunNameOption: TypeAlias = "str | Callable[[], str] | RunNameFromParameters | None"


class CommonOptionKwargs(TypedDict, total=False):
    """The keyword options ``@flow(...)`` and ``@task(...)`` share, with their types (None
    means the default, except for a flow's ``version``: no version)."""

    name: str | None
    description: str | None
    version: str | None
    retries: int | None
    timeout_seconds: float | timedelta | None
    log_prints: bool | None


def _fail(owner: str, argument: str, value: Any, expected: str) -> ConfigurationError:
    return ConfigurationError(f"{argument}={value!r} is invalid for {owner}: {expected}.")


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_name(value: Any, owner: str, argument: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(owner, argument, value, "it must be a non-empty string")
    return value


def check_optional_str(value: Any, owner: str, argument: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail(owner, argument, value, "it must be a string or None")
    return value


def check_retries(value: Any, owner: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(owner, "retries", value, "it must be a whole number >= 0 (0 means no retries)")
    return value


def check_seconds(value: Any, owner: str, argument: str, maximum: float = MAX_SECONDS) -> float:
    """``value`` (a number or a timedelta) as seconds, finite and within 0..``maximum``."""
    given = value
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if not _is_number(value) or not 0 <= value <= maximum:  # (False for NaN too)
        raise _fail(
            owner,
            argument,
            given,
            f"it must be a number of seconds from 0 to {maximum:g}"
            + (" (about 116 days)" if maximum == MAX_SECONDS else ""),
        )
    return float(value)


def check_timeout(value: Any, owner: str) -> float | None:
    if value is None:
        return None
    seconds = check_seconds(value, owner, "timeout_seconds")
    return seconds or None  # 0 means no timeout


def check_delay_list(
    value: Any, owner: str, argument: str = "retry_delay_seconds"
) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _fail(owner, argument, value, "it must be a list of numbers of seconds")
    items = list(value)
    if not items:
        raise _fail(owner, argument, value, "a list of delays must not be empty")
    if len(items) > MAX_DELAYS:
        raise _fail(
            owner,
            argument,
            f"<list of {len(items)} delays>",
            f"it can hold at most {MAX_DELAYS} delays (the last one repeats for later retries)",
        )
    return tuple(check_seconds(v, owner, f"{argument}[{i}]") for i, v in enumerate(items))


def check_task_delay(value: Any, owner: str) -> float | tuple[float, ...] | Callable[[int], Any]:
    if value is None:
        return 0.0
    if _is_number(value) or isinstance(value, timedelta):
        return check_seconds(value, owner, "retry_delay_seconds")
    if callable(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, (list, tuple)):
        return check_delay_list(value, owner)
    raise _fail(
        owner,
        "retry_delay_seconds",
        value,
        "it must be a number of seconds, a list of numbers, or a callable f(retries) -> list",
    )


def check_jitter(value: Any, owner: str) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not 0 <= value <= MAX_JITTER_FACTOR:  # (False for NaN too)
        raise _fail(
            owner,
            "retry_jitter_factor",
            value,
            f"it must be a number from 0 to {MAX_JITTER_FACTOR:g}, or None",
        )
    return float(value)


def check_optional_callable(value: Any, owner: str, argument: str) -> Callable[..., Any] | None:
    if value is not None and not callable(value):
        raise _fail(owner, argument, value, "it must be a callable or None")
    return value


def check_hooks(value: Any, owner: str, argument: str) -> tuple[Callable[..., Any], ...]:
    if value is None:
        return ()
    if callable(value) or not isinstance(value, Iterable) or isinstance(value, (str, bytes)):
        raise _fail(
            owner,
            argument,
            value,
            f"it must be a list of callables, e.g. {argument}=[my_hook]",
        )
    hooks = tuple(value)
    for i, hook in enumerate(hooks):
        if not callable(hook):
            raise _fail(
                owner,
                f"{argument}[{i}]",
                hook,
                "every hook must be a callable hook(flow_or_task, run, state)",
            )
    return hooks


def check_tags(value: Any, owner: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _fail(owner, "tags", value, "it must be a list of strings, e.g. tags=['etl']")
    tags = tuple(dict.fromkeys(value))
    for tag in tags:
        if not isinstance(tag, str):
            raise _fail(owner, "tags", value, "every tag must be a string")
    return tags


def check_bool(value: Any, owner: str, argument: str, *, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise _fail(
            owner, argument, value, "it must be True or False" + (" or None" if optional else "")
        )
    return value


def check_run_name(value: Any, owner: str, argument: str) -> str | Callable[..., Any] | None:
    if value is None or callable(value):
        return value
    if not isinstance(value, str):
        raise _fail(owner, argument, value, "it must be a format string, a callable or None")
    return value
