"""Live runs: the engine's mutable view of one flow run or task run.

A live run holds what the lifecycle changes (state, run count) and publishes every state
change as an immutable snapshot through the plugin hooks; the store writer is one of the
plugins listening. Nothing here keeps a state history: the store does.
"""

from __future__ import annotations

import itertools
import os
from types import MappingProxyType
from typing import Any

from wfkit._plugins import publish_state_change
from wfkit.clock import Clock
from wfkit.states import State
from wfkit.stores import FlowRunSnapshot, TaskRunSnapshot

__all__ = ["FlowRunLive", "TaskRunLive", "new_run_id"]


def _host_name() -> str:
    # os.uname() gives what socket.gethostname() gives, without importing socket (~3 ms of a
    # script's first flow call).
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket  # (lazy: Windows only; socket costs ~3 ms)

    return socket.gethostname()


_HOST = _host_name()
_pid = os.getpid()


def _new_prefix() -> str:
    """The first 20 hex digits of this process's run ids: 72 random bits around the UUID
    version (8: custom) and variant (10) digits, as ``xxxxxxxx-xxxx-8xxx-8xxx-``."""
    h = os.urandom(9).hex()
    return f"{h[:8]}-{h[8:12]}-8{h[12:15]}-8{h[15:18]}-"


_prefix = _new_prefix()
_sequence = itertools.count()  # next() is atomic: threads never share a number


def _after_fork() -> None:  # a forked child is a new process: new prefix (and pid)
    global _pid, _prefix, _sequence
    _pid, _prefix, _sequence = os.getpid(), _new_prefix(), itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def new_run_id() -> str:
    """A new run id: a UUID string made of this process's random prefix and a counter.

    Unique (72 random bits per process, then a 48-bit counter: 2**48 runs would take one
    process years), and increasing within a process, so that the stores' id indexes grow at
    their end instead of at random places (random version-4 ids made SQLite inserts about a
    third slower).
    """
    return f"{_prefix}{next(_sequence):012x}"


class _LiveRun:
    __slots__ = (
        "id", "name", "parameters", "tags", "run_count", "state", "clock", "pid", "handed_back",
    )  # fmt: skip

    hook_name = ""  # the hook a state change is published on

    def __init__(
        self, name: str, parameters: dict[str, Any], tags: tuple[str, ...], clock: Clock
    ) -> None:
        # ``parameters`` is handed over: the caller built it for this run and keeps no alias.
        self.id = new_run_id()
        self.name = name
        self.parameters = MappingProxyType(parameters)
        self.tags = tags
        self.run_count = 0
        self.state: State | None = None
        self.clock = clock
        self.pid = _pid
        # ``(value,)`` when the call hands ``value`` back whatever the final state: the State
        # a task returned, or the collection of states a flow returned (as in Prefect).
        self.handed_back: tuple[Any] | None = None

    def set_state(self, new: State) -> State:
        """Enter ``new`` (stamped with the clock's time) and publish the change (the
        drivers call this for each state the lifecycle yields)."""
        new.timestamp = self.clock.now()
        old, self.state = self.state, new
        publish_state_change(self.hook_name, self.snapshot(), old, new)
        return new

    def snapshot(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


class FlowRunLive(_LiveRun):
    """A flow run in progress."""

    __slots__ = (
        "flow_name",
        "flow_version",
        "parent_flow_run_id",
        "parent_task_run_id",
        "root_flow_run_id",
        "scheduled_start_time",
        "flow_path",
    )
    hook_name = "wfkit_flow_run_state_changed"
    root_flow_run_id: str

    def __init__(
        self,
        *,
        name: str,
        flow_name: str,
        flow_version: str | None,
        parameters: dict[str, Any],
        tags: tuple[str, ...],
        clock: Clock,
        parent: FlowRunLive | None,
        parent_task_run_id: str | None,
        flow_path: str | None = None,
    ) -> None:
        super().__init__(name, parameters, tags, clock)
        self.flow_path = flow_path
        self.flow_name = flow_name
        self.flow_version = flow_version
        self.parent_flow_run_id = parent.id if parent else None
        self.root_flow_run_id = parent.root_flow_run_id if parent else self.id
        self.parent_task_run_id = parent_task_run_id
        self.scheduled_start_time = clock.now()

    def snapshot(self) -> FlowRunSnapshot:
        return FlowRunSnapshot(
            self.id,
            self.name,
            self.flow_name,
            self.flow_version,
            self.parameters,
            self.tags,
            self.parent_flow_run_id,
            self.parent_task_run_id,
            self.root_flow_run_id,
            self.run_count,
            self.state,  # type: ignore[arg-type]  # set before any snapshot
            _HOST,
            self.pid,
            self.flow_path,
        )


class TaskRunLive(_LiveRun):
    """A task run in progress."""

    __slots__ = ("task_name", "flow_run_id", "cache_key", "upstream_ids")
    hook_name = "wfkit_task_run_state_changed"

    def __init__(
        self,
        task_name: str,
        parameters: dict[str, Any],
        tags: tuple[str, ...],
        clock: Clock,
        flow_run_id: str | None,
        upstream_ids: tuple[str, ...] = (),
    ) -> None:
        """A task run, named later (naming may need the run's context)."""
        super().__init__("", parameters, tags, clock)
        self.task_name = task_name
        self.flow_run_id = flow_run_id
        self.cache_key: str | None = None
        self.upstream_ids = upstream_ids

    def snapshot(self) -> TaskRunSnapshot:
        # (_make: a NamedTuple's constructor from a tuple, without the keyword handling of
        # its Python-level __new__; every state change of every task run makes a snapshot)
        return TaskRunSnapshot._make(
            (
                self.id,
                self.name,
                self.task_name,
                self.flow_run_id,
                self.parameters,
                self.tags,
                self.cache_key,
                self.upstream_ids,
                self.run_count,
                self.state,
                _HOST,
                self.pid,
            ),
        )
