"""The SQLite store's cache records, read back from memory while the file says that is safe.

A cache hit reads one record by its key, yet even that costs SQLite a read transaction on the
WAL, about as much as the rest of the hit. So the records one connection read or wrote are kept
in memory and served from there while no other connection has committed to the file.
``PRAGMA data_version`` tells: its value changes when any other connection (another process,
or another store object on the same file) commits anything, and then everything kept is
dropped. The connection's own commits leave it unchanged, so the store's own cache writes,
deletions and prunes update what is kept themselves. The version is read *before* the record,
so a commit landing between the two reads makes the record look older than it is, never newer.

Values are deserialized by the caller on every hit, so no two hits share a result object.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from wfkit.stores._base import CacheRecord

__all__ = ["KeptCacheRecords"]

_MAX_RECORDS = 1024
_MAX_BYTES = 4 * 2**20  # of serialized values kept, in all
_MAX_VALUE = 64 * 2**10  # a bigger value is read from the file every time


class KeptCacheRecords:
    """The cache records kept in memory for one store, valid for one connection at one data
    version. Every method must be called under the store's connection lock."""

    __slots__ = ("_conn", "_cursor", "_version", "_records", "_bytes")

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None
        self._version: Any = None
        self._records: dict[str, CacheRecord] = {}
        self._bytes = 0

    def lookup(self, conn: sqlite3.Connection, key: str) -> CacheRecord | None:
        """The record kept under ``key`` if the file still holds it as kept; else None, and
        anything read from the file from now on may be kept.

        Raises:
            sqlite3.Error: reading the data version failed (nothing is kept then).
        """
        if conn is self._conn:
            try:
                version = self._cursor.execute("PRAGMA data_version").fetchone()[0]  # type: ignore[union-attr]
            except BaseException:
                self.forget()
                raise
            if version == self._version:
                return self._records.get(key)
        else:
            self.forget()
            self._cursor = conn.cursor()
            version = self._cursor.execute("PRAGMA data_version").fetchone()[0]
            self._conn = conn
        self._records, self._bytes, self._version = {}, 0, version
        return None

    def keep(self, conn: sqlite3.Connection, record: CacheRecord) -> None:
        """Keep ``record``, just read from (or committed to) the file through ``conn``."""
        if conn is not self._conn or len(record.value) > _MAX_VALUE:
            self.drop(record.key)
            return
        self.drop(record.key)
        records = self._records
        size = len(record.value)
        while records and (len(records) >= _MAX_RECORDS or self._bytes + size > _MAX_BYTES):
            self.drop(next(iter(records)))  # the oldest kept
        records[record.key] = record
        self._bytes += size

    def drop(self, key: str) -> None:
        """Stop keeping the record under ``key`` (it is being changed or deleted)."""
        old = self._records.pop(key, None)
        if old is not None:
            self._bytes -= len(old.value)

    def forget(self) -> None:
        """Keep nothing until the next :meth:`lookup` (a prune, an error, another connection)."""
        self._conn = self._cursor = self._version = None
        self._records, self._bytes = {}, 0
