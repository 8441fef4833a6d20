"""Run states: what a flow or task run is doing, and what came of it.

A :class:`State` is a small value: a :class:`StateType`, a display ``name`` (``"Retrying"`` is
a ``RUNNING`` state, ``"Cached"`` a ``COMPLETED`` one), a ``timestamp`` taken from the clock,
an optional ``message``, and either the run's result or its exception. The functions named
after states (:func:`Completed`, :func:`Failed`, ...) construct them, as in Prefect.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, overload

from wfkit.exceptions import FailedRun, UnfinishedRun

__all__ = [
    "AwaitingRetry",
    "Cached",
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "NotReady",
    "Paused",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "TimedOut",
]


class StateType(enum.StrEnum):
    """The kind of a state; several named states share one type."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"
    CANCELLING = "CANCELLING"
    PAUSED = "PAUSED"


# The members as module constants, for the code below: reading an attribute of an Enum class
# goes through its metaclass's __getattr__ hook, about ten times slower than reading a global
# (CPython 3.11), and every state change reads some.
_SCHEDULED = StateType.SCHEDULED
_PENDING = StateType.PENDING
_RUNNING = StateType.RUNNING
_COMPLETED = StateType.COMPLETED
_FAILED = StateType.FAILED
_CRASHED = StateType.CRASHED
_CANCELLED = StateType.CANCELLED
_CANCELLING = StateType.CANCELLING
_PAUSED = StateType.PAUSED
FINAL_TYPES = frozenset({_COMPLETED, _FAILED, _CRASHED, _CANCELLED})
_UNSET: Any = object()

# What the run returns. Its default, Any (PEP 696), keeps a bare ``State`` annotation and a
# state built without ``data`` meaning ``State[Any]``, under --strict too. ``typing`` has
# defaults from Python 3.13 only; type checkers read typing_extensions' bundled stub (it is
# not imported at run time).
if TYPE_CHECKING:
    from typing_extensions import TypeVar

    R = TypeVar("R", default=Any)
else:
    from typing import TypeVar

    R = TypeVar("R")


# (Generic adds no __init__, no __new__ and no instance field: building a state, which
# happens several times per task run, costs what it did before.)
class State(Generic[R]):
    """One state of a run; ``State[int]`` is a state of a run that returns an ``int``.

    Attributes:
        type: the :class:`StateType`.
        name: the display name (``"Completed"``, ``"Cached"``, ``"TimedOut"``, ...).
        timestamp: when the run entered the state, from the clock (timezone-aware UTC).
        message: a human-readable explanation, or ``None``.
        data: the run's return value for completed states, else ``None``.
        exception: the exception of a failed, crashed or cancelled run, else ``None``.
        scheduled_time: for ``AwaitingRetry``/``Scheduled``: when the run will resume.
        id: a unique id (a UUID string), as Prefect's states have.
    """

    # (``_id`` is set only when ``id`` is first read: most states are never asked for one)
    __slots__ = (
        "type", "name", "timestamp", "message", "data", "exception", "scheduled_time", "_id",
    )  # fmt: skip
    _id: str

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        *,
        timestamp: datetime | None = None,
        message: str | None = None,
        data: R | None = None,
        exception: BaseException | None = None,
        scheduled_time: datetime | None = None,
    ) -> None:
        self.type = type if type.__class__ is StateType else StateType(type)
        self.name = name if name is not None else _default_name(self.type)
        self.timestamp = timestamp
        self.message = message
        self.data = data
        self.exception = exception
        self.scheduled_time = scheduled_time

    @property
    def id(self) -> str:
        """This state's unique id: a random UUID string, made when first asked for (a copy
        has its own)."""
        try:
            return self._id
        except AttributeError:
            import uuid  # (lazy: ~2 ms of ``import wfkit``; few states are asked for an id)

            self._id = str(uuid.uuid4())
            return self._id

    # predicates -------------------------------------------------------------------------
    def is_scheduled(self) -> bool:
        return self.type is _SCHEDULED

    def is_pending(self) -> bool:
        return self.type is _PENDING

    def is_running(self) -> bool:
        return self.type is _RUNNING

    def is_completed(self) -> bool:
        return self.type is _COMPLETED

    def is_failed(self) -> bool:
        return self.type is _FAILED

    def is_crashed(self) -> bool:
        return self.type is _CRASHED

    def is_cancelled(self) -> bool:
        return self.type is _CANCELLED

    def is_cancelling(self) -> bool:
        return self.type is _CANCELLING

    def is_paused(self) -> bool:
        return self.type is _PAUSED

    def is_final(self) -> bool:
        return self.type in FINAL_TYPES

    # results ----------------------------------------------------------------------------
    @overload
    def result(self, raise_on_failure: Literal[True] = True) -> R: ...
    @overload
    def result(self, raise_on_failure: bool) -> R | BaseException: ...
    def result(self, raise_on_failure: bool = True) -> R | BaseException:
        """Return the run's result.

        Args:
            raise_on_failure: when the state is failed, crashed or cancelled, raise its
                exception (the default) instead of returning it.

        Returns:
            The result of a completed run; with ``raise_on_failure=False``, the exception of
            a run that did not complete.

        Raises:
            UnfinishedRun: the state is not final, so there is no result yet.
            FailedRun: the state failed without an exception (for example a flow whose
                returned futures did not all complete).
        """
        if self.type is _COMPLETED:
            return self.data  # type: ignore[return-value]  # (None only if R allows it)
        if self.type in FINAL_TYPES:
            exc = self.exception or FailedRun(
                f"The run ended in state {self.name!r}: {self.message or 'no message'}. "
                "Inspect the run's state history for the cause."
            )
            if raise_on_failure:
                raise exc
            return exc
        if self.exception is not None:  # NotReady: the run could not start
            if raise_on_failure:
                raise self.exception
            return self.exception
        raise UnfinishedRun(
            f"The run is in state {self.name!r} ({self.type.value}), which is not final, so it "
            "has no result yet. Wait for the run to finish before asking for its result."
        )

    def copy(self, **changes: Any) -> State[R]:
        """Return a copy with ``changes`` applied."""
        new: State[R] = State.__new__(State)
        for slot in _FIELDS:
            setattr(new, slot, changes.get(slot, getattr(self, slot)))
        return new

    def __repr__(self) -> str:
        parts = [f"type={self.type.value}"]
        if self.message:
            parts.insert(0, f"message={self.message!r}")
        if self.exception is not None:
            parts.append(f"exception={self.exception!r}")
        elif self.type is _COMPLETED and self.data is not None:
            text = repr(self.data)
            parts.append(f"result={text if len(text) <= 60 else text[:57] + '...'}")
        return f"{self.name}({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in _FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        # (its fields as a tuple: the default for a class with __slots__ goes through
        # copyreg's Python code and takes ~4x longer, and each remote task run's outcome
        # carries several states)
        return (
            _unpickle_state,
            (
                self.type._value_, self.name, self.timestamp, self.message, self.data,
                self.exception, self.scheduled_time, getattr(self, "_id", None),
            ),
        )  # fmt: skip


def _unpickle_state(type_value: str, *fields: Any) -> State:
    state: State = State.__new__(State)
    state.type = _TYPES[type_value]
    state.name, state.timestamp, state.message, state.data, state.exception = fields[:5]
    state.scheduled_time, state_id = fields[5:]
    if state_id is not None:
        state._id = state_id
    return state


_TYPES = {member.value: member for member in StateType}

# What a state is made of (its id aside: equal states may have different ids, and a copy
# gets one of its own).
_FIELDS = ("type", "name", "timestamp", "message", "data", "exception", "scheduled_time")


def _default_name(state_type: StateType) -> str:
    return state_type.value.title()


def Scheduled(**kwargs: Any) -> State:  # noqa: N802 - Prefect's constructor names
    """A run that will start at ``scheduled_time``."""
    return State(_SCHEDULED, kwargs.pop("name", "Scheduled"), **kwargs)


def Pending(**kwargs: Any) -> State:  # noqa: N802
    """A run that exists but has not started."""
    return State(_PENDING, kwargs.pop("name", "Pending"), **kwargs)


def Running(**kwargs: Any) -> State:  # noqa: N802
    """A run whose body is executing (first attempt)."""
    return State(_RUNNING, kwargs.pop("name", "Running"), **kwargs)


def Completed(**kwargs: Any) -> State:  # noqa: N802
    """A run that finished; ``data`` holds its result."""
    return State(_COMPLETED, kwargs.pop("name", "Completed"), **kwargs)


def Cached(**kwargs: Any) -> State:  # noqa: N802
    """A completed run whose result was restored from the cache without running the body."""
    return State(_COMPLETED, kwargs.pop("name", "Cached"), **kwargs)


def Failed(**kwargs: Any) -> State:  # noqa: N802
    """A run whose body raised (``exception``) or returned a failure."""
    return State(_FAILED, kwargs.pop("name", "Failed"), **kwargs)


def TimedOut(**kwargs: Any) -> State:  # noqa: N802
    """A failed run that exceeded its ``timeout_seconds``."""
    return State(_FAILED, kwargs.pop("name", "TimedOut"), **kwargs)


def Crashed(**kwargs: Any) -> State:  # noqa: N802
    """A run ended by something other than its own code: an interrupt or a dead process."""
    return State(_CRASHED, kwargs.pop("name", "Crashed"), **kwargs)


def Cancelled(**kwargs: Any) -> State:  # noqa: N802
    """A run that was cancelled."""
    return State(_CANCELLED, kwargs.pop("name", "Cancelled"), **kwargs)


def Cancelling(**kwargs: Any) -> State:  # noqa: N802
    """A run that is being cancelled."""
    return State(_CANCELLING, kwargs.pop("name", "Cancelling"), **kwargs)


def Paused(**kwargs: Any) -> State:  # noqa: N802
    """A run that is paused."""
    return State(_PAUSED, kwargs.pop("name", "Paused"), **kwargs)


def AwaitingRetry(**kwargs: Any) -> State:  # noqa: N802
    """A run waiting for its retry delay to pass (a ``SCHEDULED`` state)."""
    return State(_SCHEDULED, kwargs.pop("name", "AwaitingRetry"), **kwargs)


def Retrying(**kwargs: Any) -> State:  # noqa: N802
    """A run whose body is executing again after a failure (a ``RUNNING`` state)."""
    return State(_RUNNING, kwargs.pop("name", "Retrying"), **kwargs)


def NotReady(**kwargs: Any) -> State:  # noqa: N802
    """A run that could not start because an upstream run did not complete (``PENDING``)."""
    return State(_PENDING, kwargs.pop("name", "NotReady"), **kwargs)
