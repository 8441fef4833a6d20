"""Run stores: where flow runs, task runs, state histories, logs and cached results live.

Choose one by URL:

- ``memory://``: this process only (tests, throwaway runs);
- ``sqlite:///path/to/file.db``: an embedded SQLite file (the default is
  ``sqlite:///$WFKIT_HOME/wfkit.db``);
- ``postgresql://user@host/db``: a PostgreSQL database many hosts share (extra ``postgres``);
- anything a plugin's ``wfkit_make_store(url)`` hook accepts.

``open_store(url=None)`` opens one; ``None`` opens the configured store (``WFKIT_STORE``).
``open_store(url, read_only=True)`` (or a URL ending ``?mode=ro``) opens one only to read it.

A store is three small protocols in one object: a :class:`RunRecorder` (what the engine
writes), a :class:`RunReader` (what the harness, CLI, UI and scripts read) and a
:class:`CacheStore` (cached results); :class:`RunStore` is their union. A third-party store
proves itself by subclassing ``wfkit.testing.store_conformance.StoreConformance``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from wfkit._plugins import plugin_manager
from wfkit.exceptions import ConfigurationError
from wfkit.settings import store_url
from wfkit.stores._artifact_records import ArtifactRecord
from wfkit.stores._base import CacheRecord, FlowRunSnapshot, LogEntry, TaskRunSnapshot
from wfkit.stores._event_records import EventRecord
from wfkit.stores._limits import ConcurrencyLimit, SlotGrant
from wfkit.stores._protocols import (
    ArtifactStore,
    CacheLock,
    CacheLockStore,
    CacheStore,
    EventStore,
    LimitStore,
    RunReader,
    RunRecorder,
    RunStore,
    missing_members,
)

if TYPE_CHECKING:
    from wfkit.stores.records import FlowRun, LogRecord, TaskRun

__all__ = [
    "ArtifactRecord",
    "ArtifactStore",
    "CacheLock",
    "CacheLockStore",
    "CacheRecord",
    "CacheStore",
    "ConcurrencyLimit",
    "EventRecord",
    "EventStore",
    "FlowRun",
    "FlowRunSnapshot",
    "LogEntry",
    "LimitStore",
    "LogRecord",
    "RunReader",
    "RunRecorder",
    "RunStore",
    "SlotGrant",
    "TaskRun",
    "TaskRunSnapshot",
    "configured_store",
    "open_store",
]

_KNOWN_SCHEMES = ("memory://", "sqlite:///", "postgresql://")
_READ_ONLY_SCHEMES = ("sqlite:", "postgresql:", "postgres:")  # the stores that understand ?mode=ro


def open_store(url: str | None = None, *, read_only: bool = False) -> RunStore:
    """Open the run store at ``url``.

    ``None`` means the configured store (``WFKIT_STORE``, default the SQLite file in
    ``WFKIT_HOME``): the same store object the process's runs are recorded in, so what was
    just recorded is there to read (also for a configured ``memory://`` store). An explicit
    URL opens a new store object each call (``"memory://"``: a new, empty store).

    ``read_only=True`` adds ``?mode=ro`` to a SQLite (or PostgreSQL) URL: the store is opened
    without ever writing to it (the file must exist; runs of dead processes are shown
    ``Crashed`` without being recorded so; recording raises
    :class:`~wfkit.exceptions.StoreError`). This is how ``wf`` and ``wf ui`` read, beside
    processes that write. A memory store lives in its process only: ``read_only`` gives the
    configured one (or a new one) as it is; a plugin's URL is passed on unchanged.

    Raises:
        ConfigurationError: the URL's scheme is unknown and no plugin accepts it.
        StoreError: the store exists but cannot be used (corrupt, too new a schema).
        TypeError: a plugin opened the URL but its store lacks members of :class:`RunStore`.
    """
    if read_only:
        url = store_url() if url is None else url
        if isinstance(url, str):  # anything else: open_store_at explains
            if url.startswith("memory://"):
                return configured_store() if url == store_url() else open_store_at(url)
            if url.startswith(_READ_ONLY_SCHEMES):  # (others: their own URL, unchanged)
                url = _read_only_url(url)
        return open_store_at(url)
    if url is None:
        return configured_store()
    return open_store_at(url)


def _read_only_url(url: str) -> str:
    """``url`` with ``mode=ro`` in its query (a ``mode=rw`` there is replaced)."""
    base, _, query = url.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith("mode=")]
    return f"{base}?{'&'.join([*params, 'mode=ro'])}"


_configured: RunStore | None = None
_configured_lock = threading.Lock()


def configured_store() -> RunStore:
    """The configured store (``WFKIT_STORE``, default the SQLite file in ``WFKIT_HOME``),
    opened on first use and then shared: runs that no harness or ``use_runtime`` redirects
    are recorded in it, and ``open_store()`` reads it.

    Raises:
        ConfigurationError, StoreError, TypeError: as for :func:`open_store`.
    """
    global _configured
    if _configured is None:
        with _configured_lock:
            if _configured is None:
                _configured = open_store_at(store_url())
    return _configured


def open_store_at(url: str) -> RunStore:
    """Open a new store object for ``url`` (plugins first, then the built-in schemes).

    Raises:
        ConfigurationError, StoreError, TypeError: as for :func:`open_store`.
    """
    if not isinstance(url, str):
        raise ConfigurationError(
            f"store url={url!r} must be a string such as 'memory://' or 'sqlite:///path/to/wf.db'."
        )
    made = plugin_manager().hook.wfkit_make_store(url=url)
    if made is not None:
        return _checked(made, url)
    if url.startswith("memory://"):
        # (function-level: a process opens one kind of store; each module costs milliseconds)
        from wfkit.stores.memory import MemoryStore

        return MemoryStore(url)
    if url.startswith("sqlite://"):
        from wfkit.stores.sqlite import SqliteStore  # (lazy: as MemoryStore above)

        return SqliteStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from wfkit.stores.postgres import PostgresStore  # (lazy: an optional extra)

        return PostgresStore.from_url(url)
    raise ConfigurationError(
        f"store url={url!r} has a scheme wfkit does not know. Use one of "
        f"{', '.join(repr(s + '...') for s in _KNOWN_SCHEMES)} (for example "
        "'sqlite:///./wfkit.db'), or install a plugin that implements wfkit_make_store."
    )


def _checked(store: Any, url: str) -> RunStore:
    """``store``, made by a plugin for ``url``, if it implements :class:`RunStore`."""
    missing = missing_members(store, RunStore)
    if missing:
        kind = type(store)
        raise TypeError(
            f"The plugin store {kind.__module__}.{kind.__qualname__} made for url={url!r} "
            f"does not implement the RunStore protocol: it lacks {', '.join(missing)}. Add "
            "them (see wfkit.stores.RunStore, and run wfkit.testing.store_conformance against "
            "it), or make the plugin's wfkit_make_store return None for this URL."
        )
    return store


def __getattr__(name: str) -> Any:
    if name in ("FlowRun", "TaskRun", "LogRecord"):
        # (lazy: the record classes cost a few ms that a run which reads nothing never needs)
        from wfkit.stores import records

        return getattr(records, name)
    raise AttributeError(f"module 'wfkit.stores' has no attribute {name!r}")
