"""Task inputs that are futures or states: finding them (also in lists, tuples, sets, dict
values and dataclass fields), waiting for them, and replacing them by their results
(``allow_failure`` / ``quote`` / ``opaque`` / ``wait_for`` semantics, as in Prefect); and
settling what a flow returns."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import GeneratorType
from typing import Any

from wfkit._annotations import BaseAnnotation, allow_failure, opaque, quote, unmapped
from wfkit._engine.lifecycle import ReturnedStates
from wfkit.exceptions import ConfigurationError, UpstreamTaskError
from wfkit.futures import WfFuture
from wfkit.states import State

__all__ = [
    "Upstream",
    "consume_generator",
    "find_upstream",
    "is_mappable",
    "looked_through",
    "recorded_value",
    "settle_returned",
]

_CONTAINERS = (list, tuple, set, frozenset)
# What stands for an upstream run's outcome in a task's arguments: a future, or a State (a
# ``return_state=True`` call's), replaced by its result as in Prefect.
_OUTCOMES = (WfFuture, State)
_PLAIN = frozenset({int, float, str, bytes, bool, type(None), complex})

# Containers that a caller found free of futures and annotations, skipped (by identity)
# by find_upstream: task.map passes the same unmapped objects to every run it prepares.
_looked_through: ContextVar[tuple[Any, ...]] = ContextVar("wfkit_looked_through", default=())


@contextmanager
def looked_through(values: Iterable[Any]) -> Iterator[None]:
    """Within the block, :func:`find_upstream` does not walk those of ``values`` that are
    containers holding no future or annotation: they are looked through once, here, instead
    of once per run."""
    plain = tuple(v for v in values if isinstance(v, (dict, *_CONTAINERS)) and _is_plain(v))
    token = _looked_through.set(_looked_through.get() + plain)
    try:
        yield
    finally:
        _looked_through.reset(token)


# How deep find_upstream looks into a task's arguments (lists in lists...): each level is a
# Python call, and Python stops at ~1,000 frames (RecursionError). 100 levels is far past
# real data; a value nested deeper is refused with an error naming the parameter, and a value
# that contains itself (it would be "infinitely deep") is passed as it is, not looked into.
MAX_DEPTH = 100


class _TooDeep(Exception):
    """_walk went past MAX_DEPTH levels."""


def _is_plain(value: Any) -> bool:
    """Whether ``value`` holds no future or annotation (False when too deep to tell)."""
    try:
        return not _walk(value, False, [])
    except _TooDeep:
        return False


def _is_dataclass_instance(value: Any) -> bool:
    # (dataclasses.is_dataclass, for instances only: a dataclass's class has no fields to
    # look into)
    return hasattr(type(value), "__dataclass_fields__")


def _walk(value: Any, allowed: bool, found: list[tuple[Any, bool]], depth: int = 0) -> bool:
    """Collect futures and states in ``value`` (with whether their failure is allowed);
    return True if anything needs replacing (a future, a state or an annotation). Raises
    _TooDeep past MAX_DEPTH levels."""
    if isinstance(value, _OUTCOMES):
        found.append((value, allowed))
        return True
    if isinstance(value, quote):
        return True
    if depth >= MAX_DEPTH:
        raise _TooDeep
    if isinstance(value, allow_failure):
        _walk(value.value, True, found, depth + 1)
        return True
    if isinstance(value, opaque):  # the future itself is resolved, nothing inside is looked at
        if isinstance(value.value, _OUTCOMES):
            found.append((value.value, allowed))
        return True
    if isinstance(value, BaseAnnotation):
        _walk(value.value, allowed, found, depth + 1)
        return True
    if isinstance(value, dict):
        return any([_walk(v, allowed, found, depth + 1) for v in value.values()])
    if isinstance(value, _CONTAINERS):
        return any([_walk(v, allowed, found, depth + 1) for v in value])
    if _is_dataclass_instance(value):
        fields = dataclasses.fields(value)
        return any([_walk(getattr(value, f.name), allowed, found, depth + 1) for f in fields])
    return False


def _children(value: Any) -> Iterable[Any] | None:
    """What _walk looks into inside ``value`` (None: nothing, it is a leaf)."""
    if isinstance(value, dict):
        return value.values()
    if isinstance(value, _CONTAINERS):
        return value
    if isinstance(value, BaseAnnotation) and not isinstance(value, (quote, opaque)):
        return (value.value,)
    if _is_dataclass_instance(value):
        return [getattr(value, f.name) for f in dataclasses.fields(value)]
    return None


def _contains_itself(value: Any) -> bool:
    """Whether ``value`` reaches itself, or a container on the way reaches itself (a depth-
    first search without recursion, keeping the containers on the current path)."""
    children = _children(value)
    if children is None:
        return False
    path = {id(value)}
    stack: list[tuple[Any, Iterator[Any]]] = [(value, iter(children))]
    while stack:
        node, pending = stack[-1]
        for child in pending:
            grandchildren = _children(child)
            if grandchildren is None:
                continue
            if id(child) in path:
                return True
            path.add(id(child))
            stack.append((child, iter(grandchildren)))
            break
        else:
            stack.pop()
            path.discard(id(node))
    return False


def _scan_parameter(name: str, value: Any, found: list[tuple[Any, bool]]) -> bool | None:
    """_walk over one argument; None when it contains itself (it is then not looked into).

    Raises:
        ConfigurationError: the argument is nested deeper than MAX_DEPTH levels.
    """
    before = len(found)
    try:
        return _walk(value, False, found)
    except _TooDeep:
        del found[before:]
        if _contains_itself(value):
            return None
        raise ConfigurationError(
            f"parameter {name!r} (a {type(value).__name__}) is nested more than {MAX_DEPTH} "
            "levels deep: wfkit looks through a task's arguments for futures, and stops "
            f"there. Flatten it, or pass quote({name}) to hand it over without looking into "
            "it."
        ) from None


def _resolve(value: Any, allowed: bool = False) -> Any:
    """``value`` with futures and states replaced by their results (by their exceptions
    where failure is allowed) and annotations unwrapped."""
    if isinstance(value, _OUTCOMES):
        return value.result(raise_on_failure=not allowed)
    if isinstance(value, quote):
        return value.value
    if isinstance(value, allow_failure):
        return _resolve(value.value, True)
    if isinstance(value, opaque):
        inner = value.value
        return inner.result(raise_on_failure=not allowed) if isinstance(inner, _OUTCOMES) else inner
    if isinstance(value, BaseAnnotation):
        return _resolve(value.value, allowed)
    if isinstance(value, dict):
        return {k: _resolve(v, allowed) for k, v in value.items()}
    if isinstance(value, _CONTAINERS):
        items = [_resolve(v, allowed) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if _is_dataclass_instance(value):
        return _resolved_dataclass(value, allowed)
    return value


def _resolved_dataclass(value: Any, allowed: bool) -> Any:
    """A dataclass instance with its fields resolved: itself if no field changed, else a
    copy made with ``dataclasses.replace`` (which runs ``__post_init__`` again, as in
    Prefect); a changed field that ``__init__`` does not take is set on the copy."""
    changed = {}
    for field in dataclasses.fields(value):
        old = getattr(value, field.name)
        new = _resolve(old, allowed)
        if new is not old:
            changed[field.name] = (field.init, new)
    if not changed:
        return value
    copy = dataclasses.replace(value, **{k: v for k, (init, v) in changed.items() if init})
    for name, (init, new) in changed.items():
        if not init:
            object.__setattr__(copy, name, new)  # (works for frozen dataclasses too)
    return copy


def recorded_value(value: Any) -> Any:
    """What a task run records as a parameter: futures become a short reference (so the
    record does not keep the upstream result alive). A value that contains itself (the
    only kind past MAX_DEPTH levels here: find_upstream refused deeper ones) is recorded
    as it is, and the store records its repr."""
    try:
        return _recorded(value, 0)
    except _TooDeep:
        return value


def _recorded(value: Any, depth: int) -> Any:
    if isinstance(value, WfFuture):
        return f"<future of task run {value.task_run_id}>"
    if isinstance(value, State):
        return f"<{value.name} state>"
    if depth >= MAX_DEPTH:
        raise _TooDeep
    if isinstance(value, BaseAnnotation):
        return _recorded(value.value, depth + 1)
    if isinstance(value, dict):
        return {k: _recorded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, _CONTAINERS):
        items = [_recorded(v, depth + 1) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if _is_dataclass_instance(value) and _holds_outcomes(value):
        fields = ", ".join(
            f"{f.name}={_recorded(getattr(value, f.name), depth + 1)!r}"
            for f in dataclasses.fields(value)
        )
        return f"{type(value).__name__}({fields})"
    return value


class Upstream:
    """The futures and states a task run depends on (arguments and ``wait_for``), and how
    to turn its arguments into plain values once they are done."""

    __slots__ = ("bound", "futures", "clock", "opaque")

    def __init__(
        self,
        bound: Any,
        futures: list[tuple[Any, bool]],
        clock: Any,
        opaque: frozenset[str] = frozenset(),
    ) -> None:
        self.bound = bound
        self.futures = futures  # (WfFuture or State, whether its failure is allowed)
        self.clock = clock
        self.opaque = opaque  # arguments that contain themselves: passed as they are

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(f.task_run_id for f, _ in self.futures if isinstance(f, WfFuture))
        )

    def wait_sync(self) -> UpstreamTaskError | None:
        for future, _ in self.futures:
            if isinstance(future, WfFuture):
                future.wait()
        return self._settle()

    async def wait_async(self) -> UpstreamTaskError | None:
        for future, _ in self.futures:
            if isinstance(future, WfFuture):
                await future
        return self._settle()

    def _settle(self) -> UpstreamTaskError | None:
        """Check the upstream states; replace the arguments by their values."""
        for future, allowed in self.futures:
            if isinstance(future, State):
                if not allowed and not future.is_completed():
                    return UpstreamTaskError(
                        f"A {future.name} state was passed as an argument: its run did not "
                        "complete. Wrap it in allow_failure(...) to run this task anyway."
                    )
                continue
            state = future.state  # (waiting moved this run's time to when it finished)
            if not allowed and not state.is_completed():
                return UpstreamTaskError(
                    f"Upstream task run {future._name!r} ({future.task_run_id}) did not "
                    f"complete: it ended {state.name}. Wrap it in allow_failure(...) to run "
                    "this task anyway."
                )
        arguments, opaque = self.bound.arguments, self.opaque
        for name, value in list(arguments.items()):
            if name not in opaque:
                arguments[name] = _resolve(value)
        return None


def find_upstream(
    bound: Any, wait_for: Iterable[Any] | None, flow_run_id: str | None, clock: Any
) -> Upstream | None:
    """The task's Upstream, or None when its arguments hold no future or annotation."""
    arguments = bound.arguments
    if not wait_for and _PLAIN.issuperset(map(type, arguments.values())):
        return None  # the common case: nothing to look into
    skipped = _looked_through.get()
    found: list[tuple[Any, bool]] = []
    needs = False
    opaque: list[str] = []
    for name, value in arguments.items():
        if skipped and any(value is s for s in skipped):
            continue
        needs_it = _scan_parameter(name, value, found)
        if needs_it is None:
            opaque.append(name)
        needs = needs or bool(needs_it)
    if isinstance(wait_for, (*_OUTCOMES, allow_failure)):
        wait_for = [wait_for]
    for item in wait_for or ():
        if isinstance(item, allow_failure) and isinstance(item.value, _OUTCOMES):
            found.append((item.value, True))
        elif isinstance(item, _OUTCOMES):
            found.append((item, False))
        # Anything else (a result, an exception, None) orders nothing: ignored, as in Prefect.
    for future, _ in found:
        if isinstance(future, WfFuture) and future.flow_run_id != flow_run_id:
            raise ConfigurationError(
                f"future {future!r} belongs to flow run {future.flow_run_id}, not to the current "
                f"one ({flow_run_id}). Pass its value (future.result()) instead of the future."
            )
    if not needs and not found:
        return None
    return Upstream(bound, found, clock, frozenset(opaque))


def is_mappable(value: Any) -> bool:
    """Whether ``task.map`` maps over ``value``: any iterable except strings, bytes and IO
    objects (as in Prefect), and not wrapped in ``unmapped``."""
    if isinstance(value, (str, bytes, bytearray, io.IOBase, unmapped)):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def consume_generator(value: Any) -> Any:
    """What a flow returned, a generator consumed into a list (a generator is not a result
    that can be kept or recorded; Prefect does the same)."""
    return list(value) if isinstance(value, GeneratorType) else value


def settle_returned(value: Any) -> Any:
    """What a flow returned, with futures (at any depth of lists, tuples, sets and dict
    values) waited for: a completed future becomes its result, one that did not complete
    becomes its final State. A list, tuple or set made entirely of futures and states comes
    back as :class:`~wfkit._engine.lifecycle.ReturnedStates`: those states decide the
    flow's final state (Prefect's rule); other nested futures do not."""
    if isinstance(value, WfFuture):
        return _settled(value)
    if (
        isinstance(value, (list, tuple, set))
        and value
        and all(isinstance(v, _OUTCOMES) for v in value)
        and any(isinstance(v, WfFuture) for v in value)
    ):
        items = [_settled(v) if isinstance(v, WfFuture) else v for v in value]
        states = tuple(v.state if isinstance(v, WfFuture) else v for v in value)
        rebuilt = type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
        return ReturnedStates(rebuilt, states)
    return _settle_nested(value)


def _settle_nested(value: Any) -> Any:
    if isinstance(value, WfFuture):
        return _settled(value)
    if isinstance(value, dict):
        return {k: _settle_nested(v) for k, v in value.items()} if _holds_futures(value) else value
    if isinstance(value, _CONTAINERS) and _holds_futures(value):
        items = [_settle_nested(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def _settled(future: WfFuture) -> Any:
    """A returned future, waited for: its result if it completed, else its final state."""
    future.wait()
    state = future.state
    return state.result() if state.is_completed() else state


def _holds_futures(value: Any) -> bool:
    found: list[tuple[Any, bool]] = []
    try:
        _walk(value, False, found)
    except _TooDeep:  # a value this deep (or containing itself) is returned as it is
        return False
    return any(isinstance(f, WfFuture) for f, _ in found)


def _holds_outcomes(value: Any) -> bool:
    """Whether ``value`` holds a future or a state (False when too deep to tell)."""
    found: list[tuple[Any, bool]] = []
    try:
        _walk(value, False, found)
    except _TooDeep:
        return False
    return bool(found)
