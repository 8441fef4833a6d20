"""Task inputs that are futures: finding them, waiting for them, and replacing them by
their results (``allow_failure`` / ``quote`` / ``wait_for`` semantics), and settling the
futures a flow returns."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from wfkit._annotations import BaseAnnotation, allow_failure, quote, unmapped
from wfkit.exceptions import ConfigurationError, UpstreamTaskError
from wfkit.futures import WfFuture

__all__ = [
    "Upstream",
    "find_upstream",
    "is_mappable",
    "looked_through",
    "recorded_value",
    "settle_returned",
]

_CONTAINERS = (list, tuple, set, frozenset)
_PLAIN = frozenset({int, float, str, bytes, bool, type(None), complex})

# Containers that a caller found free of futures and annotations, skipped (by identity)
# by find_upstream: task.map passes the same unmapped objects to every run it prepares.
_looked_through: ContextVar[tuple[Any, ...]] = ContextVar("wfkit_looked_through", default=())


@contextmanager
def looked_through(values: Iterable[Any]) -> Iterator[None]:
    """Within the block, :func:`find_upstream` does not walk those of ``values`` that are
    containers holding no future or annotation: they are looked through once, here, instead
    of once per run."""
    plain = tuple(
        v for v in values if isinstance(v, (dict, *_CONTAINERS)) and not _walk(v, False, [])
    )
    token = _looked_through.set(_looked_through.get() + plain)
    try:
        yield
    finally:
        _looked_through.reset(token)


def _walk(value: Any, allowed: bool, found: list[tuple[WfFuture, bool]]) -> bool:
    """Collect futures in ``value`` (with whether their failure is allowed); return True
    if anything needs replacing (a future or an annotation)."""
    if isinstance(value, WfFuture):
        found.append((value, allowed))
        return True
    if isinstance(value, quote):
        return True
    if isinstance(value, allow_failure):
        _walk(value.value, True, found)
        return True
    if isinstance(value, BaseAnnotation):
        _walk(value.value, allowed, found)
        return True
    if isinstance(value, dict):
        return any([_walk(v, allowed, found) for v in value.values()])
    if isinstance(value, _CONTAINERS):
        return any([_walk(v, allowed, found) for v in value])
    return False


def _resolve(value: Any, allowed: bool = False) -> Any:
    """``value`` with futures replaced by their results (by their exceptions where failure
    is allowed) and annotations unwrapped."""
    if isinstance(value, WfFuture):
        return value.result(raise_on_failure=not allowed)
    if isinstance(value, quote):
        return value.value
    if isinstance(value, allow_failure):
        return _resolve(value.value, True)
    if isinstance(value, BaseAnnotation):
        return _resolve(value.value, allowed)
    if isinstance(value, dict):
        return {k: _resolve(v, allowed) for k, v in value.items()}
    if isinstance(value, _CONTAINERS):
        items = [_resolve(v, allowed) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def recorded_value(value: Any) -> Any:
    """What a task run records as a parameter: futures become a short reference (so the
    record does not keep the upstream result alive)."""
    if isinstance(value, WfFuture):
        return f"<future of task run {value.task_run_id}>"
    if isinstance(value, BaseAnnotation):
        return recorded_value(value.value)
    if isinstance(value, dict):
        return {k: recorded_value(v) for k, v in value.items()}
    if isinstance(value, _CONTAINERS):
        items = [recorded_value(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


class Upstream:
    """The futures a task run depends on (arguments and ``wait_for``), and how to turn its
    arguments into plain values once they are done."""

    __slots__ = ("bound", "futures", "clock")

    def __init__(self, bound: Any, futures: list[tuple[WfFuture, bool]], clock: Any) -> None:
        self.bound = bound
        self.futures = futures
        self.clock = clock

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.task_run_id for f, _ in self.futures))

    def wait_sync(self) -> UpstreamTaskError | None:
        for future, _ in self.futures:
            future.wait()
        return self._settle()

    async def wait_async(self) -> UpstreamTaskError | None:
        for future, _ in self.futures:
            await future
        return self._settle()

    def _settle(self) -> UpstreamTaskError | None:
        """Check the upstream states; replace the arguments by their values."""
        for future, allowed in self.futures:
            state = future.state  # (waiting moved this run's time to when it finished)
            if not allowed and not state.is_completed():
                return UpstreamTaskError(
                    f"Upstream task run {future._name!r} ({future.task_run_id}) did not "
                    f"complete: it ended {state.name}. Wrap it in allow_failure(...) to run "
                    "this task anyway."
                )
        arguments = self.bound.arguments
        for name, value in list(arguments.items()):
            arguments[name] = _resolve(value)
        return None


def find_upstream(
    bound: Any, wait_for: Iterable[Any] | None, flow_run_id: str | None, clock: Any
) -> Upstream | None:
    """The task's Upstream, or None when its arguments hold no future or annotation."""
    values = bound.arguments.values()
    if not wait_for and _PLAIN.issuperset(map(type, values)):
        return None  # the common case: nothing to look into
    skipped = _looked_through.get()
    if skipped:
        values = [v for v in values if not any(v is s for s in skipped)]
    found: list[tuple[WfFuture, bool]] = []
    needs = _walk(list(values), False, found)
    for item in wait_for or ():
        if isinstance(item, allow_failure) and isinstance(item.value, WfFuture):
            found.append((item.value, True))
        elif isinstance(item, WfFuture):
            found.append((item, False))
        else:
            raise ConfigurationError(
                f"wait_for={list(wait_for or ())!r} may hold only futures (from task.submit or "
                f"task.map), optionally wrapped in allow_failure(); got {item!r}."
            )
    for future, _ in found:
        if future.flow_run_id != flow_run_id:
            raise ConfigurationError(
                f"future {future!r} belongs to flow run {future.flow_run_id}, not to the current "
                f"one ({flow_run_id}). Pass its value (future.result()) instead of the future."
            )
    if not needs and not found:
        return None
    return Upstream(bound, found, clock)


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


def settle_returned(value: Any) -> Any:
    """What a flow returned, with futures (at any depth of lists, tuples, sets and dict
    values) waited for: a completed future becomes its result, one that did not complete
    becomes its final State (which fails the flow)."""
    if isinstance(value, WfFuture):
        value.wait()
        state = value.state
        return state.result() if state.is_completed() else state
    if isinstance(value, dict):
        return {k: settle_returned(v) for k, v in value.items()} if _holds_futures(value) else value
    if isinstance(value, _CONTAINERS) and _holds_futures(value):
        items = [settle_returned(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def _holds_futures(value: Any) -> bool:
    found: list[tuple[WfFuture, bool]] = []
    _walk(value, False, found)
    return bool(found)
