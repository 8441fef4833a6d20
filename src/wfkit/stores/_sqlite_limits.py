"""Concurrency limits in the SQLite store: the ``concurrency_limits`` and ``limit_leases``
tables (schema step "Issue 15").

Taking slots is one ``BEGIN IMMEDIATE`` transaction, so processes sharing the file never
overbook a limit. A lease row names the owner (the process, see
:mod:`wfkit.stores._sqlite_owners`) that took it; when a request finds no room, the leases of
owners that are gone are deleted first, as their runs become ``Crashed``, and the request is
judged again. Every function here takes the store's connection, under its lock.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from wfkit.stores._limits import ConcurrencyLimit, SlotGrant, decayed, judge, kept_endings
from wfkit.stores._sqlite_owners import Progress, dead_owners, now_us
from wfkit.stores._sqlite_rows import _EPOCH, _from_us

__all__ = ["SELECT_LIMITS", "acquire", "create", "delete", "limit_from_row", "read", "release"]

_T = TypeVar("_T")

#: The limits with their leased slots (SQLite's and PostgreSQL's); rows for :func:`limit_from_row`.
SELECT_LIMITS = (
    "SELECT name, slots, decay, draining, updated_s, created_us, (SELECT coalesce(sum("
    "l.slots), 0) FROM limit_leases l WHERE l.name = c.name AND l.released_s IS NULL) "
    "FROM concurrency_limits c"
)
_HOLDS_LEASES = "EXISTS (SELECT 1 FROM limit_leases WHERE owner = owners.id AND released_s IS NULL)"


def _in_transaction(conn: sqlite3.Connection, action: Callable[[], _T]) -> _T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = action()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def create(conn: sqlite3.Connection, name: str, limit: int, decay: float) -> ConcurrencyLimit:
    """Create the limit or change its size and decay; the limit as it is now."""
    conn.execute(
        "INSERT INTO concurrency_limits (name, slots, decay, created_us) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, decay = excluded.decay",
        (name, limit, decay, now_us()),
    )
    return read(conn, name)[0]


def read(conn: sqlite3.Connection, name: str | None = None) -> list[ConcurrencyLimit]:
    """The limit ``name`` (a list of one or none), or every limit by name."""
    where, args = ("WHERE c.name = ?", (name,)) if name is not None else ("", ())
    rows = conn.execute(f"{SELECT_LIMITS} {where} ORDER BY c.name", args).fetchall()
    return [limit_from_row(row) for row in rows]


def limit_from_row(row: Sequence[Any]) -> ConcurrencyLimit:
    """The limit a row of :data:`SELECT_LIMITS` describes (draining slots as they stood at
    the last rate_limit: a store has no clock to drain them by)."""
    name, slots, decay, draining, updated, created_us, leased = row
    active = leased + decayed(draining, decay, updated, updated)
    return ConcurrencyLimit(name, slots, decay, active, _from_us(created_us) or _EPOCH)


def delete(conn: sqlite3.Connection, name: str) -> bool:
    """Delete the limit and its leases; whether there was one."""

    def action() -> bool:
        conn.execute("DELETE FROM limit_leases WHERE name = ?", (name,))
        return conn.execute("DELETE FROM concurrency_limits WHERE name = ?", (name,)).rowcount > 0

    return _in_transaction(conn, action)


def acquire(
    conn: sqlite3.Connection,
    owner: int | None,
    progress: Progress,
    request: tuple[Sequence[str], int, float, str, bool],
) -> SlotGrant:
    """Take ``occupy`` slots on every existing limit in ``names``, or none, for ``holder``
    of ``owner``; ``request`` is (names, occupy, now, holder, lease)."""
    return _in_transaction(conn, lambda: _acquire(conn, owner, progress, *request))


def _acquire(
    conn: sqlite3.Connection,
    owner: int | None,
    progress: Progress,
    names: Sequence[str],
    occupy: int,
    now: float,
    holder: str,
    lease: bool,
) -> SlotGrant:
    grant = _judge(conn, names, occupy, now, holder)
    if not grant.granted and grant.wait is None and _free_dead_leases(conn, owner, progress):
        grant = _judge(conn, names, occupy, now, holder)
    if not grant.granted:
        return grant
    found = [n for n in names if n not in grant.missing]
    if lease:
        lease_id = secrets.token_hex(8)
        conn.executemany(
            "INSERT INTO limit_leases (lease, name, owner, holder, slots) VALUES (?, ?, ?, ?, ?)",
            [(lease_id, n, owner, holder, occupy) for n in found],
        )
        return grant._replace(lease_id=lease_id)
    conn.executemany(
        "UPDATE concurrency_limits SET draining = max(0.0, draining - decay * "
        "max(0.0, ? - updated_s)) + ?, updated_s = ? WHERE name = ?",
        [(now, occupy, now, n) for n in found],
    )
    return grant


def _judge(
    conn: sqlite3.Connection, names: Sequence[str], occupy: int, now: float, holder: str
) -> SlotGrant:
    marks = ", ".join("?" * len(names))
    rows = conn.execute(f"{SELECT_LIMITS} WHERE c.name IN ({marks})", tuple(names)).fetchall()
    found = {row[0]: row for row in rows}
    missing = tuple(n for n in names if n not in found)
    for name in names:
        if name not in found:
            continue
        _, slots, decay, draining, updated, _, leased = found[name]
        ending = conn.execute(
            "SELECT released_s - ?, slots FROM limit_leases WHERE name = ? AND released_s > ?",
            (now, name, now),
        ).fetchall()
        refusal = judge(
            name, slots, decay, leased, decayed(draining, decay, updated, now), occupy, ending
        )
        if refusal is not None:
            held = conn.execute(
                "SELECT 1 FROM limit_leases WHERE name = ? AND holder = ? AND released_s IS NULL",
                (name, holder),
            ).fetchone()
            return refusal._replace(missing=missing, self_held=bool(held))
    return SlotGrant(True, missing=missing)


def _free_dead_leases(conn: sqlite3.Connection, owner: int | None, progress: Progress) -> bool:
    """Delete the leases of owners that are gone; whether there were any."""
    dead = dead_owners(conn, owner, now_us(), progress, having=_HOLDS_LEASES)
    for owner_id, _ in dead:
        conn.execute("DELETE FROM limit_leases WHERE owner = ?", (owner_id,))
    return bool(dead)


def release(conn: sqlite3.Connection, lease_id: str, now: float) -> None:
    """Give back the slots of a lease at ``now`` (nothing if it is gone), keeping the rows
    of given-back leases :func:`~wfkit.stores._limits.kept_endings` keeps."""

    def action() -> None:
        conn.execute("UPDATE limit_leases SET released_s = ? WHERE lease = ?", (now, lease_id))
        for name, limit in conn.execute(
            "SELECT name, slots FROM concurrency_limits WHERE name IN "
            "(SELECT name FROM limit_leases WHERE lease = ?)",
            (lease_id,),
        ).fetchall():
            ended = conn.execute(
                "SELECT released_s, slots, lease FROM limit_leases "
                "WHERE name = ? AND released_s IS NOT NULL",
                (name,),
            ).fetchall()
            keep = set(kept_endings(limit, [(at, slots) for at, slots, _ in ended]))
            conn.executemany(
                "DELETE FROM limit_leases WHERE name = ? AND lease = ?",
                [(name, lease) for at, slots, lease in ended if (at, slots) not in keep],
            )

    _in_transaction(conn, action)
