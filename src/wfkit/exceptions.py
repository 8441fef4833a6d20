"""The errors wfkit raises.

Every message says what was wrong, shows the offending value with ``!r`` and says what
to do about it.

::

    WfkitError
     ├── ParameterBindError        (also TypeError)   arguments do not fit the signature
     ├── ParameterTypeError                           arguments failed validation
     ├── ReservedArgumentError                        a parameter uses a reserved name
     ├── MissingContextError                          run-only API used outside a run
     ├── UpstreamTaskError                            an upstream task did not complete
     ├── FlowRunTimeoutError       (also TimeoutError)
     ├── TaskRunTimeoutError       (also TimeoutError)
     ├── ConfigurationError        (also ValueError)  bad option, setting or URL
     ├── StoreError                                   the run store cannot be used
     ├── MissingExtraError         (also ImportError) an optional extra is not installed
     ├── SerializationError        (also TypeError)   a task run's value cannot go to another process
     ├── MappingLengthMismatch     (also ValueError)  task.map over unequal iterables
     ├── MappingMissingIterable    (also ValueError)  task.map with nothing to map over
     ├── FailedRun                                    result() of a failed run with no exception
     └── UnfinishedRun                                result() of a run that has not finished
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "FailedRun",
    "FlowRunTimeoutError",
    "MappingLengthMismatch",
    "MappingMissingIterable",
    "MissingContextError",
    "MissingExtraError",
    "ParameterBindError",
    "ParameterTypeError",
    "ReservedArgumentError",
    "SerializationError",
    "StoreError",
    "TaskRunTimeoutError",
    "UnfinishedRun",
    "UpstreamTaskError",
    "WfkitError",
]


class WfkitError(Exception):
    """Base class of every error wfkit raises on purpose."""


class ParameterBindError(WfkitError, TypeError):
    """The call's arguments do not match the function's signature; no run was created."""


class ParameterTypeError(WfkitError):
    """The call's arguments failed validation; a Failed run was recorded."""


class ReservedArgumentError(WfkitError, TypeError):
    """A decorated function uses a parameter name wfkit reserves (``return_state``, ``wait_for``)."""


class MissingContextError(WfkitError, RuntimeError):
    """An API that needs a running flow or task was used outside of one."""


class UpstreamTaskError(WfkitError):
    """A task could not start because an upstream task did not complete."""


class FlowRunTimeoutError(WfkitError, TimeoutError):
    """A flow run exceeded its ``timeout_seconds``."""


class TaskRunTimeoutError(WfkitError, TimeoutError):
    """A task run exceeded its ``timeout_seconds``."""


class ConfigurationError(WfkitError, ValueError):
    """A decorator option, setting or store URL is invalid."""


class StoreError(WfkitError):
    """The run store cannot be opened, read or written safely."""


class MissingExtraError(WfkitError, ImportError):
    """A feature needs an optional extra that is not installed."""


class SerializationError(WfkitError, TypeError):
    """An argument or result of a task run cannot be serialized to go to, or come back
    from, another process (a process pool's, a cluster's worker); the run is recorded
    Failed (its values are at fault, not the infrastructure)."""


class MappingLengthMismatch(WfkitError, ValueError):
    """``task.map`` was given iterables of different lengths."""


class MappingMissingIterable(WfkitError, ValueError):
    """``task.map`` was given no iterable to map over."""


class FailedRun(WfkitError):
    """``result()`` was asked of a failed run whose state carries no exception."""


class UnfinishedRun(WfkitError):
    """``result()`` was asked of a run that has not reached a final state."""
