"""SERIALIZABLE cache locks for the processes sharing one SQLite file: POSIX record locks
(``fcntl``) on one byte each, in ``<store file>.locks``.

The byte of a key is at an offset made of 62 bits of the key's SHA-256, so two keys never
share one in practice. The operating system frees a dead process's record locks, so a killed
holder never blocks a key. Record locks belong to the process, not to a file descriptor, and
closing *any* descriptor of the file drops all of the process's locks on it: so each process
opens the lock file once (per path) and never closes it; several store objects on one file
share it. The engine's in-process lock keeps two threads of one process from asking for one
key at once (a process does not conflict with its own record locks).

The kernel reports a deadlock (``EDEADLK``) when two processes each hold a key that a thread
of the other waits for, though the holding threads will finish and release them: the wait is
then retried after a pause. Not on Windows (no ``fcntl``): the store has no cache locks there
and the engine's in-process lock alone holds.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

from wfkit.exceptions import StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["AVAILABLE", "SqliteCacheLock"]

AVAILABLE = fcntl is not None
_files: dict[str, int] = {}  # lock file path -> this process's descriptor, never closed
_files_guard = threading.Lock()
_DEADLOCK_PAUSE = 0.05  # seconds before a wait the kernel judged a deadlock is retried


def _descriptor(path: str) -> int:
    with _files_guard:
        fd = _files.get(path)
        if fd is None:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise StoreError(
                    f"Cannot open the cache lock file {path!r} ({exc.strerror}): give this "
                    "user write access to the store's directory."
                ) from exc
            _files[path] = fd
        return fd


class SqliteCacheLock:
    """One task run's record lock on a cache key (a :class:`~wfkit.stores.CacheLock`)."""

    def __init__(self, store_path: Path, key: str) -> None:
        self._path = f"{store_path}.locks"
        digest = hashlib.sha256(key.encode()).digest()
        self._offset = int.from_bytes(digest[:8], "big") >> 2  # 62 bits: a valid off_t
        self._held = False

    def acquire(self, blocking: bool = True) -> bool:
        """Take the key's byte, waiting for it (``blocking``) or not.

        Raises:
            StoreError: the lock file cannot be opened or locked.
        """
        if self._held:
            return True
        fd = _descriptor(self._path)
        mode = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        while True:
            try:
                fcntl.lockf(fd, mode, 1, self._offset)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES) and not blocking:
                    return False
                if exc.errno == errno.EDEADLK:  # (see the module docstring)
                    threading.Event().wait(_DEADLOCK_PAUSE)
                    continue
                raise StoreError(
                    f"Cannot lock the cache lock file {self._path!r}: {exc.strerror}."
                ) from exc
            self._held = True
            return True

    def release(self) -> None:
        """Give the byte back (nothing if it is not held)."""
        if not self._held:
            return
        self._held = False
        try:
            fcntl.lockf(_descriptor(self._path), fcntl.LOCK_UN, 1, self._offset)
        except (OSError, StoreError):  # (nothing held then: the process's locks went)
            pass
