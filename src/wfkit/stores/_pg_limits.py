"""Concurrency limits in the PostgreSQL store: the ``concurrency_limits`` and ``limit_leases``
tables (schema step 2), with SQLite's rules (:mod:`wfkit.stores._limits` judges).

Processes on many hosts take slots at once, so a request first locks the rows of the limits
it names (``SELECT ... FOR UPDATE``, in name order so that two requests never wait for each
other in a circle), then counts and takes in the same transaction: nobody else can count a
locked limit until the slots are taken or refused, so a limit is never overbooked. Giving
back and deleting lock the same rows. A lease row names the owner (the process, see
:mod:`wfkit.stores._pg_owners`) that took it; when a request finds no room, the leases of
owners that are gone are deleted and the request is judged again. Every function here takes
a pooled connection (autocommit; each opens its own transaction).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from wfkit.stores._limits import ConcurrencyLimit, SlotGrant, decayed, judge, kept_endings
from wfkit.stores._pg_owners import HOLDS_LEASES, dead_owners
from wfkit.stores._sqlite_limits import SELECT_LIMITS, limit_from_row
from wfkit.stores._sqlite_owners import Progress, now_us

__all__ = ["acquire", "create", "delete", "read", "release"]

_LOCK = "SELECT name FROM concurrency_limits WHERE name = ANY(%s) ORDER BY name FOR UPDATE"


def create(conn: Any, name: str, limit: int, decay: float) -> ConcurrencyLimit:
    """Create the limit or change its size and decay; the limit as it is now."""
    conn.execute(
        "INSERT INTO concurrency_limits (name, slots, decay, created_us) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, decay = excluded.decay",
        (name, limit, decay, now_us()),
    )
    return read(conn, name)[0]


def read(conn: Any, name: str | None = None) -> list[ConcurrencyLimit]:
    """The limit ``name`` (a list of one or none), or every limit by name."""
    where, args = ("WHERE c.name = %s", (name,)) if name is not None else ("", ())
    rows = conn.execute(f"{SELECT_LIMITS} {where} ORDER BY c.name", args).fetchall()
    return [limit_from_row(row) for row in rows]


def delete(conn: Any, name: str) -> bool:
    """Delete the limit and its leases; whether there was one."""
    with conn.transaction():
        conn.execute(_LOCK, ([name],))
        conn.execute("DELETE FROM limit_leases WHERE name = %s", (name,))
        return bool(
            conn.execute("DELETE FROM concurrency_limits WHERE name = %s", (name,)).rowcount
        )


def acquire(
    conn: Any,
    owner: int | None,
    progress: Progress,
    request: tuple[Sequence[str], int, float, str, bool],
) -> SlotGrant:
    """Take ``occupy`` slots on every existing limit in ``names``, or none, for ``holder``
    of ``owner``; ``request`` is (names, occupy, now, holder, lease)."""
    names, occupy, now, holder, lease = request
    with conn.transaction():
        conn.execute(_LOCK, (sorted(set(names)),))
        grant = _judge(conn, names, occupy, now, holder)
        if not grant.granted and grant.wait is None and _free_dead_leases(conn, owner, progress):
            grant = _judge(conn, names, occupy, now, holder)
        if not grant.granted:
            return grant
        found = [n for n in names if n not in grant.missing]
        if not lease:
            conn.cursor().executemany(
                "UPDATE concurrency_limits SET draining = greatest(0.0, draining - decay * "
                "greatest(0.0, %s - updated_s)) + %s, updated_s = %s WHERE name = %s",
                [(now, occupy, now, n) for n in found],
            )
            return grant
        lease_id = secrets.token_hex(8)
        conn.cursor().executemany(
            "INSERT INTO limit_leases (lease, name, owner, holder, slots) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(lease_id, n, owner, holder, occupy) for n in found],
        )
        return grant._replace(lease_id=lease_id)


def _judge(conn: Any, names: Sequence[str], occupy: int, now: float, holder: str) -> SlotGrant:
    rows = conn.execute(f"{SELECT_LIMITS} WHERE c.name = ANY(%s)", (list(names),)).fetchall()
    found = {row[0]: row for row in rows}
    missing = tuple(n for n in names if n not in found)
    ending: dict[str, list[tuple[float, int]]] = {}
    for name, at, slots in conn.execute(
        "SELECT name, released_s - %s, slots FROM limit_leases "
        "WHERE name = ANY(%s) AND released_s > %s",
        (now, list(found), now),
    ).fetchall():
        ending.setdefault(name, []).append((at, slots))
    for name in names:
        if name not in found:
            continue
        _, slots, decay, draining, updated, _, leased = found[name]
        refusal = judge(
            name,
            slots,
            decay,
            leased,
            decayed(draining, decay, updated, now),
            occupy,
            ending.get(name, ()),
        )
        if refusal is not None:
            held = conn.execute(
                "SELECT 1 FROM limit_leases "
                "WHERE name = %s AND holder = %s AND released_s IS NULL LIMIT 1",
                (name, holder),
            ).fetchone()
            return refusal._replace(missing=missing, self_held=held is not None)
    return SlotGrant(True, missing=missing)


def _free_dead_leases(conn: Any, owner: int | None, progress: Progress) -> bool:
    """Delete the leases of owners that are gone; whether there were any."""
    dead = [owner_id for owner_id, _ in dead_owners(conn, owner, now_us(), progress, HOLDS_LEASES)]
    if dead:
        # (rows locked in one order: two askers freeing the same leases never deadlock)
        conn.execute(
            "DELETE FROM limit_leases WHERE (lease, name) IN (SELECT lease, name FROM "
            "limit_leases WHERE owner = ANY(%s) ORDER BY lease, name FOR UPDATE)",
            (dead,),
        )
    return bool(dead)


def release(conn: Any, lease_id: str, now: float) -> None:
    """Give back the slots of a lease at ``now`` (nothing if it is gone), keeping the rows
    of given-back leases :func:`~wfkit.stores._limits.kept_endings` keeps."""
    with conn.transaction():
        names = [
            n
            for (n,) in conn.execute(
                "SELECT name FROM limit_leases WHERE lease = %s", (lease_id,)
            ).fetchall()
        ]
        conn.execute(_LOCK, (sorted(names),))
        conn.execute("UPDATE limit_leases SET released_s = %s WHERE lease = %s", (now, lease_id))
        for name, limit in conn.execute(
            "SELECT name, slots FROM concurrency_limits WHERE name = ANY(%s)", (names,)
        ).fetchall():
            ended = conn.execute(
                "SELECT released_s, slots, lease FROM limit_leases "
                "WHERE name = %s AND released_s IS NOT NULL",
                (name,),
            ).fetchall()
            keep = set(kept_endings(limit, [(at, slots) for at, slots, _ in ended]))
            gone = [lease for at, slots, lease in ended if (at, slots) not in keep]
            if gone:
                conn.execute(
                    "DELETE FROM limit_leases WHERE name = %s AND lease = ANY(%s)", (name, gone)
                )
