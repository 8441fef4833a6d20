"""wfkit: workflows from plain Python functions.

``@flow`` and ``@task`` with Prefect 3's write-and-run API; every run is recorded in an
embedded store, and every behaviour can be tested in-process with a fake clock.
"""

from wfkit._annotations import allow_failure, quote, unmapped
from wfkit._plugins import register_plugin
from wfkit._version import __version__
from wfkit.context import tags
from wfkit.flows import Flow, flow
from wfkit.hookspecs import hookimpl
from wfkit.logging import get_run_logger
from wfkit.states import State
from wfkit.tasks import Task, task

__all__ = [
    "Flow",
    "State",
    "Task",
    "__version__",
    "allow_failure",
    "flow",
    "get_run_logger",
    "hookimpl",
    "quote",
    "register_plugin",
    "tags",
    "task",
    "unmapped",
]
