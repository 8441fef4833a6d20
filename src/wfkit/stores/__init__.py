"""Run stores: where flow runs, task runs, state histories and logs are recorded.

Choose one by URL:

- ``memory://``: this process only (tests, throwaway runs);
- ``sqlite:///path/to/file.db``: an embedded SQLite file (the default is
  ``sqlite:///$WFKIT_HOME/wfkit.db``);
- anything a plugin's ``wfkit_make_store(url)`` hook accepts.

``open_store(url=None)`` opens one; ``None`` opens the configured store (``WFKIT_STORE``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wfkit.exceptions import ConfigurationError
from wfkit.stores._base import CacheRecord, FlowRunSnapshot, LogEntry, RunStore, TaskRunSnapshot

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun

__all__ = [
    "CacheRecord",
    "FlowRun",
    "FlowRunSnapshot",
    "LogEntry",
    "LogRecord",
    "RunStore",
    "TaskRun",
    "TaskRunSnapshot",
    "open_store",
]

_KNOWN_SCHEMES = ("memory://", "sqlite:///")


def open_store(url: str | None = None) -> RunStore:
    """Open the run store at ``url``.

    ``None`` means the configured store (``WFKIT_STORE``, default the SQLite file in
    ``WFKIT_HOME``): the same store object the process's runs are recorded in, so what was
    just recorded is there to read (also for a configured ``memory://`` store). An explicit
    URL opens a new store object each call (``"memory://"``: a new, empty store).

    Raises:
        ConfigurationError: the URL's scheme is unknown and no plugin accepts it.
        StoreError: the store exists but cannot be used (corrupt, too new a schema).
    """
    if url is None:
        from wfkit.context import default_runtime

        return default_runtime().store
    return open_store_at(url)


def open_store_at(url: str) -> RunStore:
    """Open a new store object for ``url`` (plugins first, then the built-in schemes)."""
    if not isinstance(url, str):
        raise ConfigurationError(
            f"store url={url!r} must be a string such as 'memory://' or 'sqlite:///path/to/wf.db'."
        )
    from wfkit._plugins import plugin_manager

    made = plugin_manager().hook.wfkit_make_store(url=url)
    if made is not None:
        return made  # type: ignore[no-any-return]
    if url.startswith("memory://"):
        from wfkit.stores.memory import MemoryStore

        return MemoryStore(url)
    if url.startswith("sqlite://"):
        from wfkit.stores.sqlite import SqliteStore

        return SqliteStore.from_url(url)
    raise ConfigurationError(
        f"store url={url!r} has a scheme wfkit does not know. Use one of "
        f"{', '.join(repr(s + '...') for s in _KNOWN_SCHEMES)} (for example "
        "'sqlite:///./wfkit.db'), or install a plugin that implements wfkit_make_store."
    )


def __getattr__(name: str) -> Any:
    # The record classes load only when someone asks for them (a few ms a run never needs).
    if name in ("FlowRun", "TaskRun", "LogRecord"):
        from wfkit.stores import records

        return getattr(records, name)
    raise AttributeError(f"module 'wfkit.stores' has no attribute {name!r}")
