"""What lets wfkit trust what it reads back from a store file: the store's secret key, kept
owner-only beside the file, and a warning when other users could change the file.

The key authenticates cached results (the engine signs every payload it writes with it and
checks the signature before it deserializes anything; see :mod:`wfkit._engine.caching`). It is
created once, atomically (written under a temporary name, then hard-linked into place, which
never replaces a file that exists), so concurrent processes agree on one key and none ever
reads half a key.

Loose permissions are reported on the ``wfkit.stores`` logger, once per path and process, and
the store is used anyway: the logger (not :func:`warnings.warn`) because the other store
problems wfkit reports at run time go there, and because ``warnings`` would show a warning
once per call site, not once per file. On Windows, whose permission bits mean nothing here,
nothing is checked.
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import stat
import threading
from pathlib import Path

from wfkit.exceptions import StoreError

__all__ = ["KEY_SIZE", "read_key", "read_or_create_key", "report_loose_permissions"]

KEY_SIZE = 32  # bytes: 256 bits, as strong as the HMAC-SHA256 it keys
_CHECKS = os.name != "nt"

_log = logging.getLogger("wfkit.stores")
_reported: set[str] = set()
_reported_lock = threading.Lock()


def read_or_create_key(path: Path) -> tuple[bytes, bool]:
    """The secret key kept in ``path``, and whether it was created by this call (the file was
    missing; it is then made owner-only, with a new random key).

    Raises:
        StoreError: the file cannot be read or created, or does not hold a key.
    """
    try:
        return _read_key(path), False
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(KEY_SIZE)
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process made it first: use theirs
            return _read_key(path), False
        return key, True
    except OSError as exc:
        raise StoreError(
            f"Cannot create the store's secret key file {str(path)!r}: {exc}. Check that its "
            "directory is writable by you (and that its file system supports hard links)."
        ) from exc
    finally:
        temporary.unlink(missing_ok=True)


def read_key(path: Path) -> bytes | None:
    """The key in ``path``, or None if there is no such file (never creates one).

    Raises:
        StoreError: as for :func:`read_or_create_key`.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        return None


def _read_key(path: Path) -> bytes:
    """The key in ``path``, reporting loose permissions.

    Raises:
        FileNotFoundError: there is no such file.
        StoreError: it cannot be read, or holds something other than a key.
    """
    try:
        with open(path, "rb") as file:
            key = file.read(KEY_SIZE + 1)
            mode = os.fstat(file.fileno())
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StoreError(
            f"Cannot read the store's secret key file {str(path)!r}: {exc}. Make it readable "
            f"by you alone (chmod 600 {shlex.quote(str(path))})."
        ) from exc
    if len(key) != KEY_SIZE:
        raise StoreError(
            f"The store's secret key file {str(path)!r} holds {len(key)} bytes, not a "
            f"{KEY_SIZE}-byte key. Delete it: wfkit makes a new key, and cached results are "
            "computed again."
        )
    _report(path, mode, secret=True)
    return key


def report_loose_permissions(path: Path) -> None:
    """Warn (once per path) if users other than the owner can write the store file ``path``
    or its directory, or if the file belongs to another user; the warning gives the fix."""
    if not _CHECKS:
        return
    try:
        _report(path, path.stat(), secret=False)
        _report(path.parent, path.parent.stat(), secret=False)
    except OSError:  # gone, or not ours to stat: opening it has said, or will say, more
        return


def _report(path: Path, info: os.stat_result, *, secret: bool) -> None:
    if not _CHECKS:
        return
    mode = stat.S_IMODE(info.st_mode)
    is_dir = stat.S_ISDIR(info.st_mode)
    # Others may create files in a sticky directory (/tmp) but not replace or remove ours.
    loose = mode & (0o077 if secret else 0o022) and not (is_dir and mode & stat.S_ISVTX)
    foreign = not is_dir and info.st_uid not in (os.getuid(), 0)
    if not (loose or foreign):
        return
    with _reported_lock:
        if str(path) in _reported:
            return
        _reported.add(str(path))
    what = "directory" if is_dir else ("secret key file" if secret else "file")
    if foreign:
        who = f"belongs to another user (uid {info.st_uid})"
    else:
        who = f"can be {'read or written' if secret else 'written'} by other users"
    fix = f"chmod {'700' if is_dir else '600'} {shlex.quote(str(path))}"
    if foreign:
        fix = f"make it yours (chown) and run {fix}, or use a store of your own"
    _log.warning(
        "wfkit: the run store's %s %r %s (mode %s): whoever can change it can change what "
        "wfkit reads back, cached results included. Fix: %s.",
        what,
        str(path),
        who,
        oct(mode),
        fix,
    )
