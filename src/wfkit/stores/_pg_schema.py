"""The PostgreSQL store's URL, connections and schema.

A URL is ``postgresql://user[:password]@host[:port]/database[?option=value&...]``: libpq's own
URI, with wfkit's option ``mode=ro`` (read-only) added. Options libpq or wfkit do not know are
refused, so that a typo is not silently ignored. The password is never shown: messages name the
store by :func:`redacted`.

The schema is versioned in ``wfkit_meta`` (as SQLite's) and moved forward by ``_MIGRATIONS``,
in one transaction that holds a transaction-scoped advisory lock, so that two processes opening
a new database at once do not both create it. A database that holds other tables is fine; one
that holds a table named like wfkit's without ``wfkit_meta`` (another application's
``flow_runs``), or a newer schema, is refused, and nothing is touched.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from wfkit.exceptions import ConfigurationError, StoreError
from wfkit.stores._sqlite_schema import FINISHED_ROOT, NOT_FINAL

__all__ = [
    "SCHEMA_VERSION",
    "SESSION_SETTINGS",
    "PgUrl",
    "canceled_hint",
    "connect",
    "ensure_schema",
    "parse_url",
    "redacted",
]

_EXAMPLE = "'postgresql://wfkit@localhost/wfkit'"
#: libpq's connection options wfkit passes on; ``mode`` is wfkit's own.
_LIBPQ_OPTIONS = frozenset(
    {
        "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "connect_timeout",
        "application_name", "options", "sslmode", "sslrootcert", "sslcert", "sslkey",
        "sslpassword", "target_session_attrs", "keepalives", "keepalives_idle",
        "gssencmode", "service",
    }
)  # fmt: skip
_CONNECT_TIMEOUT = "10"  # seconds, unless the URL says otherwise: a lost server fails fast
#: Session settings of wfkit's connections, sent at login (they override the role's and the
#: database's own, which a DBA may have set for interactive use: ``statement_timeout = 1ms``
#: fails every migration and flush). A statement is still bounded, far above what any of
#: wfkit's takes; a lock wait is bounded by it too. A setting the URL's ``options`` give wins.
SESSION_SETTINGS = {"statement_timeout": "300s", "lock_timeout": "0"}

#: Held (transaction-scoped) while the schema is created or migrated: any constant that no
#: other application is likely to use, the same in every wfkit process.
SCHEMA_LOCK = 0x77666B6974_00  # "wfkit" 00
#: Held while a SERIALIZABLE cache key is being computed: this prefix, then the key's hash.
CACHE_LOCK_CLASS = 0x77666B69

_TABLES = (
    "flow_runs",
    "task_runs",
    "flow_run_states",
    "task_run_states",
    "logs",
    "cache",
    "concurrency_limits",
    "limit_leases",
    "artifacts",
    "events",
)

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE wfkit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE owners (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, host TEXT NOT NULL,
            pid_space TEXT NOT NULL, pid BIGINT NOT NULL, start_ticks BIGINT NOT NULL,
            heartbeat_us BIGINT NOT NULL, interval_us BIGINT NOT NULL,
            beats BIGINT NOT NULL DEFAULT 0, UNIQUE (host, pid_space, pid, start_ticks))""",
        """CREATE TABLE flow_runs (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE,
            name TEXT, flow_name TEXT, flow_version TEXT, parameters TEXT, tags TEXT,
            parent_flow_run_id TEXT, parent_task_run_id TEXT, root_flow_run_id TEXT,
            run_count INTEGER, state_type TEXT, state_name TEXT, state_us BIGINT,
            start_us BIGINT, first_us BIGINT, heartbeat_us BIGINT, host TEXT, pid BIGINT,
            owner BIGINT, flow_path TEXT)""",
        "CREATE INDEX flow_runs_start ON flow_runs ((coalesce(start_us, first_us)) NULLS FIRST, seq)",
        "CREATE INDEX flow_runs_flow_start ON flow_runs "
        "(flow_name, (coalesce(start_us, first_us)))",
        "CREATE INDEX flow_runs_name ON flow_runs (name)",
        "CREATE INDEX flow_runs_root ON flow_runs (root_flow_run_id)",
        # text_pattern_ops: an id prefix (wf runs show 3fa8) is an index range in any collation
        "CREATE INDEX flow_runs_id_prefix ON flow_runs (id text_pattern_ops)",
        f"CREATE INDEX flow_runs_finished ON flow_runs (state_us) WHERE {FINISHED_ROOT}",
        f"CREATE INDEX flow_runs_live ON flow_runs (owner) WHERE {NOT_FINAL}",
        """CREATE TABLE task_runs (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE,
            name TEXT, task_name TEXT, flow_run_id TEXT, parameters TEXT, tags TEXT,
            cache_key TEXT, upstream_ids TEXT, run_count INTEGER, state_type TEXT,
            state_name TEXT, state_us BIGINT, host TEXT, pid BIGINT, owner BIGINT)""",
        # Counts and per-task summaries read this index alone (an index-only scan).
        "CREATE INDEX task_runs_summary ON task_runs "
        "(flow_run_id, task_name, state_name) INCLUDE (run_count, seq)",
        f"CREATE INDEX task_runs_live ON task_runs (owner) WHERE {NOT_FINAL}",
        """CREATE TABLE flow_run_states (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_seq BIGINT NOT NULL,
            type TEXT, name TEXT, at_us BIGINT, message TEXT)""",
        "CREATE INDEX flow_run_states_run ON flow_run_states (run_seq, seq)",
        """CREATE TABLE task_run_states (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_seq BIGINT NOT NULL,
            type TEXT, name TEXT, at_us BIGINT, message TEXT)""",
        "CREATE INDEX task_run_states_run ON task_run_states (run_seq, seq)",
        """CREATE TABLE logs (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, flow_run_id TEXT,
            task_run_id TEXT, level INTEGER, logger TEXT, message TEXT, at_us BIGINT)""",
        "CREATE INDEX logs_flow_run ON logs (flow_run_id, seq) WHERE flow_run_id IS NOT NULL",
        "CREATE INDEX logs_task_run ON logs (task_run_id, seq) WHERE task_run_id IS NOT NULL",
        """CREATE TABLE cache (
            key TEXT PRIMARY KEY, serializer TEXT NOT NULL, expires_us BIGINT,
            task_name TEXT, created_us BIGINT NOT NULL, value BYTEA NOT NULL)""",
        "CREATE INDEX cache_expires ON cache (expires_us) WHERE expires_us IS NOT NULL",
    ),
    # 2: limits, artifacts, events (SQLite's step "Issue 15", with the same columns)
    (
        # Concurrency limits (see wfkit.stores._pg_limits): `draining` is what rate_limit
        # took, as it stood at `updated_s` (epoch seconds on the caller's clock); a lease is
        # what concurrency() holds, one row per limit, owned by a process (owners.id).
        """CREATE TABLE concurrency_limits (
            name TEXT PRIMARY KEY, slots INTEGER NOT NULL, decay DOUBLE PRECISION NOT NULL,
            draining DOUBLE PRECISION NOT NULL DEFAULT 0,
            updated_s DOUBLE PRECISION NOT NULL DEFAULT 0, created_us BIGINT NOT NULL)""",
        # A lease given back keeps its row, with `released_s`, while that time is ahead of
        # an asker's clock (fake clocks: see wfkit.stores._limits.judge).
        """CREATE TABLE limit_leases (
            lease TEXT NOT NULL, name TEXT NOT NULL, owner BIGINT, holder TEXT NOT NULL,
            slots INTEGER NOT NULL, released_s DOUBLE PRECISION, PRIMARY KEY (lease, name))""",
        "CREATE INDEX limit_leases_name ON limit_leases (name)",
        "CREATE INDEX limit_leases_owner ON limit_leases (owner)",
        # `data` is JSON text (not JSONB, which would reorder a table's keys).
        """CREATE TABLE artifacts (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE,
            key TEXT, type TEXT NOT NULL, data TEXT NOT NULL, description TEXT,
            flow_run_id TEXT, task_run_id TEXT, created_us BIGINT NOT NULL,
            updated_us BIGINT NOT NULL)""",
        "CREATE INDEX artifacts_key ON artifacts (key) WHERE key IS NOT NULL",
        "CREATE INDEX artifacts_flow_run ON artifacts (flow_run_id)",
        "CREATE INDEX artifacts_task_run ON artifacts (task_run_id)",
        """CREATE TABLE events (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL, resource TEXT NOT NULL, resource_id TEXT,
            related TEXT NOT NULL, payload TEXT NOT NULL, flow_run_id TEXT, task_run_id TEXT,
            occurred_us BIGINT NOT NULL)""",
        # text_pattern_ops: a name prefix ("order.*") is an index range in any collation
        "CREATE INDEX events_event ON events (event text_pattern_ops)",
        "CREATE INDEX events_resource ON events (resource_id)",
        "CREATE INDEX events_flow_run ON events (flow_run_id)",
        "CREATE INDEX events_task_run ON events (task_run_id)",
    ),
    # 3: the transaction that wrote each log line, for a cursor in commit order (see
    # wfkit.stores._pg_queries: `logs_after`). Lines written before have none (NULL: settled).
    # A BRIN index: lines go in in transaction order, and a summary per range of pages is
    # nearly free to keep up to date on every flush, unlike a B-tree.
    (
        "ALTER TABLE logs ADD COLUMN xact BIGINT",
        "ALTER TABLE logs ALTER COLUMN xact SET DEFAULT (pg_current_xact_id()::text::bigint)",
        "CREATE INDEX logs_xact ON logs USING brin (xact)",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


class PgUrl:
    """A parsed ``postgresql://`` URL: what to connect with, and what to show.

    Attributes:
        conninfo: the URL for libpq (wfkit's options removed, a connect timeout added).
        shown: the URL without its password, for messages.
        host, database, user: for messages.
        read_only: ``mode=ro`` was given.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        options = parse_qsl(parts.query, keep_blank_values=True)
        unknown = sorted({k for k, _ in options} - _LIBPQ_OPTIONS - {"mode"})
        if unknown:
            raise ConfigurationError(
                f"store url={redacted(url)!r} has the option(s) {', '.join(unknown)}, which "
                "neither wfkit nor libpq knows. Use mode=ro to open the store read-only, or "
                "libpq's connection options (sslmode, connect_timeout, application_name, ...)."
            )
        mode = dict(options).get("mode", "rw")
        if mode not in ("ro", "rw"):
            raise ConfigurationError(
                f"store url={redacted(url)!r} has mode={mode!r}; use mode=ro (read-only) or "
                "mode=rw (the default)."
            )
        self.read_only = mode == "ro"
        given = dict(options)
        self.database = unquote(parts.path.lstrip("/")) or given.get("dbname", "")
        self.host = parts.hostname or given.get("host", "") or "localhost"
        self.user = unquote(parts.username or "") or given.get("user", "")
        if not self.database:
            raise ConfigurationError(
                f"store url={redacted(url)!r} names no database. Put it after the host, for "
                f"example {_EXAMPLE}."
            )
        kept = [(k, v) for k, v in options if k not in ("mode", "options")]
        if "connect_timeout" not in given:
            kept.append(("connect_timeout", _CONNECT_TIMEOUT))
        kept.append(("options", _session_options(given.get("options", ""), self.read_only)))
        # (spaces as %20: libpq decodes percent escapes only, not urlencode's "+")
        query = urlencode(kept, quote_via=quote)
        self.conninfo = urlunsplit(parts._replace(scheme="postgresql", query=query))
        self.shown = redacted(url)

    def where(self) -> str:
        """The server and database, for messages (never the password)."""
        user = f" as user {self.user!r}" if self.user else ""
        return f"database {self.database!r} on host {self.host!r}{user}"


def _session_options(given: str, read_only: bool) -> str:
    """libpq's ``options`` for wfkit's sessions: ``given`` (the URL's) and, after it,
    :data:`SESSION_SETTINGS` it does not set; read-only, ``default_transaction_read_only``."""
    settings = dict(SESSION_SETTINGS)
    if read_only:
        settings["default_transaction_read_only"] = "on"
    added = [f"-c {name}={value}" for name, value in settings.items() if name not in given]
    return " ".join([given, *added]).strip()


def parse_url(url: str) -> PgUrl:
    """Parse a ``postgresql://`` URL.

    Raises:
        ConfigurationError: it names no database, or has an option nobody knows.
    """
    return PgUrl(url)


def redacted(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` option) replaced."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user = quote(unquote(parts.username or ""), safe="")
            netloc = f"{user}:***@{netloc.rpartition('@')[2]}"
        query = [
            (k, "***" if k == "password" else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*/")))
    except ValueError:  # (a malformed port, say): show no part of it that may hold a secret
        return "postgresql://<unparsable url>"


def connect(url: PgUrl, **kwargs: Any) -> Any:
    """A new autocommit connection to ``url``'s database.

    Raises:
        StoreError: the server cannot be reached, or refused the login or the database;
            the message names host, database and user, never the password.
    """
    psycopg = _psycopg()
    try:
        return psycopg.connect(url.conninfo, autocommit=True, **kwargs)
    except psycopg.Error as exc:
        raise StoreError(
            f"Cannot connect to the PostgreSQL run store ({url.where()}): "
            f"{_reason(exc, url)} Check that the server runs and accepts connections there, "
            "that the database exists and that the role may log in (see the README, "
            "'PostgreSQL')."
        ) from exc


def _reason(exc: BaseException, url: PgUrl) -> str:
    """The server's or libpq's words for ``exc``, one line, without the password."""
    text = " ".join(str(exc).split())
    password = urlsplit(url.conninfo).password
    if password:
        text = text.replace(password, "***")
    return text if text.endswith(".") else f"{text}."


def canceled_hint(exc: BaseException) -> str:
    """For a statement the server canceled on a timeout, what to do (else "")."""
    errors = _psycopg().errors
    cause = exc.__cause__ if isinstance(exc, StoreError) else exc
    if not isinstance(cause, errors.QueryCanceled | errors.LockNotAvailable):
        return ""
    wfkits = ", ".join(f"{name}={value}" for name, value in SESSION_SETTINGS.items())
    return (
        " The server canceled the statement on a timeout: wfkit's sessions use "
        f"{wfkits} unless the URL's options set them (as '?options=-c%20statement_timeout%3D"
        "600s'); raise the one the URL sets, or leave it to wfkit."
    )


def ensure_schema(conn: Any, url: PgUrl) -> None:
    """Create or migrate the schema (read-write), or check it (read-only).

    Raises:
        StoreError: a table looks like another application's, the schema is newer than this
            wfkit's, or (read-only) older or missing.
    """
    version = schema_version(conn, url)
    if version == SCHEMA_VERSION:
        return
    if url.read_only:
        raise StoreError(
            f"The PostgreSQL run store ({url.where()}) has "
            + ("no wfkit schema" if version == 0 else f"schema version {version}")
            + f"; this wfkit reads version {SCHEMA_VERSION}, and a read-only store changes "
            "nothing. Open it once for writing (any flow run recorded there), then read again."
        )
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        version = schema_version(conn, url)  # again: another process may have migrated
        for step in _MIGRATIONS[version:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO wfkit_meta (key, value) VALUES ('schema_version', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )


def schema_version(conn: Any, url: PgUrl) -> int:
    """The database's wfkit schema version (0: none yet), refusing what wfkit must not touch."""
    found = {
        name
        for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
            (["wfkit_meta", "owners", *_TABLES],),
        )
    }
    if "wfkit_meta" not in found:
        if found:
            raise StoreError(
                f"The PostgreSQL database of the run store ({url.where()}) has tables named "
                f"like wfkit's ({', '.join(sorted(found))}) but no wfkit_meta table: they "
                "belong to another application. wfkit did not modify them; use another "
                "database (or another schema, through the role's search_path) for wfkit."
            )
        return 0
    row = conn.execute("SELECT value FROM wfkit_meta WHERE key = 'schema_version'").fetchone()
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise StoreError(
            f"The PostgreSQL run store ({url.where()}) has no valid schema_version in "
            f"wfkit_meta (found {row!r}). wfkit did not modify it."
        ) from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"The PostgreSQL run store ({url.where()}) has schema version {version}, but this "
            f"wfkit supports versions up to {SCHEMA_VERSION}: it was written by a newer wfkit. "
            "Upgrade wfkit (pip install -U 'wfkit[postgres]'); nothing was modified."
        )
    return version


def _psycopg() -> Any:
    try:
        import psycopg  # (optional extra: only a PostgreSQL store needs it)
    except ImportError as exc:
        raise ConfigurationError(
            "A postgresql:// store needs psycopg 3: pip install 'wfkit[postgres]'."
        ) from exc
    return psycopg
